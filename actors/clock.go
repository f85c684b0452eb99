package actors

import (
	"context"
	"sync"
	"time"

	"github.com/stent-go/stent/internal/clock"
)

// The runtime reads the time of what users schedule through these methods:
// durable sleeps, signal-wait timeouts, retry backoff, delayed starts,
// deadlines and the serve loop's wait for the next due time. With no
// Config.Clock they call package time directly, so production pays one nil
// check. Leases, permits, lease checks and the per-attempt timeout
// (WithTimeout) keep the host's clock: they guard against real stalls and
// crashes, which a test clock moved forward must not fake.

// Now returns the time on the runtime's clock (Config.Clock, or the host's).
func (rt *Runtime) Now() time.Time {
	if c := rt.cfg.Clock; c != nil {
		return c.Now()
	}
	return time.Now()
}

// until is time.Until on the runtime's clock.
func (rt *Runtime) until(t time.Time) time.Duration {
	if c := rt.cfg.Clock; c != nil {
		return t.Sub(c.Now())
	}
	return time.Until(t)
}

// newTimer arms a timer of d on the runtime's clock and returns its
// channel and its stop function.
func (rt *Runtime) newTimer(d time.Duration) (<-chan time.Time, func() bool) {
	if c := rt.cfg.Clock; c != nil {
		t := c.NewTimer(d)
		return t.C(), t.Stop
	}
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// afterFunc is time.AfterFunc on the runtime's clock.
func (rt *Runtime) afterFunc(d time.Duration, f func()) {
	if c := rt.cfg.Clock; c != nil {
		c.AfterFunc(d, f)
		return
	}
	time.AfterFunc(d, f)
}

// withDeadline is context.WithDeadlineCause on the runtime's clock.
func (rt *Runtime) withDeadline(ctx context.Context, dl time.Time, cause error) (context.Context, context.CancelFunc) {
	c := rt.cfg.Clock
	if c == nil {
		return context.WithDeadlineCause(ctx, dl, cause)
	}
	dctx, cancel := context.WithCancelCause(ctx)
	t := c.AfterFunc(dl.Sub(c.Now()), func() { cancel(cause) })
	return dctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// sleep is plainSleep on the runtime's clock.
func (rt *Runtime) sleep(ctx context.Context, d time.Duration) error {
	if rt.cfg.Clock == nil {
		return plainSleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	c, stop := rt.newTimer(d)
	defer stop()
	defer rt.waits.wait(rt.Now().Add(d))()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Clock is the type of Config.Clock.
type Clock = clock.Clock

// waitTracker counts, under a test clock, the attempts running on this node
// and those of them blocked in a wait (a child's outcome, a signal, an
// in-memory sleep), with the earliest deadline among the waits, so that a
// test clock can tell when nothing but time can make progress
// (Runtime.Quiescent). Without a clock it is nil and its hooks do nothing.
type waitTracker struct {
	mu       sync.Mutex
	attempts int
	waits    map[*int]time.Time
}

func newWaitTracker(c Clock) *waitTracker {
	if c == nil {
		return nil
	}
	return &waitTracker{waits: make(map[*int]time.Time)}
}

func noWait() {}

// attempt counts an attempt until the returned function is called.
func (w *waitTracker) attempt() func() {
	if w == nil {
		return noWait
	}
	w.mu.Lock()
	w.attempts++
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.attempts--
		w.mu.Unlock()
	}
}

// wait counts a blocked wait, due at until (zero: no deadline), until the
// returned function is called.
func (w *waitTracker) wait(until time.Time) func() {
	if w == nil {
		return noWait
	}
	k := new(int)
	w.mu.Lock()
	w.waits[k] = until
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.waits, k)
		w.mu.Unlock()
	}
}

// Quiescent reports, under a test clock (Config.Clock), whether every
// activation on this node is an attempt blocked in a wait, and the
// earliest deadline of those waits (zero when none has one). Without a
// clock it reports false. Due rows in the database are the caller's to
// check.
func (rt *Runtime) Quiescent() (bool, time.Time) {
	w := rt.waits
	if w == nil {
		return false, time.Time{}
	}
	active := len(rt.Active())
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waits) < w.attempts || active != w.attempts {
		return false, time.Time{}
	}
	var next time.Time
	for _, t := range w.waits {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return true, next
}
