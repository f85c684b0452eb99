package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// execution is one activation of an execution on this node: its lease, its
// in-memory journal and the channels its body waits on.
type execution struct {
	rt    *Runtime
	id    string
	rec   *persistence.Execution
	fresh bool
	self  *actor.PID
	fn    *Function

	mu      sync.Mutex
	epoch   int64
	entries map[int]*persistence.JournalEntry
	waiters map[int]chan struct{}
	next    int
	// snapAt is the last position covered by the stored snapshot; sinceSnap
	// counts journal writes since.
	snapAt    int
	sinceSnap int
	// closed is set once the activation has passivated, finished or lost its
	// lease: durable operations then fail instead of writing.
	closed     error
	passivated bool
	nondet     *persistence.ErrorInfo
	wakeC      chan struct{}
	// virtual is set while the execution is a child that exists only in
	// memory: its row is written with its first durable write, or with its
	// outcome (one write for a step that makes none). matMu serialises that.
	virtual *virtualChild
	matMu   sync.Mutex
	// canceled is set once a cancel reached this activation; cancelBody
	// cancels the body's context with ErrCanceled as the cause.
	canceled   bool
	cancelBody context.CancelCauseFunc
	// signalC is poked when a signal may have arrived for a wait in memory.
	signalC chan struct{}
	// confirmed is when this activation last knew it held its lease: its
	// start, and the start of each write or renewal that succeeded. After
	// a long gap (the process was stopped, or the database slow) a new
	// step checks the lease first (checkLease).
	confirmed atomic.Int64 // monotonic nanoseconds since confirmBase
	// attemptStart is when the body of this activation's attempt started
	// (under mu), for the duration logged at its end.
	attemptStart time.Time
	// progressSeq numbers the counter additions of this activation
	// (CounterAdd); cachedFrom is the execution whose cached result this
	// one took ("" if none).
	progressSeq atomic.Int64
	cachedFrom  string
}

// confirmBase is the origin of execution.confirmed; time.Since of it reads
// the monotonic clock, which a stopped process's wall clock jump cannot
// fool.
var confirmBase = time.Now()

// confirm records that the lease was held at t.
func (e *execution) confirm(t time.Time) {
	v := int64(t.Sub(confirmBase))
	for {
		cur := e.confirmed.Load()
		if v <= cur || e.confirmed.CompareAndSwap(cur, v) {
			return
		}
	}
}

// leaseLost stops this activation, whose lease another node took (or that
// was released for a takeover), and says so in the log (stent chaos reads
// this line).
func (e *execution) leaseLost() {
	e.rt.log.Warn("lease lost to another node; stopping the activation",
		slog.String("execution_id", e.id), slog.Int64("epoch", e.currentEpoch()))
	e.abandon()
}

// checkLease makes sure, before a step starts or the body goes on past a
// child's outcome, that this activation still holds its lease when it has
// not known so for half a lease: a process stopped (SIGSTOP) past its
// lease, whose execution another node took over, must start no step and
// run no more of the body when it resumes. An in-memory child asks for its
// parent's lease, which fences its writes.
func (e *execution) checkLease(ctx context.Context) error {
	owner := e
	if e.isVirtual() {
		if p := e.rt.lookupActive(e.rec.ParentID); p != nil {
			owner = p
		}
	}
	since := time.Since(confirmBase) - time.Duration(owner.confirmed.Load())
	if since < owner.rt.cfg.LeaseTTL/2 || owner.isVirtual() {
		return nil
	}
	start := time.Now()
	lost, err := owner.rt.backend.LostLeases(ctx, owner.rt.cfg.NodeID,
		[]persistence.Lease{{ExecutionID: owner.id, Epoch: owner.currentEpoch()}})
	if err != nil {
		return fmt.Errorf("checking the lease of %s: %w", owner.id, err)
	}
	if len(lost) > 0 {
		owner.leaseLost()
		return fmt.Errorf("execution %s: %w", owner.id, errLeaseLost)
	}
	owner.confirm(start)
	return nil
}

// virtualChild is what a child needs to write its own row later: the
// parent's journal entry for it and the parent activation's epoch, which
// fences that write (a parent that lost its lease does not get the child).
type virtualChild struct {
	parentEpoch int64
	intent      *persistence.JournalEntry
}

// materialize writes the row of a child that so far lived only in memory,
// with its parent's journal entry, before the child's first own write.
func (e *execution) materialize(ctx context.Context) error {
	e.matMu.Lock()
	defer e.matMu.Unlock()
	e.mu.Lock()
	v := e.virtual
	e.mu.Unlock()
	if v == nil {
		return nil
	}
	row := *e.rec
	row.LeaseExpiresAt, row.LeaseTTL = time.Time{}, e.rt.cfg.LeaseTTL
	c := &persistence.Commit{ExecutionID: row.ParentID, Epoch: v.parentEpoch,
		Create: []*persistence.Execution{&row}, Journal: []*persistence.JournalEntry{v.intent}}
	if err := e.apply(ctx, c); err != nil {
		if errors.Is(err, errLeaseLost) { // fenced by the parent's epoch: the parent lost it
			e.abandonParent(v)
		}
		return err
	}
	e.mu.Lock()
	e.virtual = nil
	e.mu.Unlock()
	return nil
}

func newExecution(rt *Runtime, rec *persistence.Execution, fresh bool, leasedAt time.Time) *execution {
	e := &execution{
		rt:      rt,
		id:      rec.ID,
		rec:     rec,
		fresh:   fresh,
		epoch:   rec.Epoch,
		entries: make(map[int]*persistence.JournalEntry),
		waiters: make(map[int]chan struct{}),
		snapAt:  -1,
		wakeC:   make(chan struct{}, 1),
		signalC: make(chan struct{}, 1),
	}
	if leasedAt.IsZero() {
		leasedAt = time.Now() // its lease was just taken (or is taken by its runner first)
	}
	e.confirm(leasedAt)
	return e
}

type execKey struct{}

// fromContext returns the execution a body's context carries.
func fromContext(ctx context.Context) *execution {
	e, _ := ctx.Value(execKey{}).(*execution)
	return e
}

// ExecutionID returns the ID of the execution ctx belongs to, or "".
func ExecutionID(ctx context.Context) string {
	if e := fromContext(ctx); e != nil {
		return e.id
	}
	return ""
}

// InExecution reports whether ctx belongs to a running execution body.
func InExecution(ctx context.Context) bool { return fromContext(ctx) != nil }

type bodyResult struct {
	out    []byte
	err    error
	panic  any
	stack  []byte
	exited bool
}

// run is the runner goroutine of one activation.
func (e *execution) run() {
	rt := e.rt
	defer func() {
		if r := recover(); r != nil {
			rt.log.Error("execution runner panicked", slog.String("execution_id", e.id), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
		e.close(errPassivated)
		rt.runners.Done()
		rt.system.Root.Send(e.self, &runnerDone{})
	}()
	ctx := rt.baseCtx
	if e.epoch == 0 {
		if !rt.coversStored(ctx, e.id) {
			return // it needs tags this node lacks: a node that has them claims it
		}
		rec, err := rt.backend.AcquireLease(ctx, e.id, rt.cfg.NodeID, rt.cfg.LeaseTTL)
		if err != nil {
			if !errors.Is(err, persistence.ErrLeaseHeld) && !errors.Is(err, persistence.ErrNotFound) && ctx.Err() == nil {
				rt.log.Error("acquiring a lease", slog.String("execution_id", e.id), slog.Any("error", err))
			}
			return
		}
		e.rec = rec
		e.mu.Lock()
		e.epoch = rec.Epoch
		e.mu.Unlock()
	}
	rec := e.rec
	if rec.Status.Terminal() {
		return
	}
	fn, ok := rt.cfg.Lookup(rec.Function)
	if !ok {
		// Placed here, or asked for by name, without the function: give
		// the execution back for a node that has it (claims go only where
		// the function is), rather than fail it for good.
		rt.leaveForAnotherNode(ctx, rec, e.currentEpoch())
		return
	}
	e.fn = fn
	if e.refuseUncovered(ctx, fn) {
		return
	}
	if !e.fresh {
		if err := e.load(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			// A journal that does not decode: quarantine the execution with
			// the reason, never run it on a guess.
			rt.log.Error("loading a journal", slog.String("execution_id", e.id), slog.Any("error", err))
			e.settle(rec.Attempts+1, bodyResult{err: NonRetryable(err)}, persistence.ErrorKindError)
			return
		}
	}
	if !rec.Deadline.IsZero() && !time.Now().Before(rec.Deadline) {
		e.settle(rec.Attempts+1, bodyResult{err: NonRetryable(fmt.Errorf("execution %s passed its deadline: %w", e.id, ErrTimeout))}, persistence.ErrorKindTimeout)
		return
	}
	if rec.CancelRequested {
		e.settle(rec.Attempts+1, bodyResult{err: fmt.Errorf("execution %s: %w", e.id, ErrCanceled)}, persistence.ErrorKindCanceled)
		return
	}
	attempt := rec.Attempts + 1
	if e.fromCache(ctx, fn, attempt) {
		return
	}
	bctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(context.Canceled) }
	defer cancel()
	e.mu.Lock()
	e.cancelBody = cancelCause
	canceled := e.canceled
	e.mu.Unlock()
	if canceled {
		// Canceled before the body started (a child spawned while its
		// parent was being canceled): it never runs.
		cancelCause(ErrCanceled)
		e.settle(attempt, bodyResult{err: fmt.Errorf("execution %s: %w", e.id, ErrCanceled)}, persistence.ErrorKindCanceled)
		return
	}
	bctx = context.WithValue(bctx, execKey{}, e)
	if fn.MaxConcurrent > 0 {
		// Wait for a permit: the body runs only with one. Waiting holds
		// the lease (renewed) but no goroutine of the body.
		if err := rt.acquirePermit(bctx, e, fn.Name, fn.Queue, fn.MaxConcurrent, rec.Priority, rec.CreatedAt); err != nil {
			e.settle(attempt, bodyResult{err: err}, "") // canceled, or the node stops (not recorded)
			return
		}
		defer rt.releasePermit(e, fn.Name, fn.Queue)
		// The wait may have been long (the process stopped meanwhile).
		if err := e.checkLease(bctx); err != nil {
			e.settle(attempt, bodyResult{err: err}, "")
			return
		}
	}
	var timeout <-chan time.Time
	if fn.Timeout > 0 {
		t := time.NewTimer(fn.Timeout)
		defer t.Stop()
		timeout = t.C
		var tcancel context.CancelFunc
		bctx, tcancel = context.WithTimeoutCause(bctx, fn.Timeout, ErrTimeout)
		defer tcancel()
	}
	if !rec.Deadline.IsZero() {
		var dcancel context.CancelFunc
		bctx, dcancel = context.WithDeadlineCause(bctx, rec.Deadline, ErrTimeout)
		defer dcancel()
	}
	e.mu.Lock()
	e.attemptStart = time.Now()
	e.mu.Unlock()
	e.logStarted(attempt)
	done := make(chan bodyResult, 1)
	go e.body(bctx, fn, rec.Input, done)
	var r bodyResult
	select {
	case r = <-done:
	case <-timeout:
		r = bodyResult{err: fmt.Errorf("attempt %d of %s ran longer than %s: %w", attempt, fn.Name, fn.Timeout, ErrTimeout)}
		cancel()
	}
	if r.err != nil && !rec.Deadline.IsZero() && !time.Now().Before(rec.Deadline) {
		r.err = NonRetryable(fmt.Errorf("execution %s ran past its deadline (%s): %w", e.id, rec.Deadline.Format(time.RFC3339Nano), ErrTimeout))
	}
	e.settle(attempt, r, "")
}

// body runs the user's function on its own goroutine, turning a panic into
// the attempt's failure and noticing a runtime.Goexit (passivation).
func (e *execution) body(ctx context.Context, fn *Function, input []byte, done chan<- bodyResult) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			done <- bodyResult{panic: r, stack: debug.Stack()}
			return
		}
		if !returned {
			done <- bodyResult{exited: true}
		}
	}()
	if e.isCanceled() {
		// The cancel arrived while this goroutine was being started.
		returned = true
		done <- bodyResult{err: fmt.Errorf("execution %s: %w", e.id, ErrCanceled)}
		return
	}
	out, err := fn.Run(ctx, input)
	returned = true
	done <- bodyResult{out: out, err: err}
}

// load reads the snapshot and journal tail into memory.
func (e *execution) load(ctx context.Context) error {
	snap, tail, err := e.rt.backend.LoadJournal(ctx, e.id)
	if err != nil {
		return fmt.Errorf("loading journal of %s: %w", e.id, err)
	}
	var prefix []*persistence.JournalEntry
	if snap != nil {
		if prefix, err = decodeSnapshot(e.id, snap); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, list := range [][]*persistence.JournalEntry{prefix, tail} {
		for _, ent := range list {
			// A child's outcome delivered while we were loading wins over
			// the intent we read.
			if cur, ok := e.entries[ent.Position]; ok && cur.Done {
				continue
			}
			e.entries[ent.Position] = ent
		}
	}
	if snap != nil {
		e.snapAt = snap.Position
	}
	return nil
}

// close ends the activation's right to write.
func (e *execution) close(reason error) {
	e.mu.Lock()
	if e.closed == nil {
		e.closed = reason
	}
	for p, w := range e.waiters {
		close(w)
		delete(e.waiters, p)
	}
	e.mu.Unlock()
}

// settle records the outcome of an attempt.
func (e *execution) settle(attempt int, r bodyResult, kind persistence.ErrorKind) {
	rt := e.rt
	e.mu.Lock()
	closed, passivated, nondet := e.closed, e.passivated, e.nondet
	e.mu.Unlock()
	if passivated {
		return
	}
	if errors.Is(closed, errLeaseLost) {
		rt.log.Info("activation lost its lease", slog.String("execution_id", e.id))
		return
	}
	if rt.isStopping() {
		// Shutting down: leave the attempt unrecorded; the lease is released
		// and the execution replays elsewhere or at the next start.
		return
	}
	e.mu.Lock()
	canceled := e.canceled
	e.mu.Unlock()
	var info *persistence.ErrorInfo
	switch {
	case canceled && (r.err != nil || r.panic != nil || r.exited):
		info = &persistence.ErrorInfo{Message: fmt.Sprintf("execution %s: %s", e.id, ErrCanceled), Kind: persistence.ErrorKindCanceled, NonRetryable: true}
	case nondet != nil:
		info = nondet
	case r.panic != nil:
		info = &persistence.ErrorInfo{Message: fmt.Sprintf("panic: %v", r.panic), Kind: persistence.ErrorKindPanic, Stack: string(r.stack)}
	case r.exited:
		info = &persistence.ErrorInfo{Message: "the body called runtime.Goexit without returning", Kind: persistence.ErrorKindError, NonRetryable: true}
	case r.err != nil:
		info = classify(r.err)
		if kind != "" {
			info.Kind = kind
		}
	}
	fname := e.rec.Function
	if info == nil {
		if err := e.rt.CheckPayload(fname, "output", len(r.out)); err != nil {
			// The same output every attempt: failing at once, not stored.
			info = &persistence.ErrorInfo{Message: err.Error(), Kind: persistence.ErrorKindError, NonRetryable: true}
		}
	}
	c := &persistence.Commit{ExecutionID: e.id, Epoch: e.currentEpoch(), Update: &persistence.Update{Attempts: attempt}}
	var outcome *Outcome
	var retryIn time.Duration
	if info == nil {
		c.Update.Status = persistence.StatusCompleted
		c.Update.Output = r.out
		c.Update.ClearError = true
		outcome = &Outcome{Status: persistence.StatusCompleted, Output: r.out, Function: fname, Attempts: attempt}
	} else {
		info.Function, info.ExecutionID, info.Attempts = fname, e.id, attempt
		maxAttempts := 1
		if e.fn != nil {
			maxAttempts = e.fn.Retry.MaxAttempts
		}
		if !info.NonRetryable && attempt < maxAttempts {
			retryIn = e.fn.Retry.Delay(attempt)
			c.Update.Status = persistence.StatusPending
			c.Update.Error = info
			c.Update.SetRunAt, c.Update.RunAfter = true, retryIn
			c.Update.Release = true
			e.mu.Lock()
			c.DeleteJournal = failedPositions(e.entries)
			e.mu.Unlock()
		} else {
			status := persistence.StatusFailed
			switch info.Kind {
			case persistence.ErrorKindCanceled:
				status = persistence.StatusCanceled
			case persistence.ErrorKindTimeout:
				if !e.rec.Deadline.IsZero() && !time.Now().Before(e.rec.Deadline) {
					status = persistence.StatusTimedOut
				}
			}
			c.Update.Status = status
			c.Update.Error = info
			if status == persistence.StatusFailed {
				c.DeadLetter = &persistence.DeadLetter{ID: NewID(), ExecutionID: e.id, Function: fname, Input: e.rec.Input, Error: info, Attempts: attempt}
			}
			outcome = &Outcome{Status: status, Error: info, Function: fname, Attempts: attempt}
		}
	}
	if outcome != nil && e.rec.ParentID != "" {
		c.Deliver = &persistence.JournalEntry{
			ExecutionID: e.rec.ParentID, Position: e.rec.ParentPos, Kind: persistence.EntryCall,
			Name: fname, ChildID: e.id, Done: true, Output: outcome.Output, Error: outcome.Error,
		}
	}
	e.mu.Lock()
	virtual := e.virtual
	e.mu.Unlock()
	if virtual != nil && outcome != nil {
		// A child that made no durable write: its row and its outcome in
		// the parent's journal, in one write fenced by the parent's epoch.
		c = virtualOutcome(e.rec, virtual, c, attempt)
	} else if virtual != nil {
		if err := e.retrying(func() error { return e.materialize(e.rt.baseCtx) }); err != nil {
			return
		}
	}
	if info == nil {
		// Before the outcome, which a caller may see at once (a database
		// notification), and call again expecting the cached result.
		e.cacheResult(r.out)
	}
	if err := e.retrying(func() error { return e.apply(e.rt.baseCtx, c) }); err != nil {
		if errors.Is(err, errLeaseLost) {
			// Another node took the execution over while this attempt
			// ran: its outcome is refused, and the other node's counts.
			rt.log.Info("activation lost its lease", slog.String("execution_id", e.id))
			if virtual != nil {
				e.abandonParent(virtual) // fenced by the parent's epoch
			}
		}
		return
	}
	if virtual != nil {
		e.mu.Lock()
		e.virtual = nil
		e.mu.Unlock()
	}
	e.close(errPassivated)
	e.mu.Lock()
	started := e.attemptStart
	e.mu.Unlock()
	e.logOutcome(outcome, info, attempt, retryIn, started)
	if outcome == nil {
		rt.kickAt(retryIn)
		return
	}
	if e.rec.ParentID != "" {
		// The outcome is in the parent's journal already; tell the parent's
		// activation on this node, if any. In-process the hand-over goes
		// straight to its in-memory journal (a mailbox hop would add a
		// goroutine switch to every step); ChildOutcome is the same hand-over
		// as a message, for the actor's mailbox.
		m := &messages.ChildOutcome{
			ParentId: e.rec.ParentID, Position: int32(e.rec.ParentPos), ChildId: e.id, Function: fname,
			Output: outcome.Output, Error: infoToProto(outcome.Error),
		}
		if p := rt.lookupActive(e.rec.ParentID); p != nil {
			p.deliver(m)
		} else {
			rt.tellParent(e.rec.ParentID, m) // on another member
		}
	}
	rt.finished(e.id, outcome)
	if e.rec.ParentID == "" {
		rt.publish(persistence.TopicDone, e.id) // for waiters in other processes
		rt.broadcastFinished(e.id)
	}
}

// retrying runs a write of an outcome, retrying a failing database with
// backoff until it succeeds, the lease is lost, or the node stops.
func (e *execution) retrying(write func() error) error {
	backoff := 50 * time.Millisecond
	for {
		err := write()
		if err == nil || errors.Is(err, errLeaseLost) {
			return err
		}
		if e.rt.baseCtx.Err() != nil {
			return err
		}
		e.rt.log.Error("recording an outcome", slog.String("execution_id", e.id), slog.Any("error", err))
		select {
		case <-e.rt.baseCtx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// virtualOutcome turns the final commit c of a child that has no row yet
// into one commit on behalf of its parent, fenced by the parent's epoch. A
// step that completed at its first attempt is recorded as its outcome in
// the parent's journal only (c.Deliver, which names it and holds its
// output), as a step is in DBOS or an activity in Temporal: one small write
// per step. Any other ending also writes the child's row as it ended, so
// that failures, dead letters and retries have a row to point at.
func virtualOutcome(rec *persistence.Execution, v *virtualChild, c *persistence.Commit, attempt int) *persistence.Commit {
	u := c.Update
	if u.Status == persistence.StatusCompleted && attempt == 1 {
		return &persistence.Commit{ExecutionID: rec.ParentID, Epoch: v.parentEpoch, Journal: []*persistence.JournalEntry{c.Deliver}}
	}
	row := *rec
	row.Status, row.Output, row.Error, row.Attempts = u.Status, u.Output, u.Error, attempt
	row.Owner, row.LeaseExpiresAt = "", time.Time{}
	row.UpdatedAt = time.Now().UTC()
	return &persistence.Commit{
		ExecutionID: rec.ParentID, Epoch: v.parentEpoch,
		Create:     []*persistence.Execution{&row},
		Journal:    []*persistence.JournalEntry{c.Deliver},
		DeadLetter: c.DeadLetter,
	}
}

func (e *execution) currentEpoch() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epoch
}

// apply writes one commit of this execution, fenced by its epoch.
func (e *execution) apply(ctx context.Context, c *persistence.Commit) error {
	start := time.Now()
	errs, err := e.rt.backend.Apply(ctx, []*persistence.Commit{c})
	if err == nil && len(errs) == 1 {
		err = errs[0]
	}
	if errors.Is(err, persistence.ErrStaleEpoch) {
		e.close(errLeaseLost)
		return fmt.Errorf("writing %s: %w", e.id, errLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", e.id, err)
	}
	if c.ExecutionID == e.id {
		e.confirm(start)
	}
	return nil
}

// deliver records a child's outcome that arrived as a message.
func (e *execution) deliver(m *messages.ChildOutcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	pos := int(m.Position)
	cur := e.entries[pos]
	if pos < 0 || cur != nil && (cur.Done || cur.Kind != persistence.EntryCall) {
		return // done already, or not a call: a stray or malformed message
	}
	ent := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntryCall, Name: m.Function,
		ChildID: m.ChildId, Done: true, Output: m.Output, Error: infoFromProto(m.Error)}
	if cur != nil && cur.ChildID != "" && cur.ChildID != m.ChildId {
		return // an outcome of a child from an earlier attempt
	}
	e.entries[pos] = ent
	if w, ok := e.waiters[pos]; ok {
		close(w)
		delete(e.waiters, pos)
	}
}

// wake interrupts a sleep in progress (its timer fired elsewhere).
func (e *execution) wake() {
	select {
	case e.wakeC <- struct{}{}:
	default:
	}
}

// signalled tells a signal wait in memory to look for its signal again.
func (e *execution) signalled() {
	select {
	case e.signalC <- struct{}{}:
	default:
	}
}

// abandonParent stops the parent's activation on this node when a write of
// this in-memory child was refused by the parent's epoch: that activation
// has lost its lease too, and would otherwise wait for an outcome that will
// never come.
func (e *execution) abandonParent(v *virtualChild) {
	if p := e.rt.lookupActive(e.rec.ParentID); p != nil && p.currentEpoch() == v.parentEpoch {
		p.abandon()
	}
}

// abandon stops an activation whose lease has been taken over: its durable
// operations fail, its waits end, and it records nothing more.
func (e *execution) abandon() {
	e.close(errLeaseLost)
	e.mu.Lock()
	cb := e.cancelBody
	e.mu.Unlock()
	if cb != nil {
		cb(errLeaseLost)
	}
	// Its children in memory are fenced by its epoch: their outcomes would
	// be refused, so they stop too (children with rows of their own hold
	// leases of their own).
	for _, c := range e.rt.localChildren(e.id) {
		if c.isVirtual() {
			c.abandon()
		}
	}
}

// isCanceled reports whether a cancel has reached this activation.
func (e *execution) isCanceled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.canceled
}

// cancel cancels this activation: its body's context ends with ErrCanceled,
// its durable operations return ErrCanceled, and so does every child it
// runs in memory on this node.
func (e *execution) cancel() {
	e.mu.Lock()
	e.canceled = true
	cb := e.cancelBody
	e.mu.Unlock()
	if cb != nil {
		cb(ErrCanceled)
	}
	for _, c := range e.rt.localChildren(e.id) {
		c.cancel()
	}
}

// isVirtual reports whether this activation is a child whose row is not
// written yet.
func (e *execution) isVirtual() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.virtual != nil
}
