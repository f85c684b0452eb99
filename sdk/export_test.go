package sdk

import "errors"

// ForgetSchedule removes the declaration of schedule name (Schedule), so
// that a test that declared one leaves the other tests' executors alone.
func ForgetSchedule(name string) {
	declared.Lock()
	defer declared.Unlock()
	for i, d := range declared.list {
		if d.name == name {
			declared.list = append(declared.list[:i], declared.list[i+1:]...)
			return
		}
	}
}

// Crash drops e's node as a crash would, for tests of takeovers by
// in-process nodes: its actor system stops at once (Runtime.Discard), its
// running bodies see their context end and record nothing, and its leases
// are not given back (Close would release them), so another node takes its
// executions over only once they run out. Then it stops the rest as Close
// does (the scheduler, the heartbeat, the notifier, the backend), leaving
// the node's registry row behind as a crash does.
func (e *Executor) Crash() error {
	e.rt.Discard()
	e.mu.Lock()
	e.closed = true
	stop := e.serveStop
	e.mu.Unlock()
	e.stopSchedules()
	e.stopBackground()
	if stop != nil {
		stop()
	}
	var err error
	if e.opts.ownNotifier {
		err = e.opts.notifier.Close()
	}
	return errors.Join(err, e.backend.Close())
}
