package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrExists reports that CreateSchedule found a schedule of that name.
var ErrExists = errors.New("persistence: already exists")

// Overlap is what a schedule does with a tick that falls due while the
// execution of an earlier tick has not finished.
type Overlap string

// The overlap policies.
const (
	// OverlapSkip records the tick as skipped.
	OverlapSkip Overlap = "skip"
	// OverlapBufferOne keeps the tick and starts it once the earlier
	// execution has finished; a tick that falls due while one is kept
	// already is skipped.
	OverlapBufferOne Overlap = "buffer_one"
	// OverlapAllowAll starts the tick at once, alongside the earlier one.
	OverlapAllowAll Overlap = "allow_all"
	// OverlapCancelPrevious cancels the earlier execution and starts the
	// tick.
	OverlapCancelPrevious Overlap = "cancel_previous"
)

// Valid reports whether o is one of the policies above.
func (o Overlap) Valid() bool {
	switch o {
	case OverlapSkip, OverlapBufferOne, OverlapAllowAll, OverlapCancelPrevious:
		return true
	}
	return false
}

// Schedule is one row of the schedules table: a definition (what to start
// and when) and the state that the nodes firing it keep (the next tick,
// the claim of a node, the last execution).
type Schedule struct {
	// Name identifies the schedule. ID is assigned on creation (a random
	// string), so that a schedule deleted and made again under the same
	// name does not share its ticks' idempotency keys with the old one.
	Name string
	ID   string
	// Function, Queue, Input and Priority are those of every execution a
	// tick starts.
	Function string
	Queue    string
	Input    []byte
	Priority int
	// Spec is the cron expression or "@every <duration>"; TimeZone the IANA
	// zone the cron expression is read in ("" is UTC).
	Spec     string
	TimeZone string
	// Jitter delays each tick's execution by up to this much.
	Jitter time.Duration
	// StartAt and EndAt, when not zero, bound the ticks.
	StartAt time.Time
	EndAt   time.Time
	Overlap Overlap
	// CatchupWindow is how old a missed tick may be and still start;
	// CatchupLatest starts only the newest tick of those.
	CatchupWindow time.Duration
	CatchupLatest bool
	Paused        bool
	// Note is free text (why it was paused, for instance).
	Note string

	// NextAt is the next tick not yet taken, zero when no tick is left (the
	// schedule ended). WakeAt is when a node must look at the schedule
	// next: NextAt, or sooner while a tick is buffered. BufferedAt is the
	// tick kept by OverlapBufferOne, zero if none. LastExecutionID is the
	// execution of the last tick started.
	NextAt          time.Time
	WakeAt          time.Time
	BufferedAt      time.Time
	LastExecutionID string

	// Owner and LeaseExpiresAt are a node's claim (ClaimDueSchedules).
	// Version goes up by one at every write of the row; it fences
	// FireSchedule and UpdateSchedule.
	Owner          string
	LeaseExpiresAt time.Time
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// TickStatus is what became of a schedule's tick.
type TickStatus string

// The statuses of a tick.
const (
	TickStarted TickStatus = "started" // an execution was started for it
	TickSkipped TickStatus = "skipped" // no execution was started (see Reason)
)

// TickKind tells how a tick came about.
type TickKind string

// The kinds of tick.
const (
	TickScheduled TickKind = "scheduled" // the schedule's spec
	TickTrigger   TickKind = "trigger"   // TriggerSchedule, at the time of the call
	TickBackfill  TickKind = "backfill"  // a backfill of a time range
)

// ScheduleTick records a tick of a schedule: at most one row per schedule
// and time, so a tick is started at most once. A row of skipped ticks may
// cover a range: At is the first, LastAt the last, Count how many.
type ScheduleTick struct {
	Schedule    string
	At          time.Time
	LastAt      time.Time
	Count       int
	Kind        TickKind
	Status      TickStatus
	Reason      string
	ExecutionID string
	CreatedAt   time.Time
}

// ScheduleFire is what a node writes when it takes a schedule's due ticks,
// in one transaction, by FireSchedule.
type ScheduleFire struct {
	Name string
	// Owner and Version, when Owner is not "", fence the write: the
	// schedule must still be claimed by Owner at Version (as
	// ClaimDueSchedules returned it), or nothing is written and
	// FireSchedule returns ErrStaleEpoch. The claim is then released.
	// With Owner "" (a trigger or a backfill), only the ticks, the
	// executions and LastExecutionID are written, whoever holds the claim.
	Owner   string
	Version int64
	// Create holds the executions to start, each with its idempotency key.
	// One whose key is taken already is not inserted: FireSchedule returns
	// the existing one in its place.
	Create []*Execution
	// Ticks are inserted; a tick recorded already (same schedule and At) is
	// left as it was, except that a skipped one becomes started when the
	// new row is started.
	Ticks []*ScheduleTick
	// With a claim (Owner set), NextAt, WakeAt and BufferedAt replace the
	// schedule's. LastExecutionID, when not "", replaces it in any case.
	NextAt          time.Time
	WakeAt          time.Time
	BufferedAt      time.Time
	LastExecutionID string
}

// Schedules is the part of Backend that keeps durable schedules. Times
// compared with "now" use the backend's clock.
type Schedules interface {
	// CreateSchedule inserts s (ID, Version, CreatedAt and UpdatedAt are
	// assigned) and returns it as stored, or ErrExists.
	CreateSchedule(ctx context.Context, s *Schedule) (*Schedule, error)
	// UpdateSchedule replaces every field of schedule s.Name but its ID and
	// CreatedAt, when its version is still s.Version, releasing any claim.
	// It returns the row as stored (its version one more), ErrNotFound, or
	// ErrStaleEpoch when the version moved on (read it again and retry).
	UpdateSchedule(ctx context.Context, s *Schedule) (*Schedule, error)
	// GetSchedule returns one schedule or ErrNotFound.
	GetSchedule(ctx context.Context, name string) (*Schedule, error)
	// ListSchedules returns every schedule, by name.
	ListSchedules(ctx context.Context) ([]*Schedule, error)
	// DeleteSchedule removes a schedule and its ticks, or returns
	// ErrNotFound. Executions it started are kept.
	DeleteSchedule(ctx context.Context, name string) error
	// ClaimDueSchedules claims for owner, for ttl, up to limit schedules
	// that are not paused, whose WakeAt has come and that no other owner
	// holds unexpired: Owner and LeaseExpiresAt are set and Version goes
	// up by one. It returns them, as claimed, and the backend's clock at
	// the claim.
	ClaimDueSchedules(ctx context.Context, owner string, ttl time.Duration, limit int) ([]*Schedule, time.Time, error)
	// FireSchedule writes f in one transaction and returns the execution
	// stored for each of f.Create, in order (a new one, or the one that
	// held its idempotency key). ErrStaleEpoch when the claim is lost,
	// ErrNotFound for an unknown schedule.
	FireSchedule(ctx context.Context, f *ScheduleFire) ([]*Execution, error)
	// NextScheduleAt returns when a node should next call
	// ClaimDueSchedules: the earliest WakeAt of the schedules not paused
	// (or the expiry of a claim on one), zero when there is none.
	NextScheduleAt(ctx context.Context) (time.Time, error)
	// ListScheduleTicks returns the ticks of a schedule, newest first, at
	// most limit (0 means 100).
	ListScheduleTicks(ctx context.Context, name string, limit int) ([]*ScheduleTick, error)
	// Now returns the backend's clock.
	Now(ctx context.Context) (time.Time, error)
}

// MaxTicksKept is how many tick rows a schedule keeps: FireSchedule removes
// the older ones.
const MaxTicksKept = 1000

// Resolve points f's ticks and LastExecutionID at the executions stored
// for f.Create (stored[i] for f.Create[i]): an execution whose idempotency
// key was taken already is the one that holds it. Backends call it before
// they record the ticks.
func (f *ScheduleFire) Resolve(stored []*Execution) {
	ids := make(map[string]string, len(stored))
	for i, e := range stored {
		if i < len(f.Create) && e != nil && e.ID != f.Create[i].ID {
			ids[f.Create[i].ID] = e.ID
		}
	}
	for _, t := range f.Ticks {
		if id, ok := ids[t.ExecutionID]; ok {
			t.ExecutionID = id
		}
	}
	if id, ok := ids[f.LastExecutionID]; ok {
		f.LastExecutionID = id
	}
}

// Validate reports what is wrong with f for FireSchedule.
func (f *ScheduleFire) Validate() error {
	if f == nil || f.Name == "" {
		return errors.New("firing schedule: no name")
	}
	for _, e := range f.Create {
		if e == nil || e.ID == "" || e.IdempotencyKey == "" {
			return fmt.Errorf("firing schedule %s: an execution without ID or idempotency key", f.Name)
		}
	}
	for _, t := range f.Ticks {
		if t == nil || t.At.IsZero() {
			return fmt.Errorf("firing schedule %s: a tick without time", f.Name)
		}
		if t.Status != TickStarted && t.Status != TickSkipped {
			return fmt.Errorf("firing schedule %s: tick status %q is neither started nor skipped", f.Name, t.Status)
		}
	}
	return nil
}

// Validate reports what is wrong with s for CreateSchedule and
// UpdateSchedule: the fields a backend relies on. (Parsing the spec is the
// caller's.)
func (s *Schedule) Validate() error {
	switch {
	case s == nil || s.Name == "":
		return errors.New("schedule: no name")
	case s.Function == "":
		return fmt.Errorf("schedule %s: no function", s.Name)
	case s.Spec == "":
		return fmt.Errorf("schedule %s: no spec", s.Name)
	case !s.Overlap.Valid():
		return fmt.Errorf("schedule %s: unknown overlap policy %q", s.Name, s.Overlap)
	case s.Jitter < 0 || s.CatchupWindow < 0:
		return fmt.Errorf("schedule %s: negative jitter or catch-up window", s.Name)
	}
	return nil
}
