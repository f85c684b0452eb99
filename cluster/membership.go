package cluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a member's liveness as this node sees it.
//
// There is no suspect state: memberlist v0.7.0 reports no event when it
// suspects a member, and the nodes its Members method returns are written in
// place by its goroutines (hashicorp/memberlist#306), so reading their state
// races. A suspect member stays alive in the view until it refutes the
// suspicion or is declared dead; the lease epoch settles what a member
// wrongly thought alive, or wrongly thought dead, does meanwhile.
type State int

const (
	// StateAlive: the member joined and has not been declared dead or left.
	// Every member of a view is alive.
	StateAlive State = iota
	// StateDead: the member was declared dead after failed probes, or (for
	// LocalMember) this node was closed without leaving.
	StateDead
	// StateLeft: the member left gracefully.
	StateLeft
)

// String returns "alive", "dead" or "left".
func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Member is one node of the cluster as this node sees it. Members are values:
// a view does not change after it is returned.
type Member struct {
	// Name is the member's Config.NodeName.
	Name string
	// GossipAddr is the host:port the member gossips on; use it as a seed.
	GossipAddr string
	// RemoteAddr is the host:port of the member's protoactor remote
	// endpoint, from its metadata.
	RemoteAddr string
	// Queues are the queues the member serves, from its metadata; empty
	// serves every queue.
	Queues []string
	// Functions filters the functions the member runs, from its metadata;
	// nil when it runs every function it is sent.
	Functions *FunctionFilter
	// State is the member's liveness.
	State State
	// MetaErr is why the member's metadata could not be decoded (a node of
	// another version, or corrupt gossip), or nil. A member with a MetaErr
	// has no RemoteAddr and Queues and is never an owner.
	MetaErr error
}

// Serves reports whether m serves queue: m lists it, or m lists no queue.
func (m Member) Serves(queue string) bool {
	return len(m.Queues) == 0 || slices.Contains(m.Queues, queue)
}

// MayRun reports whether m may run function: m has no function filter, or
// its filter may hold the function. An empty function matches any member.
func (m Member) MayRun(function string) bool {
	return function == "" || m.Functions == nil || m.Functions.MayHave(function)
}

func (m Member) equal(o Member) bool {
	return m.Name == o.Name && m.GossipAddr == o.GossipAddr && m.RemoteAddr == o.RemoteAddr &&
		slices.Equal(m.Queues, o.Queues) && m.State == o.State && (m.MetaErr == nil) == (o.MetaErr == nil) &&
		(m.Functions == nil) == (o.Functions == nil) && (m.Functions == nil || *m.Functions == *o.Functions)
}

// Membership is a node's membership of the cluster, from [Join] until
// [Membership.Leave] or [Membership.Close]. Its methods are safe for
// concurrent use.
type Membership struct {
	ml     *memberlist.Memberlist
	mlConf *memberlist.Config
	logger *slog.Logger
	seeds  int

	signal chan struct{} // capacity 1: the view may have changed
	stop   chan struct{} // closed by shutdown: the view goroutine returns
	done   chan struct{} // closed when the view goroutine has returned

	// nodes holds what the event callbacks copied of each node, while
	// memberlist held its node lock. Lock order: memberlist's node lock,
	// then nodesMu; nothing calls memberlist while holding nodesMu or mu.
	nodesMu sync.Mutex
	nodes   map[string]nodeCopy
	leaving map[string]time.Time // members that sent their leave notice, when (under nodesMu)
	// unexplained are the members gone without a leave notice, each with
	// the timer that logs it failed unless its notice comes late (under
	// nodesMu); reporting counts those not logged yet.
	unexplained map[string]*time.Timer
	reporting   sync.WaitGroup

	mu      sync.Mutex
	view    []Member      // sorted by name; includes this node
	local   Member        // this node in view
	changed chan struct{} // closed at the next change of view, or at shutdown
	closed  bool
	closing bool // Leave has begun

	leaveMu  sync.Mutex // serialises Leave and Close
	shutdown bool       // under leaveMu
}

// joinRetryEvery is the pause between tries of the seeds (Config.JoinRetry).
const joinRetryEvery = 250 * time.Millisecond

// leaveTimeout bounds how long Leave waits for its leave message to go out
// when ctx has no deadline.
const leaveTimeout = 5 * time.Second

// Join validates cfg, starts gossip on cfg's address and joins the cluster
// through cfg.Seeds. With no seeds the node starts a new cluster; otherwise
// Join returns an error unless at least one seed answered, which a node with
// the wrong SecretKey or Label never gets. If ctx ends first, Join stops and
// returns ctx's error, within cfg.TCPTimeout (memberlist's join takes no
// context). On success the caller must end the membership with Leave or
// Close.
func Join(ctx context.Context, cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	meta, err := encodeMeta(cfg.meta())
	if err != nil { // Validate encoded it already
		return nil, fmt.Errorf("cluster: encoding node metadata: %w", err)
	}
	m := &Membership{
		logger:  logger.With(slog.String("node", cfg.NodeName)),
		signal:  make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		nodes:   make(map[string]nodeCopy),
		leaving: make(map[string]time.Time),
		changed: make(chan struct{}),
		local:   Member{Name: cfg.NodeName, RemoteAddr: cfg.RemoteAddr, Queues: slices.Clone(cfg.Queues), State: StateAlive},
	}

	c := memberlist.DefaultLANConfig()
	c.Name = cfg.NodeName
	c.BindAddr = cfg.BindAddr
	c.BindPort = cfg.GossipPort
	c.AdvertiseAddr = cfg.AdvertiseAddr
	c.AdvertisePort = cfg.GossipPort
	c.Label = cfg.Label
	c.ProbeInterval = cfg.ProbeInterval
	c.ProbeTimeout = cfg.ProbeTimeout
	c.SuspicionMult = cfg.SuspicionMult
	c.GossipInterval = cfg.GossipInterval
	c.TCPTimeout = cfg.TCPTimeout
	c.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	if len(cfg.SecretKey) > 0 {
		c.SecretKey = slices.Clone(cfg.SecretKey)
	}
	c.Logger = log.New(logWriter{logger: m.logger, m: m}, "", 0)
	c.Delegate = metaDelegate{meta: meta, m: m}
	c.Events = eventDelegate{m: m}
	c.RequireNodeNames = false

	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("cluster: starting gossip of %s on %s: %w", cfg.NodeName, net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.GossipPort)), err)
	}
	m.ml, m.mlConf = ml, c

	if len(cfg.Seeds) > 0 {
		type result struct {
			n   int
			err error
		}
		retryUntil := time.Now().Add(cfg.JoinRetry)
		for {
			joined := make(chan result, 1)
			go func() {
				n, err := ml.Join(slices.Clone(cfg.Seeds))
				joined <- result{n, err}
			}()
			var r result
			select {
			case r = <-joined:
			case <-ctx.Done():
				// Join has no ctx: stop the listeners and wait for its
				// streams, which time out within TCPTimeout.
				shutdownErr := ml.Shutdown()
				<-joined
				return nil, errors.Join(ctx.Err(), shutdownErr)
			}
			if r.n > 0 || ml.NumMembers() > 1 { // answered, or joined by one meanwhile
				m.seeds = r.n
				break
			}
			if r.err == nil {
				r.err = errors.New("no seed answered")
			}
			if !time.Now().Before(retryUntil) {
				return nil, errors.Join(fmt.Errorf("cluster: joining %s through seeds %v: %w (a wrong gossip key or label gets no answer)", cfg.NodeName, cfg.Seeds, r.err), ml.Shutdown())
			}
			select {
			case <-time.After(joinRetryEvery):
			case <-ctx.Done():
				return nil, errors.Join(ctx.Err(), ml.Shutdown())
			}
		}
	}

	m.refresh()
	go m.run()
	m.logger.InfoContext(ctx, "cluster joined",
		slog.String("gossip_addr", m.LocalMember().GossipAddr), slog.Int("seeds_joined", m.seeds),
		slog.Int("members", len(m.Members())))
	return m, nil
}

// run rebuilds the view each time the event callbacks signal a change.
func (m *Membership) run() {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		case <-m.signal:
		}
		m.refresh()
	}
}

// nodeCopy is what an event callback copied of a memberlist node.
type nodeCopy struct {
	name, addr string
	meta       []byte
	state      State
}

// refresh rebuilds the view from the copies the event callbacks made and,
// if it differs from the last one, publishes it and wakes the Changes
// waiters. It does not call memberlist.
func (m *Membership) refresh() {
	m.nodesMu.Lock()
	copies := make([]nodeCopy, 0, len(m.nodes))
	var gone []nodeCopy
	for name, n := range m.nodes {
		if n.state == StateAlive {
			copies = append(copies, n)
		} else {
			gone = append(gone, n)
			delete(m.nodes, name)
		}
	}
	m.nodesMu.Unlock()

	m.mu.Lock()
	self, closing := m.local.Name, m.closing
	m.mu.Unlock()
	for _, n := range gone {
		switch {
		case n.name == self: // this node's own leave: Leave logs it
		case n.state == StateLeft || closing:
			m.logGone(n.name, n.state == StateLeft, closing)
		default:
			m.reportGone(n.name)
		}
	}
	view := make([]Member, 0, len(copies))
	for _, n := range copies {
		mem := Member{Name: n.name, GossipAddr: n.addr, State: StateAlive}
		if meta, err := decodeMeta(n.meta); err != nil {
			mem.MetaErr = fmt.Errorf("decoding metadata of member %s: %w", n.name, err)
		} else {
			mem.RemoteAddr, mem.Queues, mem.Functions = meta.RemoteAddr, meta.Queues, meta.Functions
		}
		view = append(view, mem)
	}
	slices.SortFunc(view, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || slices.EqualFunc(view, m.view, Member.equal) {
		return
	}
	for _, mem := range view {
		if mem.MetaErr != nil && !slices.ContainsFunc(m.view, func(o Member) bool { return o.Name == mem.Name && o.MetaErr != nil }) {
			m.logger.Warn("cluster member has bad metadata", slog.String("member", mem.Name), slog.Any("error", mem.MetaErr))
		}
		if mem.Name == m.local.Name {
			m.local = mem
		}
	}
	for _, mem := range view {
		if mem.Name != m.local.Name && !slices.ContainsFunc(m.view, func(o Member) bool { return o.Name == mem.Name }) {
			m.logger.Info("cluster member joined", slog.String("member", mem.Name), slog.String("gossip_addr", mem.GossipAddr))
		}
	}
	m.view = view
	close(m.changed)
	m.changed = make(chan struct{})
	m.logger.Debug("cluster view changed", slog.Int("members", len(view)))
}

// Members returns the current view: the members this node sees alive,
// itself included, sorted by name. Members declared dead and members that
// left are not in it. The caller may keep and modify the slice.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.view)
}

// LocalMember returns this node as it appears in the view; after Leave its
// State is StateLeft, after Close StateDead.
func (m *Membership) LocalMember() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.local
}

// Changes returns a channel that is closed when the view next changes, or
// when the membership ends (then Done is closed too). To follow the view
// without missing a change, take the channel before reading the view:
//
//	for {
//		ch := m.Changes()
//		use(m.Members())
//		select {
//		case <-ch:
//		case <-m.Done():
//			return
//		}
//	}
func (m *Membership) Changes() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// Done returns a channel closed when Leave or Close has ended the
// membership.
func (m *Membership) Done() <-chan struct{} {
	return m.done
}

// Owner returns the owner of execution execID in queue on the current view
// (see [Owner]), and false if no alive member serves queue.
func (m *Membership) Owner(execID, queue string) (Member, bool) {
	return m.OwnerOf(execID, queue, "")
}

// OwnerOf is Owner among the members that may run function (see
// Member.MayRun).
func (m *Membership) OwnerOf(execID, queue, function string) (Member, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return OwnerOf(execID, queue, function, m.view)
}

// SeedsJoined returns how many seed addresses answered when the node joined.
func (m *Membership) SeedsJoined() int {
	return m.seeds
}

// GossipPort returns the gossip port the node bound, which Config.GossipPort
// 0 left to the system.
func (m *Membership) GossipPort() int {
	return m.mlConf.BindPort
}

// Leave tells the other members that this node leaves, waits until the
// message has gone out or ctx ends (at most 5 s without a deadline), and
// shuts the membership down. The others drop the node from their views
// without suspecting it first. Leave after Leave or Close returns nil.
func (m *Membership) Leave(ctx context.Context) error {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	if m.shutdown {
		return nil
	}
	m.mu.Lock()
	m.closing = true
	self := m.local.Name
	m.mu.Unlock()
	var leaveErr error
	if err := ctx.Err(); err != nil {
		leaveErr = err
	} else {
		m.noticeLeave(self)
		timeout := leaveTimeout
		if d, ok := ctx.Deadline(); ok {
			timeout = min(timeout, max(time.Until(d), time.Millisecond))
		}
		switch err := m.ml.Leave(timeout); {
		case err != nil && strings.Contains(err.Error(), errLeaveBroadcastTimeout):
			// Every member stops at once: nobody took the broadcast,
			// and nobody needs it (the notices went, or their
			// senders are gone).
			m.logger.InfoContext(ctx, "cluster leave broadcast not taken by any member")
		case err != nil:
			leaveErr = fmt.Errorf("cluster: leaving: %w", err)
		}
	}
	m.logger.InfoContext(ctx, "cluster left")
	return errors.Join(leaveErr, m.shutdownLocked(StateLeft))
}

// Close shuts the membership down without leaving: the other members find
// the node dead after their probes fail, as if it had crashed. Close after
// Leave or Close returns nil.
func (m *Membership) Close() error {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	if m.shutdown {
		return nil
	}
	return m.shutdownLocked(StateDead)
}

func (m *Membership) shutdownLocked(final State) error {
	m.shutdown = true
	err := m.ml.Shutdown()
	close(m.stop)
	<-m.done
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.nodesMu.Lock()
	names := slices.Collect(maps.Keys(m.unexplained))
	m.nodesMu.Unlock()
	for _, name := range names {
		m.settleGone(name)
	}
	m.reporting.Wait()
	m.mu.Lock()
	m.closed = true
	m.local.State = final
	close(m.changed) // wake the waiters; Changes returns this closed channel from now on
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: shutting down gossip: %w", err)
	}
	return nil
}

// metaDelegate gives memberlist the node's metadata; the node sends no user
// messages or state.
type metaDelegate struct {
	meta []byte
	m    *Membership
}

var _ memberlist.Delegate = metaDelegate{}

func (d metaDelegate) NodeMeta(limit int) []byte {
	// Validate checked len(meta) <= MetaMaxSize, the limit memberlist passes.
	return d.meta
}
func (d metaDelegate) NotifyMsg(msg []byte)                     { d.m.noteLeaving(msg) }
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate copies the node it is told about and signals the view
// goroutine. memberlist calls it while holding its node lock: the one time
// a node's fields can be read without racing memberlist's in-place updates,
// and a time when calling memberlist (Members) would deadlock.
type eventDelegate struct {
	m *Membership
}

var _ memberlist.EventDelegate = eventDelegate{}

func (d eventDelegate) record(n *memberlist.Node, state State) {
	c := nodeCopy{name: n.Name, addr: n.Address(), meta: bytes.Clone(n.Meta), state: state}
	d.m.nodesMu.Lock()
	d.m.nodes[n.Name] = c
	d.m.nodesMu.Unlock()
	select {
	case d.m.signal <- struct{}{}:
	default: // a signal is pending already; one rebuild covers both
	}
}

func (d eventDelegate) NotifyJoin(n *memberlist.Node)   { d.record(n, StateAlive) }
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) { d.record(n, StateAlive) }

// NotifyLeave is called for a member declared dead and for one that left.
func (d eventDelegate) NotifyLeave(n *memberlist.Node) {
	d.m.nodesMu.Lock()
	state := d.m.leftOrDead(n.Name)
	d.m.nodesMu.Unlock()
	if n.State == memberlist.StateLeft {
		state = StateLeft
	}
	d.record(n, state)
}
