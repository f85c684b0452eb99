package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// A node that leaves tells every other member so first, with a user message
// (leaveNotice then its name) sent over TCP: memberlist's own graceful-leave
// marker does not reach the event delegate (NotifyLeave gets a Node whose
// State field memberlist never sets), so without it every clean stop looked
// like a failure to the others.
var leaveNotice = []byte("stent-leave\x00")

// leaveNoticeWait bounds how long Leave waits for its notices to be sent.
const leaveNoticeWait = time.Second

// noticeLeave sends the leave notice to every other member, in parallel,
// and waits for the sends up to leaveNoticeWait. A member that is gone
// already, or stops at the same time, is skipped.
func (m *Membership) noticeLeave(name string) {
	msg := append(bytes.Clone(leaveNotice), name...)
	var wg sync.WaitGroup
	for _, n := range m.ml.Members() {
		if n.Name == name {
			continue
		}
		wg.Add(1)
		go func(n *memberlist.Node) {
			defer wg.Done()
			_ = m.ml.SendReliable(n, msg) // best effort: failure detection covers a lost notice
		}(n)
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(leaveNoticeWait):
	}
}

// noteLeaving records a member's leave notice.
func (m *Membership) noteLeaving(msg []byte) {
	name, ok := bytes.CutPrefix(msg, leaveNotice)
	if !ok || len(name) == 0 {
		return
	}
	m.nodesMu.Lock()
	m.leaving[string(name)] = time.Now()
	// Forget notices of long ago: a node may come back under its name.
	for n, at := range m.leaving {
		if time.Since(at) > time.Hour {
			delete(m.leaving, n)
		}
	}
	m.nodesMu.Unlock()
}

// goneGrace is how long a member gone without a leave notice may wait for
// it before it is logged as failed: the notice, sent over TCP, may be
// handled after memberlist's own leave broadcast on a loaded machine.
const goneGrace = 2 * leaveNoticeWait

// reportGone logs member name, gone without a leave notice, as failed once
// goneGrace has passed, or as left if its notice arrives meanwhile.
func (m *Membership) reportGone(name string) {
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	if _, ok := m.unexplained[name]; ok {
		return
	}
	if m.unexplained == nil {
		m.unexplained = make(map[string]*time.Timer)
	}
	m.reporting.Add(1)
	m.unexplained[name] = time.AfterFunc(goneGrace, func() { m.settleGone(name) })
}

// settleGone logs what became of member name, reported gone without a
// notice: left if its notice came since, else failed (or, while this node
// stops, gone with it). Shutdown settles them all before it returns.
func (m *Membership) settleGone(name string) {
	m.nodesMu.Lock()
	t, ok := m.unexplained[name]
	delete(m.unexplained, name)
	_, left := m.leaving[name]
	if ok && left {
		delete(m.leaving, name)
	}
	m.nodesMu.Unlock()
	if !ok {
		return // settled already
	}
	defer m.reporting.Done()
	t.Stop()
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	m.logGone(name, left, closing)
}

// logGone logs that member name is gone: it left (sent its notice), went
// while this node stops too (peers that stop with it are no failures worth
// a warning), or failed.
func (m *Membership) logGone(name string, left, closing bool) {
	switch {
	case left:
		m.logger.Info("cluster member left", slog.String("member", name))
	case closing:
		m.logger.Info("cluster member gone while this node stops", slog.String("member", name))
	default:
		m.logger.Warn("cluster member failed", slog.String("member", name))
	}
}

// leftOrDead is the state of a member memberlist no longer lists: left if
// it sent its leave notice, dead otherwise. The caller holds nodesMu.
func (m *Membership) leftOrDead(name string) State {
	if _, ok := m.leaving[name]; ok {
		delete(m.leaving, name)
		return StateLeft
	}
	return StateDead
}

// benignShutdownNoise reports memberlist log lines that a clean stop
// produces and that say nothing is wrong: a probe or a leave broadcast cut
// short by the shutdown of this node or of its peers at the same moment.
func benignShutdownNoise(line []byte) bool {
	s := string(line)
	return strings.Contains(s, "use of closed network connection") ||
		strings.Contains(s, errLeaveBroadcastTimeout)
}

// errLeaveBroadcastTimeout is the text of memberlist's Leave error when no
// member took the leave broadcast in time, which happens when every member
// stops at once: it has no sentinel error to match.
const errLeaveBroadcastTimeout = "timeout waiting for leave broadcast"

// quietDuringLeave reports a memberlist warning that a clean stop explains:
// this node is leaving, or the line is about a member that sent its leave
// notice (a probe of a member that is shutting down fails).
func (m *Membership) quietDuringLeave(line []byte) bool {
	m.mu.Lock()
	closing := m.closing
	m.mu.Unlock()
	if closing {
		return true
	}
	m.nodesMu.Lock()
	defer m.nodesMu.Unlock()
	for name := range m.leaving {
		if bytes.Contains(line, []byte(name)) {
			return true
		}
	}
	return false
}
