package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stent-go/stent/persistence"
)

// Overlap is what a schedule does with a tick that falls due while the
// execution of an earlier tick has not finished.
type Overlap = persistence.Overlap

// The overlap policies; the default is OverlapSkip.
const (
	// OverlapSkip records the tick as skipped.
	OverlapSkip = persistence.OverlapSkip
	// OverlapBufferOne keeps one tick and starts it once the earlier
	// execution has finished (within a second); a tick that falls due
	// while one is kept is skipped.
	OverlapBufferOne = persistence.OverlapBufferOne
	// OverlapAllowAll starts every tick, alongside the earlier ones.
	OverlapAllowAll = persistence.OverlapAllowAll
	// OverlapCancelPrevious cancels the earlier execution and starts the
	// tick.
	OverlapCancelPrevious = persistence.OverlapCancelPrevious
)

// ErrExists reports that CreateSchedule found a schedule of that name.
var ErrExists = persistence.ErrExists

// ErrInvalidSchedule is matched (errors.Is) by the errors that refuse a
// schedule's definition: a spec that does not parse (the parser's message
// is in the error), an unknown time zone or overlap policy, bad bounds.
var ErrInvalidSchedule = errors.New("sdk: invalid schedule")

// invalidSchedule is an error in a schedule's definition: its message is
// err's, and it matches ErrInvalidSchedule and err.
type invalidSchedule struct{ err error }

func (e *invalidSchedule) Error() string   { return e.err.Error() }
func (e *invalidSchedule) Unwrap() []error { return []error{ErrInvalidSchedule, e.err} }

// DefaultCatchupWindow is the catch-up window of a schedule made without
// WithCatchupWindow: a tick missed by less than a minute (a node restarting,
// a short outage) still starts.
const DefaultCatchupWindow = time.Minute

// scheduleOptions are the options of a schedule.
type scheduleOptions struct {
	timeZone      string
	jitter        time.Duration
	start, end    time.Time
	overlap       Overlap
	catchupWindow time.Duration
	catchupLatest bool
	queue         string
	priority      int
	paused        bool
	note          string
}

// ScheduleOption configures a schedule.
type ScheduleOption func(*scheduleOptions)

// WithTimeZone reads the schedule's cron expression in the IANA time zone
// tz ("Europe/Paris"); the default is UTC. A spec may name its zone itself
// with a CRON_TZ= prefix instead.
func WithTimeZone(tz string) ScheduleOption { return func(o *scheduleOptions) { o.timeZone = tz } }

// WithJitter delays each tick's execution by a random duration below d
// (the same for a given tick on every node), to spread the load of many
// schedules that tick at once. The default is none.
func WithJitter(d time.Duration) ScheduleOption { return func(o *scheduleOptions) { o.jitter = d } }

// WithStartAt makes t the earliest tick time; the default is the schedule's
// creation.
func WithStartAt(t time.Time) ScheduleOption { return func(o *scheduleOptions) { o.start = t } }

// WithEndAt makes t the latest tick time; after it the schedule ends (it
// stays listed, with no next run). The default is never.
func WithEndAt(t time.Time) ScheduleOption { return func(o *scheduleOptions) { o.end = t } }

// WithOverlap sets the overlap policy (default OverlapSkip).
func WithOverlap(p Overlap) ScheduleOption { return func(o *scheduleOptions) { o.overlap = p } }

// WithCatchupWindow sets how late a missed tick may still start after an
// outage (default DefaultCatchupWindow). Ticks missed by more are recorded
// as skipped. The window is never shorter than the executor's lease
// duration plus a second (or its poll interval, if longer): the longest a
// tick waits when the node holding the schedule dies.
func WithCatchupWindow(d time.Duration) ScheduleOption {
	return func(o *scheduleOptions) { o.catchupWindow = d }
}

// WithCatchupLatest starts only the newest of the missed ticks within the
// catch-up window and records the others as skipped; by default every one
// of them starts, oldest first (subject to the overlap policy).
func WithCatchupLatest() ScheduleOption { return func(o *scheduleOptions) { o.catchupLatest = true } }

// WithScheduleQueue overrides the queue of the executions the schedule
// starts; the default is the function's queue (DefaultQueue when the
// function is not registered in this process).
func WithScheduleQueue(q string) ScheduleOption { return func(o *scheduleOptions) { o.queue = q } }

// WithSchedulePriority sets the priority of the executions the schedule
// starts (default 0).
func WithSchedulePriority(p int) ScheduleOption { return func(o *scheduleOptions) { o.priority = p } }

// WithPaused makes the schedule paused when it is created: it takes no tick
// until ResumeSchedule.
func WithPaused() ScheduleOption { return func(o *scheduleOptions) { o.paused = true } }

// ScheduleInfo describes a schedule.
type ScheduleInfo struct {
	Name     string
	Function string
	Queue    string
	Priority int
	Input    json.RawMessage
	Spec     string
	TimeZone string
	Jitter   time.Duration
	// StartAt and EndAt are zero when unset.
	StartAt       time.Time
	EndAt         time.Time
	Overlap       Overlap
	CatchupWindow time.Duration
	CatchupLatest bool
	Paused        bool
	Note          string
	// NextRunAt is the next tick's time; zero once the schedule has ended.
	NextRunAt time.Time
	// BufferedAt is the tick OverlapBufferOne keeps, zero if none.
	BufferedAt time.Time
	// LastExecutionID is the execution of the last tick started.
	LastExecutionID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

func scheduleInfoOf(s *persistence.Schedule) ScheduleInfo {
	return ScheduleInfo{Name: s.Name, Function: s.Function, Queue: s.Queue, Priority: s.Priority,
		Input: shown(s.Input), Spec: s.Spec, TimeZone: s.TimeZone, Jitter: s.Jitter, StartAt: s.StartAt,
		EndAt: s.EndAt, Overlap: s.Overlap, CatchupWindow: s.CatchupWindow, CatchupLatest: s.CatchupLatest,
		Paused: s.Paused, Note: s.Note, NextRunAt: s.NextAt, BufferedAt: s.BufferedAt,
		LastExecutionID: s.LastExecutionID, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// ScheduleTick records what became of a schedule's tick. A row of skipped
// ticks may cover several: At is the first, LastAt the last, Count how
// many.
type ScheduleTick struct {
	At     time.Time
	LastAt time.Time
	Count  int
	// Kind is "scheduled", "trigger" or "backfill".
	Kind string
	// Status is "started" or "skipped"; Reason says why a tick was skipped.
	Status      string
	Reason      string
	ExecutionID string
	CreatedAt   time.Time
}

// ScheduleDecl is a schedule declared in code with Schedule.
type ScheduleDecl struct {
	name, spec, function string
	input                []byte
	opts                 []ScheduleOption
	err                  error
}

// Name returns the schedule's name.
func (d *ScheduleDecl) Name() string { return d.name }

var declared = struct {
	sync.Mutex
	list []*ScheduleDecl
}{}

// Schedule declares a schedule in code: every tick of spec starts fn with
// input. Bootstrap creates it, or updates it when its declaration changed,
// and so does Serve; a serving executor then fires it. The spec is a cron
// expression read by github.com/robfig/cron/v3 (five fields, or six with
// seconds first; @hourly, @daily and the like; a CRON_TZ= prefix) or an
// interval ("@every 5m", see Every). A spec that does not parse, or an
// input that does not encode, is reported by Bootstrap, with the parser's
// message. Names are unique per process: a second declaration panics, as
// it is a programming error found at init.
func Schedule[I, O any](name, spec string, fn *Func[I, O], input I, opts ...ScheduleOption) *ScheduleDecl {
	d := &ScheduleDecl{name: name, spec: spec, function: fn.Name(), opts: opts}
	d.input, d.err = json.Marshal(input)
	if d.err == nil {
		_, d.err = buildSchedule(name, spec, fn.Name(), d.input, opts)
	}
	declared.Lock()
	defer declared.Unlock()
	for _, o := range declared.list {
		if o.name == name {
			panic(fmt.Sprintf("sdk: schedule %q declared twice", name))
		}
	}
	declared.list = append(declared.list, d)
	return d
}

// buildSchedule checks a schedule's definition and returns it as stored,
// without its state; its error matches ErrInvalidSchedule.
func buildSchedule(name, spec, function string, input []byte, opts []ScheduleOption) (*persistence.Schedule, error) {
	s, err := defineSchedule(name, spec, function, input, opts)
	if err != nil {
		return nil, &invalidSchedule{err}
	}
	return s, nil
}

func defineSchedule(name, spec, function string, input []byte, opts []ScheduleOption) (*persistence.Schedule, error) {
	o := scheduleOptions{overlap: OverlapSkip, catchupWindow: DefaultCatchupWindow}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case name == "":
		return nil, errors.New("sdk: a schedule needs a name")
	case function == "":
		return nil, fmt.Errorf("sdk: schedule %q names no function", name)
	case !o.overlap.Valid():
		return nil, fmt.Errorf("sdk: schedule %q: unknown overlap policy %q (skip, buffer_one, allow_all or cancel_previous)", name, o.overlap)
	case o.jitter < 0 || o.catchupWindow < 0:
		return nil, fmt.Errorf("sdk: schedule %q: negative jitter or catch-up window", name)
	case !o.start.IsZero() && !o.end.IsZero() && o.end.Before(o.start):
		return nil, fmt.Errorf("sdk: schedule %q ends (%s) before it starts (%s)", name, o.end, o.start)
	}
	if _, err := parseSpec(spec, o.timeZone); err != nil {
		return nil, fmt.Errorf("sdk: schedule %q: %w", name, err)
	}
	queue := o.queue
	if queue == "" {
		queue = DefaultQueue
		if fn, ok := lookup(function); ok {
			queue = fn.Queue
		}
	}
	// Stored to the millisecond: a declaration compares equal to its row.
	ms := time.Millisecond
	return &persistence.Schedule{Name: name, Function: function, Queue: queue, Input: input, Priority: o.priority,
		Spec: spec, TimeZone: o.timeZone, Jitter: o.jitter.Truncate(ms), StartAt: o.start.UTC().Truncate(ms),
		EndAt: o.end.UTC().Truncate(ms), Overlap: o.overlap, CatchupWindow: o.catchupWindow.Truncate(ms),
		CatchupLatest: o.catchupLatest, Paused: o.paused, Note: o.note}, nil
}

// sameDefinition reports whether a and b start the same executions at the
// same times.
func sameDefinition(a, b *persistence.Schedule) bool {
	return a.Function == b.Function && a.Queue == b.Queue && bytes.Equal(a.Input, b.Input) && a.Priority == b.Priority &&
		a.Spec == b.Spec && a.TimeZone == b.TimeZone && a.Jitter == b.Jitter && a.StartAt.Equal(b.StartAt) &&
		a.EndAt.Equal(b.EndAt) && a.Overlap == b.Overlap && a.CatchupWindow == b.CatchupWindow &&
		a.CatchupLatest == b.CatchupLatest
}

// sameTimes reports whether a and b tick at the same times.
func sameTimes(a, b *persistence.Schedule) bool {
	return a.Spec == b.Spec && a.TimeZone == b.TimeZone && a.StartAt.Equal(b.StartAt) && a.EndAt.Equal(b.EndAt)
}

// encodeInput encodes a schedule's input (a json.RawMessage as it is).
func encodeInput(input any) ([]byte, error) {
	if raw, ok := input.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("the input is not valid JSON")
		}
		return raw, nil
	}
	return json.Marshal(input)
}

// CreateSchedule makes a schedule that starts function with input at every
// tick of spec (see Schedule for the spec, ScheduleOption for the rest). The
// function need not be registered in this process; the input is encoded as
// JSON (a json.RawMessage is kept as it is). It returns an error matching
// ErrExists when the name is taken, and one carrying the parser's message
// for a spec that does not parse (matching ErrInvalidSchedule, as every
// refused definition does).
func (e *Executor) CreateSchedule(ctx context.Context, name, spec, function string, input any, opts ...ScheduleOption) (ScheduleInfo, error) {
	in, err := encodeInput(input)
	if err != nil {
		return ScheduleInfo{}, fmt.Errorf("sdk: schedule %q: encoding input: %w", name, err)
	}
	if err := e.rt.CheckPayload(function, "input", len(in)); err != nil {
		return ScheduleInfo{}, fmt.Errorf("sdk: schedule %q: %w", name, err)
	}
	s, err := buildSchedule(name, spec, function, in, opts)
	if err != nil {
		return ScheduleInfo{}, err
	}
	if err := e.firstTick(ctx, s); err != nil {
		return ScheduleInfo{}, err
	}
	got, err := e.backend.CreateSchedule(ctx, s)
	if err != nil {
		return ScheduleInfo{}, fmt.Errorf("creating schedule %q: %w", name, err)
	}
	e.kickSchedules()
	return scheduleInfoOf(got), nil
}

// firstTick sets s's next tick: the first after the backend's clock.
func (e *Executor) firstTick(ctx context.Context, s *persistence.Schedule) error {
	p, err := newSpec(s)
	if err != nil {
		return &invalidSchedule{fmt.Errorf("sdk: schedule %q: %w", s.Name, err)}
	}
	now, err := e.backend.Now(ctx)
	if err != nil {
		return err
	}
	s.NextAt = p.after(now)
	if s.NextAt.IsZero() && (s.EndAt.IsZero() || s.EndAt.After(now)) {
		return &invalidSchedule{fmt.Errorf("sdk: schedule %q: spec %q has no tick within five years", s.Name, s.Spec)}
	}
	s.WakeAt, s.BufferedAt = s.NextAt, time.Time{}
	return nil
}

// UpdateSchedule replaces the definition of schedule name, keeping its
// state (paused or not, its last execution). When its times change (spec,
// time zone, start, end), its next tick is computed again from now. It
// returns an error matching ErrNotFound for an unknown schedule.
func (e *Executor) UpdateSchedule(ctx context.Context, name, spec, function string, input any, opts ...ScheduleOption) (ScheduleInfo, error) {
	in, err := encodeInput(input)
	if err != nil {
		return ScheduleInfo{}, fmt.Errorf("sdk: schedule %q: encoding input: %w", name, err)
	}
	if err := e.rt.CheckPayload(function, "input", len(in)); err != nil {
		return ScheduleInfo{}, fmt.Errorf("sdk: schedule %q: %w", name, err)
	}
	def, err := buildSchedule(name, spec, function, in, opts)
	if err != nil {
		return ScheduleInfo{}, err
	}
	return e.changeSchedule(ctx, name, func(s *persistence.Schedule) (bool, error) {
		return e.redefine(ctx, s, def)
	})
}

// redefine copies def's definition into s, and computes its next tick again
// when its times changed. s keeps its state: paused or not (pausing is
// PauseSchedule's), its note, its buffered tick and last execution.
func (e *Executor) redefine(ctx context.Context, s, def *persistence.Schedule) (bool, error) {
	if sameDefinition(s, def) {
		return false, nil
	}
	retime := !sameTimes(s, def)
	paused, note, next, wake, buffered, last := s.Paused, s.Note, s.NextAt, s.WakeAt, s.BufferedAt, s.LastExecutionID
	id, version, created := s.ID, s.Version, s.CreatedAt
	*s = *def
	s.ID, s.Version, s.CreatedAt = id, version, created
	s.Paused, s.Note, s.NextAt, s.WakeAt, s.BufferedAt, s.LastExecutionID = paused, note, next, wake, buffered, last
	if retime {
		if err := e.firstTick(ctx, s); err != nil {
			return false, err
		}
	}
	return true, nil
}

// changeSchedule reads schedule name, lets change modify it, and writes it
// back under its version, again from the read when another write came
// between. change reports whether there is anything to write.
func (e *Executor) changeSchedule(ctx context.Context, name string, change func(*persistence.Schedule) (bool, error)) (ScheduleInfo, error) {
	for {
		s, err := e.backend.GetSchedule(ctx, name)
		if errors.Is(err, persistence.ErrNotFound) {
			return ScheduleInfo{}, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return ScheduleInfo{}, fmt.Errorf("reading schedule %q: %w", name, err)
		}
		changed, err := change(s)
		if err != nil || !changed {
			return scheduleInfoOf(s), err
		}
		got, err := e.backend.UpdateSchedule(ctx, s)
		if errors.Is(err, persistence.ErrStaleEpoch) {
			continue // written meanwhile (a node's claim, another update): again
		}
		if errors.Is(err, persistence.ErrNotFound) {
			return ScheduleInfo{}, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
		}
		if err != nil {
			return ScheduleInfo{}, fmt.Errorf("updating schedule %q: %w", name, err)
		}
		e.kickSchedules()
		return scheduleInfoOf(got), nil
	}
}

// PauseSchedule stops schedule name from taking ticks until ResumeSchedule;
// note says why (shown by GetSchedule; "" for none). Executions already
// started go on. It returns an error matching ErrNotFound for an unknown
// schedule.
func (e *Executor) PauseSchedule(ctx context.Context, name, note string) (ScheduleInfo, error) {
	return e.changeSchedule(ctx, name, func(s *persistence.Schedule) (bool, error) {
		if s.Paused && s.Note == note {
			return false, nil
		}
		s.Paused, s.Note = true, note
		return true, nil
	})
}

// ResumeSchedule lets a paused schedule take ticks again, from the first
// tick after now: the ticks that fell while it was paused are not caught
// up (use BackfillSchedule for them). It returns an error matching
// ErrNotFound for an unknown schedule.
func (e *Executor) ResumeSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	return e.changeSchedule(ctx, name, func(s *persistence.Schedule) (bool, error) {
		if !s.Paused {
			return false, nil
		}
		s.Paused, s.Note = false, ""
		return true, e.firstTick(ctx, s)
	})
}

// DeleteSchedule removes schedule name and its record of ticks; the
// executions it started are kept. It returns an error matching ErrNotFound
// for an unknown schedule. A schedule declared in code is made again by
// the next Bootstrap unless its declaration is removed.
func (e *Executor) DeleteSchedule(ctx context.Context, name string) error {
	if err := e.backend.DeleteSchedule(ctx, name); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("schedule %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("deleting schedule %q: %w", name, err)
	}
	return nil
}

// GetSchedule returns schedule name, or an error matching ErrNotFound.
func (e *Executor) GetSchedule(ctx context.Context, name string) (ScheduleInfo, error) {
	s, err := e.backend.GetSchedule(ctx, name)
	if errors.Is(err, persistence.ErrNotFound) {
		return ScheduleInfo{}, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return ScheduleInfo{}, fmt.Errorf("reading schedule %q: %w", name, err)
	}
	return scheduleInfoOf(s), nil
}

// ListSchedules returns every schedule, by name.
func (e *Executor) ListSchedules(ctx context.Context) ([]ScheduleInfo, error) {
	ss, err := e.backend.ListSchedules(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	out := make([]ScheduleInfo, len(ss))
	for i, s := range ss {
		out[i] = scheduleInfoOf(s)
	}
	return out, nil
}

// ScheduleTicks returns what became of the latest ticks of schedule name,
// newest first, at most limit (0 means 100; the last
// persistence.MaxTicksKept are kept).
func (e *Executor) ScheduleTicks(ctx context.Context, name string, limit int) ([]ScheduleTick, error) {
	ts, err := e.backend.ListScheduleTicks(ctx, name, limit)
	if err != nil {
		return nil, fmt.Errorf("listing ticks of schedule %q: %w", name, err)
	}
	out := make([]ScheduleTick, len(ts))
	for i, t := range ts {
		out[i] = ScheduleTick{At: t.At, LastAt: t.LastAt, Count: t.Count, Kind: string(t.Kind), Status: string(t.Status),
			Reason: t.Reason, ExecutionID: t.ExecutionID, CreatedAt: t.CreatedAt}
	}
	return out, nil
}
