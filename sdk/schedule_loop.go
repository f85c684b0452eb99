package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/persistence"
)

// Limits of one pass over a schedule.
const (
	// maxDuePerPass bounds the ticks one fire takes; a schedule further
	// behind is due again at once and taken by the next pass.
	maxDuePerPass = 1000
	// maxSkipCount bounds the ticks counted in a row of ticks skipped for
	// falling outside the catch-up window.
	maxSkipCount = 100_000
	// maxBackfill bounds the ticks of one BackfillSchedule call.
	maxBackfill = 10_000
	// backfillChunk is how many ticks of a backfill one transaction writes.
	backfillChunk = 100
	// bufferRecheck is how often a schedule holding a buffered tick looks
	// whether the execution before it has finished.
	bufferRecheck = time.Second
	// claimBatch is how many due schedules one claim takes.
	claimBatch = 16
	// schedulePoll bounds how long the loop sleeps without asking the
	// database for the next due schedule (or the poll interval, if
	// longer): how soon a node sees a schedule made or changed by another
	// process. Due ticks need no poll: the loop sleeps until them.
	schedulePoll = time.Second
)

// Reasons recorded for skipped ticks.
const (
	reasonMissed     = "missed: older than the catch-up window"
	reasonLatestOnly = "catch-up: only the latest missed tick starts"
	reasonOverlap    = "overlap: the previous execution had not finished"
	reasonBuffered   = "overlap: a tick is buffered already"
	reasonSuperseded = "overlap: superseded by a later tick (cancel_previous)"
)

// scheduler is a serving executor's loop over the schedules.
type scheduler struct {
	kick chan struct{}
	once sync.Once

	mu     sync.Mutex
	stop   context.CancelFunc // nil until the loop starts
	done   chan struct{}      // closed when the loop ends
	closed bool
}

func newScheduler() *scheduler { return &scheduler{kick: make(chan struct{}, 1)} }

// kickSchedules makes the schedule loop look at the schedules now.
func (e *Executor) kickSchedules() {
	select {
	case e.sched.kick <- struct{}{}:
	default:
	}
}

// startSchedules starts the schedule loop, once, unless it was stopped.
func (e *Executor) startSchedules() {
	e.sched.once.Do(func() {
		e.sched.mu.Lock()
		defer e.sched.mu.Unlock()
		if e.sched.closed {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		e.sched.stop, e.sched.done = cancel, done
		go func() {
			defer close(done)
			e.runSchedules(ctx)
		}()
	})
}

// stopSchedules stops the schedule loop and waits for it to end.
func (e *Executor) stopSchedules() {
	e.sched.mu.Lock()
	e.sched.closed = true
	stop, done := e.sched.stop, e.sched.done
	e.sched.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// runSchedules creates or updates the schedules declared in code, then
// fires due schedules until ctx ends. It asks the backend when the next
// schedule is due (NextScheduleAt) and sleeps until then, or for
// schedulePoll at most, or until a schedule is changed through this
// executor.
func (e *Executor) runSchedules(ctx context.Context) {
	log := e.opts.logger.With(slog.String("node", e.NodeID()))
	if err := e.declareSchedules(ctx); err != nil && ctx.Err() == nil {
		log.ErrorContext(ctx, "declaring schedules", slog.Any("error", err))
	}
	var offset time.Duration // the backend's clock minus this host's
	for {
		wait := max(e.opts.poll, schedulePoll)
		next, err := e.backend.NextScheduleAt(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "reading next schedule time", slog.Any("error", err))
			wait = max(wait, time.Second) // a database that is down: do not flood the log
		case next.IsZero():
		case next.Sub(time.Now().Add(offset)) > 0:
			wait = min(wait, next.Sub(time.Now().Add(offset)))
		default:
			n, now, err := e.fireDue(ctx, log)
			if !now.IsZero() {
				offset = time.Until(now)
			}
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "claiming due schedules", slog.Any("error", err))
			}
			if n == claimBatch {
				continue // there may be more
			}
			wait = min(wait, 10*time.Millisecond) // what is due now is claimed by another node, or the clocks differ
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-e.sched.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// fireDue claims due schedules and fires each. It returns how many it
// claimed and the backend's clock at the claim.
func (e *Executor) fireDue(ctx context.Context, log *slog.Logger) (int, time.Time, error) {
	ss, now, err := e.backend.ClaimDueSchedules(ctx, e.NodeID(), e.rt.LeaseTTL(), claimBatch)
	if err != nil {
		return 0, now, err
	}
	for _, s := range ss {
		if err := e.fire(ctx, s, now); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "firing schedule", slog.String("schedule", s.Name), slog.Any("error", err))
		}
	}
	return len(ss), now, nil
}

// tickPlan is what a pass takes of a schedule's ticks.
type tickPlan struct {
	skipped []*persistence.ScheduleTick
	due     []time.Time
	next    time.Time
}

// planTicks takes the ticks of s due at now: those older than the
// catch-up window become one row of skipped ticks; the others are due,
// oldest first, or only the newest with CatchupLatest. window is the
// effective catch-up window.
func planTicks(s *persistence.Schedule, p *spec, now time.Time, window time.Duration) tickPlan {
	var plan tickPlan
	t := s.NextAt
	windowStart := now.Add(-window)
	if !t.IsZero() && !t.After(now) && t.Before(windowStart) {
		first := t
		last, n, next, capped := p.skipBefore(t, windowStart)
		reason := reasonMissed
		if capped {
			reason = fmt.Sprintf("%s (counted up to %d)", reasonMissed, maxSkipCount)
		}
		plan.skipped = append(plan.skipped, &persistence.ScheduleTick{At: first, LastAt: last, Count: n,
			Kind: persistence.TickScheduled, Status: persistence.TickSkipped, Reason: reason})
		t = next
	}
	for !t.IsZero() && !t.After(now) && len(plan.due) < maxDuePerPass {
		plan.due = append(plan.due, t)
		t = p.after(t)
	}
	if n := len(plan.due); s.CatchupLatest && n > 1 {
		plan.skipped = append(plan.skipped, &persistence.ScheduleTick{At: plan.due[0], LastAt: plan.due[n-2], Count: n - 1,
			Kind: persistence.TickScheduled, Status: persistence.TickSkipped, Reason: reasonLatestOnly})
		plan.due = plan.due[n-1:]
	}
	plan.next = t
	return plan
}

// catchupWindow is the effective catch-up window of s: never shorter than
// the time a tick can wait on a live cluster (a node that died holding the
// schedule's claim, whose lease runs out, then a poll).
func (e *Executor) catchupWindow(s *persistence.Schedule) time.Duration {
	return max(s.CatchupWindow, e.rt.LeaseTTL()+max(e.opts.poll, schedulePoll))
}

// fire takes the due ticks of s, claimed at now (the backend's clock):
// the executions to start, the ticks to record and the schedule's next
// state, in one FireSchedule fenced by the claim.
func (e *Executor) fire(ctx context.Context, s *persistence.Schedule, now time.Time) error {
	p, err := newSpec(s)
	if err != nil {
		return err
	}
	plan := planTicks(s, p, now, e.catchupWindow(s))
	running, err := e.stillRunning(ctx, s.LastExecutionID)
	if err != nil {
		return err
	}
	f := &persistence.ScheduleFire{Name: s.Name, Owner: e.NodeID(), Version: s.Version, Ticks: plan.skipped,
		NextAt: plan.next, BufferedAt: s.BufferedAt}
	start := func(tick time.Time) {
		x := e.tickExecution(s, persistence.TickScheduled, tick, now)
		f.Create = append(f.Create, x)
		f.Ticks = append(f.Ticks, &persistence.ScheduleTick{At: tick, Kind: persistence.TickScheduled,
			Status: persistence.TickStarted, ExecutionID: x.ID})
		f.LastExecutionID, running = x.ID, true
	}
	skip := func(tick time.Time, reason string) {
		f.Ticks = append(f.Ticks, &persistence.ScheduleTick{At: tick, Kind: persistence.TickScheduled,
			Status: persistence.TickSkipped, Reason: reason})
	}
	if !f.BufferedAt.IsZero() && !running {
		start(f.BufferedAt)
		f.BufferedAt = time.Time{}
	}
	var cancel string
	for i, tick := range plan.due {
		switch {
		case !running || s.Overlap == OverlapAllowAll:
			start(tick)
		case s.Overlap == OverlapSkip:
			skip(tick, reasonOverlap)
		case s.Overlap == OverlapCancelPrevious && i < len(plan.due)-1:
			skip(tick, reasonSuperseded)
		case s.Overlap == OverlapCancelPrevious:
			if f.LastExecutionID == "" {
				cancel = s.LastExecutionID
			}
			start(tick)
		case f.BufferedAt.IsZero(): // OverlapBufferOne
			f.BufferedAt = tick
		default:
			skip(tick, reasonBuffered)
		}
	}
	f.WakeAt = f.NextAt
	if !f.BufferedAt.IsZero() {
		if recheck := now.Add(bufferRecheck); f.WakeAt.IsZero() || recheck.Before(f.WakeAt) {
			f.WakeAt = recheck
		}
	}
	execs, err := e.fireSchedule(ctx, f)
	if errors.Is(err, persistence.ErrStaleEpoch) {
		return nil // the claim was lost (a pause past the lease, an update): its new holder fires it
	}
	if err != nil {
		return err
	}
	e.dispatchTicks(execs, now)
	e.opts.logger.DebugContext(ctx, "schedule fired", slog.String("schedule", s.Name), slog.String("node", e.NodeID()),
		slog.Int("started", len(f.Create)), slog.Int("tick_rows", len(f.Ticks)), slog.Time("next_at", f.NextAt))
	if cancel != "" {
		if err := e.Cancel(ctx, cancel); err != nil && !errors.Is(err, ErrFinished) && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("canceling the previous execution %s: %w", cancel, err)
		}
	}
	return nil
}

// stillRunning reports whether execution id ("" for none) has not ended.
func (e *Executor) stillRunning(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	x, err := e.backend.GetExecution(ctx, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return false, nil // removed by a cleanup: long finished
	}
	if err != nil {
		return false, fmt.Errorf("reading the previous execution %s: %w", id, err)
	}
	return !x.Status.Terminal(), nil
}

// tickExecution is the execution of tick of s, with the tick's
// idempotency key and, for a scheduled tick, its jitter.
func (e *Executor) tickExecution(s *persistence.Schedule, kind persistence.TickKind, tick, now time.Time) *persistence.Execution {
	id := actors.NewID()
	x := &persistence.Execution{ID: id, RootID: id, Function: s.Function, Queue: s.Queue, Status: persistence.StatusPending,
		Input: s.Input, Priority: s.Priority, IdempotencyKey: tickKey(s, kind, tick)}
	if fn, ok := lookup(s.Function); ok {
		x.Version = fn.Version
	}
	if kind == persistence.TickScheduled {
		if at := tick.Add(jitterOf(s, tick)); at.After(now) {
			x.RunAt = at
		}
	}
	return x
}

// dispatchTicks wakes the nodes that run the executions just stored.
func (e *Executor) dispatchTicks(execs []*persistence.Execution, now time.Time) {
	for _, x := range execs {
		if x.Status == persistence.StatusPending && x.Owner == "" {
			e.rt.Dispatch(x.ID, x.Queue, x.Function, !x.RunAt.After(now))
		}
	}
}

// declareSchedules creates the schedules declared in code (Schedule), or
// updates those whose declaration changed.
func (e *Executor) declareSchedules(ctx context.Context) error {
	declared.Lock()
	list := append([]*ScheduleDecl(nil), declared.list...)
	declared.Unlock()
	var errs []error
	for _, d := range list {
		if err := e.declare(ctx, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Executor) declare(ctx context.Context, d *ScheduleDecl) error {
	if d.err != nil {
		return fmt.Errorf("declaring schedule %q: %w", d.name, d.err)
	}
	def, err := buildSchedule(d.name, d.spec, d.function, d.input, d.opts)
	if err != nil {
		return err
	}
	if err := e.firstTick(ctx, def); err != nil {
		return err
	}
	if _, err := e.backend.CreateSchedule(ctx, def); err == nil {
		e.kickSchedules()
		return nil
	} else if !errors.Is(err, persistence.ErrExists) {
		return fmt.Errorf("declaring schedule %q: %w", d.name, err)
	}
	_, err = e.changeSchedule(ctx, d.name, func(s *persistence.Schedule) (bool, error) {
		return e.redefine(ctx, s, def)
	})
	return err
}

// TriggerSchedule starts one execution of schedule name now, outside its
// spec and whatever its overlap policy, and returns its ID. The tick is
// recorded with kind "trigger". It returns an error matching ErrNotFound
// for an unknown schedule.
func (e *Executor) TriggerSchedule(ctx context.Context, name string) (string, error) {
	s, err := e.backend.GetSchedule(ctx, name)
	if errors.Is(err, persistence.ErrNotFound) {
		return "", fmt.Errorf("schedule %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("reading schedule %q: %w", name, err)
	}
	now, err := e.backend.Now(ctx)
	if err != nil {
		return "", err
	}
	at := now.Truncate(time.Millisecond)
	if at.Truncate(time.Second).Equal(at) {
		at = at.Add(time.Millisecond) // spec ticks are whole seconds: keep the tick rows apart
	}
	x := e.tickExecution(s, persistence.TickTrigger, at, now)
	execs, err := e.fireSchedule(ctx, &persistence.ScheduleFire{Name: name, Create: []*persistence.Execution{x},
		Ticks: []*persistence.ScheduleTick{{At: at, Kind: persistence.TickTrigger, Status: persistence.TickStarted,
			ExecutionID: x.ID}}, LastExecutionID: x.ID})
	if err != nil {
		return "", fmt.Errorf("triggering schedule %q: %w", name, err)
	}
	e.dispatchTicks(execs, now)
	return execs[0].ID, nil
}

// BackfillSchedule starts the ticks of schedule name's spec from from to to
// (both included; to no later than now), each with the same idempotency
// key as the scheduled tick, so a tick that ran already is not started
// again: its execution's ID is returned in its place. The ticks are the
// schedule's own, within its start and end times; backfilled ticks ignore
// the overlap policy and pausing. It
// returns the executions' IDs, oldest first, at most 10,000 ticks per
// call, and an error matching ErrNotFound for an unknown schedule.
func (e *Executor) BackfillSchedule(ctx context.Context, name string, from, to time.Time) ([]string, error) {
	s, err := e.backend.GetSchedule(ctx, name)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("schedule %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading schedule %q: %w", name, err)
	}
	now, err := e.backend.Now(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case to.Before(from):
		return nil, fmt.Errorf("backfilling schedule %q: the range ends (%s) before it starts (%s)", name, to, from)
	case to.After(now):
		return nil, fmt.Errorf("backfilling schedule %q: the range ends (%s) after now (%s): future ticks are the schedule's", name, to, now)
	}
	p, err := newSpec(s)
	if err != nil {
		return nil, fmt.Errorf("backfilling schedule %q: %w", name, err)
	}
	var ticks []time.Time
	for t := p.after(from.Add(-time.Nanosecond)); !t.IsZero() && !t.After(to); t = p.after(t) {
		if len(ticks) == maxBackfill {
			return nil, fmt.Errorf("backfilling schedule %q: more than %d ticks from %s to %s: split the range", name, maxBackfill, from, to)
		}
		ticks = append(ticks, t)
	}
	ids := make([]string, 0, len(ticks))
	for len(ticks) > 0 {
		chunk := ticks[:min(len(ticks), backfillChunk)]
		ticks = ticks[len(chunk):]
		f := &persistence.ScheduleFire{Name: name}
		for _, t := range chunk {
			x := e.tickExecution(s, persistence.TickBackfill, t, now)
			f.Create = append(f.Create, x)
			f.Ticks = append(f.Ticks, &persistence.ScheduleTick{At: t, Kind: persistence.TickBackfill,
				Status: persistence.TickStarted, ExecutionID: x.ID})
		}
		execs, err := e.fireSchedule(ctx, f)
		if err != nil {
			return ids, fmt.Errorf("backfilling schedule %q: %w", name, err)
		}
		e.dispatchTicks(execs, now)
		for _, x := range execs {
			ids = append(ids, x.ID)
		}
	}
	return ids, nil
}
