package sqlite

import "time"

// WithClock sets the clock that due times are read from: a RunAfter is
// added to it, and ClaimDue, Stats and QueueDepth compare run_at with it.
// Leases, and every other stamp (updated_at, created_at of rows the
// backend makes), keep the host's clock, so that a lease runs out only
// when its owner really stops renewing it. now must never run behind the
// host's clock (a row made due by a signal is stamped with the host's
// time); sdk/stenttest passes its test clock. nil, the default, is the
// host's clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.clock = now }
}

// dueNow returns the time due times are compared with, in unix
// milliseconds: the clock of WithClock, or the host's.
func dueNow(clock func() time.Time) int64 {
	if clock != nil {
		return clock().UnixMilli()
	}
	return nowMillis()
}

// dueAt returns the time d from now on that clock.
func dueAt(clock func() time.Time, d time.Duration) time.Time {
	if clock != nil {
		return clock().Add(d)
	}
	return time.Now().Add(d)
}
