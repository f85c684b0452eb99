// Package clock is the runtime's source of time for what users schedule:
// durable sleeps, signal-wait timeouts, retry backoff, delayed starts and
// deadlines. Production uses the host's clock (a nil Clock in
// actors.Config); tests use Manual, which runs with real time and can be
// moved forward (sdk/stenttest).
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and arms timers on it. Implementations are safe for
// concurrent use.
type Clock interface {
	// Now returns the current time on this clock.
	Now() time.Time
	// NewTimer returns a timer whose channel receives once d has passed on
	// this clock.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine once d has passed on this
	// clock, unless the timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer armed on a Clock.
type Timer interface {
	// C is the channel the time is sent on (nil for AfterFunc timers).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it
	// (false when it had fired or was stopped already).
	Stop() bool
}

// Manual is a clock that runs with real time plus an offset that only
// grows: Advance moves it forward, firing the timers that become due at
// once. Its Now is never earlier than time.Now, so a time stamped by the
// host's clock (a row made due "now" by a signal) is never in its future.
// The zero value is not usable; make one with NewManual.
type Manual struct {
	mu     sync.Mutex
	offset time.Duration
	timers map[*manualTimer]struct{}
}

// NewManual returns a Manual clock that reads the host's time until
// advanced.
func NewManual() *Manual {
	return &Manual{timers: make(map[*manualTimer]struct{})}
}

// Now returns the host's time plus every Advance so far.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Add(m.offset)
}

// Offset returns the sum of every Advance so far.
func (m *Manual) Offset() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.offset
}

// Advance moves the clock forward by d (a d ≤ 0 does nothing) and fires
// every timer that is due at the new time; the others are re-armed for what
// is left of their wait.
func (m *Manual) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	m.mu.Lock()
	m.offset += d
	now := time.Now().Add(m.offset)
	var due []*manualTimer
	for t := range m.timers {
		if !now.Before(t.at) {
			due = append(due, t)
			delete(m.timers, t)
			t.real.Stop()
		} else {
			t.real.Reset(t.at.Sub(now))
		}
	}
	m.mu.Unlock()
	for _, t := range due {
		t.fire()
	}
}

// NewTimer returns a timer that fires once d has passed on this clock.
func (m *Manual) NewTimer(d time.Duration) Timer {
	return m.arm(d, &manualTimer{c: make(chan time.Time, 1)})
}

// AfterFunc calls f in its own goroutine once d has passed on this clock.
func (m *Manual) AfterFunc(d time.Duration, f func()) Timer {
	return m.arm(d, &manualTimer{f: f})
}

func (m *Manual) arm(d time.Duration, t *manualTimer) *manualTimer {
	m.mu.Lock()
	defer m.mu.Unlock()
	t.m = m
	t.at = time.Now().Add(m.offset + d)
	m.timers[t] = struct{}{}
	t.real = time.AfterFunc(max(d, 0), func() {
		m.mu.Lock()
		_, armed := m.timers[t]
		delete(m.timers, t)
		m.mu.Unlock()
		if armed {
			t.fire()
		}
	})
	return t
}

type manualTimer struct {
	m    *Manual
	at   time.Time
	c    chan time.Time
	f    func()
	real *time.Timer
}

func (t *manualTimer) C() <-chan time.Time { return t.c }

func (t *manualTimer) Stop() bool {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	if _, armed := t.m.timers[t]; !armed {
		return false
	}
	delete(t.m.timers, t)
	t.real.Stop()
	return true
}

// fire runs once per timer: the caller removed it from the set under mu.
func (t *manualTimer) fire() {
	if t.f != nil {
		go t.f()
		return
	}
	select {
	case t.c <- t.at:
	default:
	}
}
