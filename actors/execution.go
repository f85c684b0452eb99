package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// execution is the actor of one activation of an execution on this node.
// It is the only owner of the activation: every field below is read and
// written in Receive (and the methods it calls), one message at a time. The
// body runs on a goroutine of its own and reaches this state only by
// asking (see handle); database reads and writes run off the mailbox and
// come back as messages (prepared, applied, leaseChecked).
type execution struct {
	rt  *Runtime
	act *activation
	id  string
	// rec is the execution's row as the activation found it (or, for a
	// fresh start, made it). It is replaced once, by prepared, before the
	// attempt starts; after that the body's handle shares it read-only.
	rec   *persistence.Execution
	fresh bool
	fn    *Function
	self  *actor.PID
	h     *handle // the running attempt's, or nil

	epoch   int64
	entries map[int]*persistence.JournalEntry
	// awaits are the body's requests for the outcome at a position.
	awaits map[int][]*opAwait
	next   int
	// snapAt is the last position covered by the stored snapshot;
	// sinceSnap counts journal writes since.
	snapAt, sinceSnap int
	// closed is set once the activation has passivated, finished, lost its
	// lease or stopped: durable operations then fail instead of writing.
	closed     error
	passivated bool
	nondet     *persistence.ErrorInfo
	canceled   bool
	cancelBody context.CancelCauseFunc
	// unwritten is set while the execution is a child that exists only in
	// memory: its parent writes its row, with its outcome or before its
	// first own write (materialize).
	unwritten *unwritten
	// confirmed is when this activation last knew it held its lease
	// (monotonic, from confirmBase): its start, and the start of each write
	// or renewal that succeeded. After a long gap a step checks first.
	confirmed time.Duration
	checking  []func(error) // what waits for the lease check in flight
	// writes are the continuations of this actor's writes in flight.
	writes  map[uint64]func(actor.Context, error)
	writeNo uint64
	// materializing holds the writes a body asked for while its row is
	// being written by the parent.
	materializing []func(actor.Context, error)
	// onRecordedThen finishes an in-memory child once its parent has
	// written its outcome (recorded).
	onRecordedThen func(actor.Context)
	attempt        int
	attemptStart   time.Time
	permit         *heldPermit
	cachedFrom     string
	// settled is set once the attempt's outcome is decided; finishing once
	// it is recorded (or the activation passivated), while the actor waits
	// for its children to stop.
	settled, finishing bool
	// span is the attempt's span (trace.go) until it ends.
	span trace.Span
	// inc tells this incarnation of the actor from the others registered
	// under the same name: the next activation of the execution on this
	// node, or this one restarted by its supervisor (see incMsg).
	inc uint64
}

// unwritten is what a child in memory needs for its parent to write its
// row: the parent's journal entry for it, and the parent actor.
type unwritten struct {
	intent *persistence.JournalEntry
	parent *actor.PID
	// parentInc is the incarnation of the parent's actor that started it.
	parentInc uint64
	// parentBox dispatches the parent's mailbox.
	parentBox *mailbox
}

// heldPermit is the concurrency permit an attempt holds. The actor and the
// goroutine that runs the body each hold a reference, and the permit goes
// back with the last of them: never before the body has returned, even
// when the actor stops first (its lease lost, a restart) while the body,
// its context canceled, still runs. Until then the node renews it, and a
// newer activation of the execution on this node, which would take the
// same permit row, waits for it to be released before asking for one.
type heldPermit struct {
	key, queue string
	holder     string
	act        *activation
	refs       atomic.Int32
	released   chan struct{}
}

// newHeldPermit returns a permit of key that activation act of execution
// holder holds, referenced by its actor and its body's goroutine.
func newHeldPermit(rt *Runtime, holder string, act *activation, key, queue string) *heldPermit {
	p := &heldPermit{key: key, queue: queue, holder: holder, act: act, released: make(chan struct{})}
	p.refs.Store(2)
	rt.mu.Lock()
	if rt.permitsInUse == nil {
		rt.permitsInUse = make(map[string]*heldPermit)
	}
	rt.permitsInUse[holder] = p
	rt.mu.Unlock()
	return p
}

// drop lets go of one reference to p, and gives p back with the last.
func (p *heldPermit) drop(rt *Runtime) {
	if p.refs.Add(-1) != 0 {
		return
	}
	rt.mu.Lock()
	if rt.permitsInUse[p.holder] == p {
		delete(rt.permitsInUse, p.holder)
	}
	rt.mu.Unlock()
	rt.releasePermit(p.holder, p.act, p.key, p.queue)
	close(p.released)
}

// confirmBase is the origin of confirmed times; time.Since of it reads the
// monotonic clock, which a stopped process's wall-clock jump cannot fool.
var confirmBase = time.Now()

func sinceBase(t time.Time) time.Duration { return t.Sub(confirmBase) }

// confirm records that the lease was held at t.
func (e *execution) confirm(t time.Time) {
	if v := sinceBase(t); v > e.confirmed {
		e.confirmed = v
	}
}

// leaseFresh reports whether the lease was confirmed within half a lease.
func (e *execution) leaseFresh() bool {
	return time.Since(confirmBase)-e.confirmed < e.rt.cfg.LeaseTTL/2
}

func newExecution(rt *Runtime, act *activation, restarted bool) *execution {
	a := act.spawn
	e := &execution{
		rt:        rt,
		act:       act,
		id:        a.rec.ID,
		rec:       a.rec,
		fresh:     a.fresh,
		epoch:     a.rec.Epoch,
		entries:   make(map[int]*persistence.JournalEntry),
		awaits:    make(map[int][]*opAwait),
		snapAt:    -1,
		writes:    make(map[uint64]func(actor.Context, error)),
		canceled:  a.canceled,
		unwritten: a.unwritten,
		inc:       rt.incarnations.Add(1),
	}
	leasedAt := a.leasedAt
	if leasedAt.IsZero() {
		leasedAt = time.Now()
	}
	if restarted {
		// A restart after a panic: the lease is still this node's (under
		// the epoch the activation took), the journal is read again.
		rt.mu.Lock()
		e.epoch = act.epoch
		e.unwritten = act.unwritten
		rt.mu.Unlock()
		rec := *a.rec
		rec.Epoch = e.epoch
		e.rec = &rec
		if e.unwritten == nil {
			e.fresh = false
		}
		leasedAt = time.Now()
	}
	e.confirm(leasedAt)
	return e
}

// Receive handles the activation's messages, one at a time.
func (e *execution) Receive(ctx actor.Context) {
	msg := ctx.Message()
	if w, ok := msg.(*incMsg); ok {
		if w.inc != e.inc {
			e.refuseStale(ctx, w.msg)
			return
		}
		msg = w.msg
	}
	if h := testHookReceive.Load(); h != nil {
		(*h)(e.id, msg)
	}
	switch m := msg.(type) {
	case *actor.Started:
		e.self = ctx.Self()
		e.start(ctx)
	case *prepared:
		e.onPrepared(ctx, m)
	case *opBegin:
		e.onBegin(ctx, m)
	case *opWrite:
		e.onWrite(ctx, m)
	case *opSpawn:
		e.onSpawn(ctx, m)
	case *opAwait:
		e.onAwait(ctx, m)
	case *opRemember:
		for _, ent := range m.entries {
			e.deliverEntry(ctx, ent)
		}
	case *opCheckLease:
		e.onCheckLease(ctx, m)
	case *opPermitHeld:
		if e.closed != nil {
			m.reply <- opReply{err: e.closed} // the attempt gives it back
			break
		}
		e.permit = m.permit
		e.rt.metrics.permitHeld(m.permit.key, m.permit.queue, 1)
		m.reply <- opReply{}
	case *leaseChecked:
		e.onLeaseChecked(ctx, m)
	case *applied:
		if c := m.confirmed; c != nil && c.epoch == e.epoch {
			e.confirm(c.at)
		}
		if then, ok := e.writes[m.no]; ok {
			delete(e.writes, m.no)
			then(ctx, m.err)
		}
	case *bodyDone:
		if e.h != nil && m.h == e.h {
			e.settle(ctx, m.r, m.kind)
		}
	case *childSettled:
		e.onChildSettled(ctx, m)
	case *recorded:
		e.onRecorded(ctx, m)
	case *materializeChild:
		e.onMaterializeChild(ctx, m)
	case *materialized:
		e.onMaterialized(ctx, m)
	case *messages.ChildOutcome, *messages.Wake, *messages.CancelExecution:
		if e.passivated {
			// Passivated, stopping once its children have: as for a
			// message to no actor (watchDeadLetters), the node looks for
			// due work, and the next activation reads what the message
			// was about from the database.
			e.rt.Kick()
			break
		}
		switch m := m.(type) {
		case *messages.ChildOutcome:
			e.deliver(ctx, m)
		case *messages.Wake:
			e.poke()
		case *messages.CancelExecution:
			e.cancel(ctx)
		}
	case *cancelExecution:
		e.cancel(ctx)
		if ctx.Sender() != nil {
			ctx.Respond(&cancelExecution{})
		}
	case *leaseLost:
		if m.epoch == 0 || m.epoch == e.epoch {
			e.loseLease(ctx)
		}
	case *adoptLease:
		e.onAdoptLease(ctx, m)
	case *leaseConfirmed:
		if m.epoch == e.epoch {
			e.confirm(m.at)
		}
	case *opWatch:
		for _, pid := range m.pids {
			ctx.Watch(pid)
		}
	case *actor.Terminated:
		if e.watching(ctx, m.Who) {
			// A child on another member is gone: look at its row now.
			if e.h != nil && e.h.pollC != nil {
				select {
				case e.h.pollC <- struct{}{}:
				default:
				}
			}
			break
		}
		if e.finishing && len(ctx.Children()) == 0 {
			ctx.Stop(ctx.Self())
		}
	case *actor.Restarting:
		e.shut(errRestarted)
		e.releasePermit()
		e.endAttemptSpanStopped()
	case *actor.Stopping:
		e.shut(errStopped)
	case *actor.Stopped:
		e.stopped()
	}
}

// stopAfterChildren stops the actor now, or once its last child actor has
// stopped (Terminated). A child in memory whose outcome this actor wrote
// may still have the answer (recorded) in its mailbox; stopping it first
// would end it as stopped, without its finish: its log line, metrics and
// attempt span would say it never completed.
func (e *execution) stopAfterChildren(ctx actor.Context) {
	if len(ctx.Children()) == 0 {
		ctx.Stop(ctx.Self())
		return
	}
	e.finishing = true
}

// watching reports whether pid is a remote child this actor watches
// (rather than one of its child actors).
func (e *execution) watching(ctx actor.Context, pid *actor.PID) bool {
	return pid.Address != ctx.Self().Address
}

// testHookReceive, when set by a test, sees every message before Receive
// handles it (a panic there exercises supervision).
var testHookReceive atomic.Pointer[func(id string, msg any)]

// start begins the activation: at once for a fresh start that holds its
// lease, else after reading the row and journal off the mailbox.
func (e *execution) start(ctx actor.Context) {
	fn, ok := e.rt.cfg.Lookup(e.rec.Function)
	if e.epoch == 0 || !e.fresh || !ok || e.unwritten == nil && !e.rt.Covers(fn.Tags) {
		go e.prepare(ctx.ActorSystem(), ctx.Self(), e.rec, e.fresh)
		return
	}
	e.onPrepared(ctx, &prepared{rec: e.rec})
}

// prepared is the activation's row and journal, read by prepare.
type prepared struct {
	rec     *persistence.Execution
	entries []*persistence.JournalEntry
	snapAt  int
	loadErr error
	// skip ends the activation without running anything.
	skip bool
}

// prepare takes the lease if the activation has none, and reads the
// journal. It runs on its own goroutine and sends prepared.
func (e *execution) prepare(system *actor.ActorSystem, self *actor.PID, rec *persistence.Execution, fresh bool) {
	rt := e.rt
	ctx := rt.baseCtx
	out := &prepared{rec: rec, snapAt: -1}
	defer func() {
		if r := recover(); r != nil {
			rt.log.Error("preparing an activation panicked", slog.String("execution_id", rec.ID), slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())))
			out = &prepared{skip: true}
		}
		system.Root.Send(self, to(e.inc, out))
	}()
	if rec.Epoch == 0 {
		if !rt.coversStored(ctx, rec.ID) {
			out.skip = true // it needs tags this node lacks: a node that has them claims it
			return
		}
		got, err := rt.backend.AcquireLease(ctx, rec.ID, rt.cfg.NodeID, rt.cfg.LeaseTTL)
		if err != nil {
			if !errors.Is(err, persistence.ErrLeaseHeld) && !errors.Is(err, persistence.ErrNotFound) && ctx.Err() == nil {
				rt.log.Error("acquiring a lease", slog.String("execution_id", rec.ID), slog.Any("error", err))
			}
			out.skip = true
			return
		}
		rec, out.rec = got, got
		fresh = false
	}
	if rec.Status.Terminal() {
		out.skip = true
		return
	}
	fn, ok := rt.cfg.Lookup(rec.Function)
	if !ok {
		// Placed here, or asked for by name, without the function: give
		// the execution back for a node that has it.
		rt.leaveForAnotherNode(ctx, rec, rec.Epoch)
		out.skip = true
		return
	}
	if rt.refuseUncovered(ctx, rec, fn) {
		out.skip = true
		return
	}
	if fresh {
		return
	}
	snap, tail, err := rt.backend.LoadJournal(ctx, rec.ID)
	if err != nil {
		out.loadErr = fmt.Errorf("loading journal of %s: %w", rec.ID, err)
		return
	}
	var prefix []*persistence.JournalEntry
	if snap != nil {
		if prefix, err = decodeSnapshot(rec.ID, snap); err != nil {
			out.loadErr = err
			return
		}
		out.snapAt = snap.Position
	}
	out.entries = append(prefix, tail...)
}

// onPrepared installs the row and journal and starts the attempt, or ends
// the activation early.
func (e *execution) onPrepared(ctx actor.Context, m *prepared) {
	if m.skip || e.closed != nil {
		ctx.Stop(ctx.Self())
		return
	}
	rt := e.rt
	e.rec = m.rec
	if e.epoch == 0 {
		e.epoch = m.rec.Epoch
		rt.setEpoch(e.act, e.epoch)
	}
	fn, ok := rt.cfg.Lookup(e.rec.Function)
	if !ok {
		// A fresh start of a function this node lacks (StartLocal checks
		// first, so only a race with a re-registration gets here).
		go rt.leaveForAnotherNode(rt.baseCtx, e.rec, e.epoch)
		ctx.Stop(ctx.Self())
		return
	}
	e.fn = fn
	for _, ent := range m.entries {
		// A child's outcome delivered while the journal was read wins over
		// the intent read.
		if cur, ok := e.entries[ent.Position]; ok && cur.Done {
			continue
		}
		e.entries[ent.Position] = ent
	}
	if m.snapAt > e.snapAt {
		e.snapAt = m.snapAt
	}
	e.attempt = e.rec.Attempts + 1
	e.startAttemptSpan()
	if m.loadErr != nil {
		// A journal that does not decode: quarantine the execution with
		// the reason, never run it on a guess.
		if rt.baseCtx.Err() != nil {
			ctx.Stop(ctx.Self())
			return
		}
		rt.log.Error("loading a journal", slog.String("execution_id", e.id), slog.Any("error", m.loadErr))
		e.settleEarly(ctx, bodyResult{err: NonRetryable(m.loadErr)}, persistence.ErrorKindError)
		return
	}
	rec := e.rec
	switch {
	case !rec.Deadline.IsZero() && !rt.Now().Before(rec.Deadline):
		e.settleEarly(ctx, bodyResult{err: NonRetryable(fmt.Errorf("execution %s passed its deadline: %w", e.id, ErrTimeout))}, persistence.ErrorKindTimeout)
		return
	case rec.CancelRequested || e.canceled:
		// Canceled before the body started (a child spawned while its
		// parent was being canceled): it never runs.
		e.canceled = true
		e.settleEarly(ctx, bodyResult{err: fmt.Errorf("execution %s: %w", e.id, ErrCanceled)}, persistence.ErrorKindCanceled)
		return
	}
	bctx, cancel := context.WithCancelCause(e.traceBody(rt.baseCtx))
	e.cancelBody = cancel
	e.h = &handle{rt: rt, act: e.act, id: e.id, rec: rec, fn: fn, pid: e.self, inc: e.inc, attempt: e.attempt, system: ctx.ActorSystem(),
		fresh: e.fresh, unwritten: e.unwritten != nil, gone: make(chan struct{}), signalC: make(chan struct{}, 1),
		pollC: make(chan struct{}, 1)}
	e.attemptStart = time.Now()
	e.logStarted(e.attempt)
	rt.metrics.attemptStarted(e)
	rt.runners.Add(1)
	h, cacheCheck := e.h, fn.CacheTTL > 0 && len(e.entries) == 0
	rt.workers.Go(func() { h.run(bctx, cacheCheck) })
}

// settleEarly settles an attempt that never ran its body.
func (e *execution) settleEarly(ctx actor.Context, r bodyResult, kind persistence.ErrorKind) {
	e.h = &handle{rt: e.rt, id: e.id, rec: e.rec, pid: e.self, inc: e.inc, gone: make(chan struct{})}
	e.settle(ctx, r, kind)
}

// shut ends the activation's right to write: pending requests fail with
// the reason, the body's context ends, and the body's handle says so.
func (e *execution) shut(reason error) {
	if e.closed == nil {
		e.closed = reason
	}
	if e.cancelBody != nil {
		e.cancelBody(e.closed)
	}
	for p, ws := range e.awaits {
		for _, w := range ws {
			w.reply <- opReply{err: e.closed}
		}
		delete(e.awaits, p)
	}
	checks := e.checking
	e.checking = nil
	for _, then := range checks {
		then(e.closed)
	}
	if e.h != nil && !e.h.isGone() {
		e.h.goneErr = e.closed
		close(e.h.gone)
	}
}

// stopped unregisters the actor once it has stopped.
func (e *execution) stopped() {
	rt := e.rt
	e.releasePermit()
	e.endAttemptSpanStopped()
	rt.mu.Lock()
	failed := e.act.failed
	rt.mu.Unlock()
	if e.unwritten == nil && !e.finishing && !e.passivated && e.epoch > 0 && e.closed != errLeaseLost && !rt.isStopping() && !e.settled && !failed {
		// Stopped with its parent, holding a lease of its own: give it
		// back so that a claim runs it again at once, not after the lease
		// runs out. Fenced by the epoch: refused if it was taken over.
		rec, epoch := e.rec, e.epoch
		go rt.releaseLease(rec, epoch)
	}
	rt.deactivate(e.act)
}

// releasePermit lets go of the permit the attempt holds, if any: it goes
// back now, or once the body returns if it still runs.
func (e *execution) releasePermit() {
	if p := e.permit; p != nil {
		e.permit = nil
		e.rt.metrics.permitHeld(p.key, p.queue, -1)
		p.drop(e.rt)
	}
}

// loseLease stops this activation, whose lease another node took (or that
// was released for a takeover), and says so in the log (stent chaos reads
// this line). Its children stop with it.
func (e *execution) loseLease(ctx actor.Context) {
	if e.closed == errLeaseLost {
		return
	}
	e.rt.log.Warn("lease lost to another node; stopping the activation",
		slog.String("execution_id", e.id), slog.Int64("epoch", e.epoch))
	e.rt.metrics.leaseLost()
	e.shut(errLeaseLost)
	e.closed = errLeaseLost
	ctx.Stop(ctx.Self())
}

// cancel cancels this activation: its body's context ends with
// ErrCanceled, its durable operations return ErrCanceled, and so does
// every child actor below it.
func (e *execution) cancel(ctx actor.Context) {
	e.canceled = true
	if e.cancelBody != nil {
		e.cancelBody(ErrCanceled)
	}
	for _, c := range ctx.Children() {
		ctx.Send(c, &cancelExecution{})
	}
}

// poke tells a signal wait in memory to look for its signal again.
func (e *execution) poke() {
	if e.h == nil || e.h.signalC == nil {
		return
	}
	select {
	case e.h.signalC <- struct{}{}:
	default:
	}
}

// bodyResult is how an attempt's body ended.
type bodyResult struct {
	out    []byte
	err    error
	panic  any
	stack  []byte
	exited bool
	// cachedFrom names the execution whose cached result this is.
	cachedFrom string
	// own is set when out is this execution's own result, cached just
	// before a crash kept its outcome from being written.
	own bool
}

// bodyDone is the end of an attempt, from its goroutine.
type bodyDone struct {
	h    *handle
	r    bodyResult
	kind persistence.ErrorKind
}

// settle records the outcome of the attempt.
func (e *execution) settle(ctx actor.Context, r bodyResult, kind persistence.ErrorKind) {
	rt := e.rt
	if e.settled {
		return
	}
	e.settled = true
	if e.passivated {
		return
	}
	if e.closed == errLeaseLost {
		ctx.Stop(ctx.Self())
		return
	}
	if rt.isStopping() || e.closed == errStopped || e.closed == errRestarted {
		// Shutting down: leave the attempt unrecorded; the lease is
		// released and the execution replays elsewhere or at the next start.
		ctx.Stop(ctx.Self())
		return
	}
	if r.cachedFrom != "" {
		e.cachedFrom = r.cachedFrom
	}
	attempt := e.attempt
	var info *persistence.ErrorInfo
	switch {
	case e.canceled && (r.err != nil || r.panic != nil || r.exited):
		info = &persistence.ErrorInfo{Message: fmt.Sprintf("execution %s: %s", e.id, ErrCanceled), Kind: persistence.ErrorKindCanceled, NonRetryable: true}
	case e.nondet != nil:
		info = e.nondet
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
		if err := rt.CheckPayload(fname, "output", len(r.out)); err != nil {
			// The same output every attempt: failing at once, not stored.
			info = &persistence.ErrorInfo{Message: err.Error(), Kind: persistence.ErrorKindError, NonRetryable: true}
		}
	}
	c := &persistence.Commit{ExecutionID: e.id, Epoch: e.epoch, Update: &persistence.Update{Attempts: attempt}}
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
			c.DeleteJournal = failedPositions(e.entries)
		} else {
			status := persistence.StatusFailed
			switch info.Kind {
			case persistence.ErrorKindCanceled:
				status = persistence.StatusCanceled
			case persistence.ErrorKindTimeout:
				if !e.rec.Deadline.IsZero() && !e.rt.Now().Before(e.rec.Deadline) {
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
		// The call's record in the parent's journal: for a step that gets
		// no row of its own, the only one (its input, start and attempts).
		c.Deliver = &persistence.JournalEntry{
			ExecutionID: e.rec.ParentID, Position: e.rec.ParentPos, Kind: persistence.EntryCall,
			Name: fname, ChildID: e.id, Done: true, Output: outcome.Output, Error: outcome.Error,
			StartedAt: e.rec.CreatedAt, Attempts: attempt,
		}
		if e.unwritten != nil {
			c.Deliver.Input = e.rec.Input // no row holds it
		}
	}
	var before func()
	if info == nil && e.fn != nil && e.fn.CacheTTL > 0 && e.cachedFrom == "" && !r.own {
		// Before the outcome, which a caller may see at once (a database
		// notification), and call again expecting the cached result.
		entry := &persistence.CacheEntry{Key: e.fn.CacheKey(e.rec.Input), Function: e.fn.Name, ExecutionID: e.id, Output: r.out}
		ttl := e.fn.CacheTTL
		before = func() {
			if err := rt.backend.CachePut(rt.baseCtx, entry, ttl); err != nil {
				rt.log.Warn("storing a result in the cache", slog.String("execution_id", entry.ExecutionID),
					slog.String("function", entry.Function), slog.Any("error", err))
			}
		}
	}
	done := func(ctx actor.Context) { e.finish(ctx, outcome, info, attempt, retryIn) }
	if e.unwritten != nil && outcome != nil {
		// A child that made no durable write: its outcome in the parent's
		// journal, written by the parent in one commit fenced by its epoch.
		e.onRecordedThen = done
		// The last thing this handler does: the parent may run here.
		e.unwritten.parentBox.sendHere(ctx.ActorSystem(), e.unwritten.parent, to(e.unwritten.parentInc,
			&childSettled{commit: unwrittenOutcome(e.rec, c, attempt), entry: c.Deliver, from: ctx.Self(), fromInc: e.inc, before: before}))
		return
	}
	write := func(ctx actor.Context) {
		e.apply(ctx, c, true, before, func(ctx actor.Context, err error) {
			if err != nil {
				// Refused (another node took the execution over while
				// this attempt ran: the other's outcome counts), or the
				// node stops.
				ctx.Stop(ctx.Self())
				return
			}
			done(ctx)
		})
	}
	if e.unwritten != nil {
		e.materialize(ctx, func(ctx actor.Context, err error) { // a retry: its row first
			if err != nil {
				ctx.Stop(ctx.Self())
				return
			}
			write(ctx)
		})
		return
	}
	write(ctx)
}

// finish ends the activation once its attempt's outcome is recorded.
func (e *execution) finish(ctx actor.Context, outcome *Outcome, info *persistence.ErrorInfo, attempt int, retryIn time.Duration) {
	rt := e.rt
	if e.closed == nil {
		e.closed = errPassivated
	}
	e.logOutcome(outcome, info, attempt, retryIn, e.attemptStart)
	rt.metrics.outcome(e, outcome)
	e.endAttemptSpanRecorded(outcome, info)
	e.finishing = true
	defer func() {
		e.releasePermit()
		// Children started and not awaited still run under this actor:
		// it stops when the last of them has.
		e.stopAfterChildren(ctx)
	}()
	if outcome == nil {
		rt.kickAt(retryIn)
		return
	}
	if pid := e.rec.ParentID; pid != "" && e.unwritten == nil {
		// The outcome is in the parent's journal already (Deliver); hand
		// it to the parent's activation, here or on another member.
		m := &messages.ChildOutcome{
			ParentId: pid, Position: int32(e.rec.ParentPos), ChildId: e.id, Function: outcome.Function,
			Output: outcome.Output, Error: infoToProto(outcome.Error),
		}
		if p := rt.pidOf(pid); p != nil {
			ctx.Send(p, m)
		} else {
			rt.tellParent(pid, m)
		}
	}
	rt.finished(e.id, outcome)
	if e.rec.ParentID == "" {
		rt.publish(persistence.TopicDone, e.id) // for waiters in other processes
		rt.broadcastFinished(e.id)
	}
}

// unwrittenOutcome turns the final commit c of a child that has no row yet
// into one commit of its parent's (the parent sets its epoch). A step that
// completed at its first attempt is recorded as its outcome in the
// parent's journal only (c.Deliver, which names it and holds its output),
// as a step is in DBOS or an activity in Temporal: one small write per
// step. Any other ending also writes the child's row as it ended, so that
// failures, dead letters and retries have a row to point at.
func unwrittenOutcome(rec *persistence.Execution, c *persistence.Commit, attempt int) *persistence.Commit {
	u := c.Update
	if u.Status == persistence.StatusCompleted && attempt == 1 {
		return &persistence.Commit{ExecutionID: rec.ParentID, Journal: []*persistence.JournalEntry{c.Deliver}}
	}
	row := *rec
	row.Status, row.Output, row.Error, row.Attempts = u.Status, u.Output, u.Error, attempt
	row.Owner, row.LeaseExpiresAt = "", time.Time{}
	row.UpdatedAt = time.Now().UTC()
	return &persistence.Commit{
		ExecutionID: rec.ParentID,
		Create:      []*persistence.Execution{&row},
		Journal:     []*persistence.JournalEntry{c.Deliver},
		DeadLetter:  c.DeadLetter,
	}
}

// apply writes commit c of this actor off the mailbox and calls then, on
// the mailbox, with the result. With retry, a failing database is retried
// with backoff until the write succeeds, is fenced, or the node stops.
// before, if set, runs on the writing goroutine first. A fenced write
// stops this activation (its lease is another's) before then runs.
func (e *execution) apply(ctx actor.Context, c *persistence.Commit, retry bool, before func(), then func(actor.Context, error)) {
	e.writeNo++
	no := e.writeNo
	own := c.ExecutionID == e.id
	e.writes[no] = func(ctx actor.Context, err error) {
		if errors.Is(err, errLeaseLost) {
			// A stale write refused (stent chaos counts these lines).
			e.rt.log.Info("activation lost its lease", slog.String("execution_id", e.id), slog.Int64("epoch", c.Epoch))
			e.loseLease(ctx)
		}
		then(ctx, err)
	}
	rt, system, self, id, inc, mb := e.rt, ctx.ActorSystem(), ctx.Self(), e.id, e.inc, e.act.mailbox
	rt.workers.Go(func() {
		if before != nil {
			before()
		}
		err := rt.write(c, retry)
		done := &applied{no: no, err: err}
		if err == nil && own {
			done.confirmed = &leaseConfirmed{epoch: c.Epoch, at: time.Now()}
		}
		if err != nil && !errors.Is(err, errLeaseLost) {
			done.err = fmt.Errorf("writing %s: %w", id, err)
		}
		mb.sendHere(system, self, to(inc, done)) // this goroutine ends next
	})
}

// write applies one commit, fenced by its epoch; errLeaseLost means the
// epoch is stale. With retry a failing database is retried with backoff.
func (rt *Runtime) write(c *persistence.Commit, retry bool) error {
	backoff := 50 * time.Millisecond
	for {
		errs, err := rt.backend.Apply(rt.baseCtx, []*persistence.Commit{c})
		if err == nil && len(errs) == 1 {
			err = errs[0]
		}
		if errors.Is(err, persistence.ErrStaleEpoch) {
			return errLeaseLost
		}
		if err == nil || !retry || rt.baseCtx.Err() != nil {
			return err
		}
		rt.log.Error("recording an outcome", slog.String("execution_id", c.ExecutionID), slog.Any("error", err))
		select {
		case <-rt.baseCtx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// onAdoptLease goes on under the lease this node claimed again (see
// adoptLease), or stops.
func (e *execution) onAdoptLease(ctx actor.Context, m *adoptLease) {
	if m.from != e.epoch {
		return // not this activation's lease: it stops on its own
	}
	if e.closed != nil || len(e.writes) > 0 || len(e.checking) > 0 || e.unwritten != nil || e.rt.isStopping() {
		e.loseLease(ctx)
		return
	}
	e.rt.log.Info("lease taken again with a newer epoch; the activation goes on under it",
		slog.String("execution_id", e.id), slog.Int64("epoch", m.from), slog.Int64("new_epoch", m.to))
	e.epoch = m.to
	e.rt.setEpoch(e.act, m.to)
	e.confirm(time.Now())
	ctx.Send(e.rt.sup, &leaseAdopted{id: e.id, epoch: m.to})
}

// incMsg is a message for one incarnation (inc) of an execution actor.
// A PID names an actor, and a message to an actor that has stopped goes
// to whichever actor holds the name when it arrives: the next activation
// of the same execution on this node, or the same actor restarted by its
// supervisor. What an attempt's goroutines, its writes, its lease checks
// and its children send is meant for the incarnation that started them;
// wrapped in incMsg, it reaches no other (refuseStale answers it).
type incMsg struct {
	inc uint64
	msg any
}

// to wraps msg for incarnation inc.
func to(inc uint64, msg any) *incMsg { return &incMsg{inc: inc, msg: msg} }

// refuseStale answers a message meant for an earlier incarnation of this
// actor as its own incarnation, stopped, would have: a request fails, a
// child's outcome or row is not written; anything else is dropped.
func (e *execution) refuseStale(ctx actor.Context, msg any) {
	err := errStopped
	switch m := msg.(type) {
	case *opBegin:
		m.reply <- opReply{err: err}
	case *opWrite:
		m.reply <- opReply{err: err}
	case *opAwait:
		m.reply <- opReply{err: err}
	case *opPermitHeld:
		m.reply <- opReply{err: err}
	case *opCheckLease:
		if m.reply != nil {
			m.reply <- opReply{err: err}
		}
		if m.notify != nil {
			ctx.Send(m.notify, to(m.notifyInc, &leaseChecked{err: err, at: time.Now()}))
		}
	case *childSettled:
		ctx.Send(m.from, to(m.fromInc, &recorded{err: err}))
	case *materializeChild:
		ctx.Send(m.from, to(m.fromInc, &materialized{err: err}))
	}
}

// applied is the result of a write, back on the mailbox.
type applied struct {
	no  uint64
	err error
	// confirmed is set when the write was this execution's own: it held
	// its lease then.
	confirmed *leaseConfirmed
}

// leaseConfirmed says that the lease of epoch was held at at.
type leaseConfirmed struct {
	epoch int64
	at    time.Time
}

// leaseLost tells an activation that its lease (of epoch, or any if 0) is
// another node's.
type leaseLost struct{ epoch int64 }

// cancelExecution is a cancel handed down the actor tree, or from this
// node's Cancel.
type cancelExecution struct{}

// childSettled is an in-memory child's outcome, for its parent to write:
// commit (without epoch) and the journal entry it holds.
type childSettled struct {
	commit  *persistence.Commit
	entry   *persistence.JournalEntry
	from    *actor.PID
	fromInc uint64
	// before runs on the writing goroutine first (caching the result).
	before func()
}

// recorded answers childSettled: the outcome is written (err nil) or not.
type recorded struct{ err error }

// materializeChild asks the parent to write the row of an in-memory child
// with its journal entry, before the child's first own write.
type materializeChild struct {
	row     *persistence.Execution
	intent  *persistence.JournalEntry
	from    *actor.PID
	fromInc uint64
}

// materialized answers materializeChild.
type materialized struct{ err error }

// onChildSettled writes an in-memory child's outcome in this execution's
// journal, and tells the child.
func (e *execution) onChildSettled(ctx actor.Context, m *childSettled) {
	e.writeForChild(ctx, m.commit, true, m.before, func(ctx actor.Context) { e.deliverEntry(ctx, m.entry) },
		func(ctx actor.Context, err error) { ctx.Send(m.from, to(m.fromInc, &recorded{err: err})) })
}

// writeForChild writes c, made by a child in memory, fenced by this
// execution's epoch (after this execution's own row, if it is in memory
// too), runs written once it is, and answers the child with reply.
func (e *execution) writeForChild(ctx actor.Context, c *persistence.Commit, retry bool, before func(),
	written func(actor.Context), reply func(actor.Context, error)) {
	if e.closed == errLeaseLost || e.closed == errStopped || e.closed == errRestarted {
		reply(ctx, e.closed)
		return
	}
	e.materialize(ctx, func(ctx actor.Context, err error) {
		if err != nil {
			reply(ctx, err)
			return
		}
		c.Epoch = e.epoch
		e.apply(ctx, c, retry, before, func(ctx actor.Context, err error) {
			// The child first: the goroutine woken last runs next here
			// (the scheduler's runnext), and that should be the body
			// that written answers, not the child's ending.
			reply(ctx, err)
			if err == nil {
				written(ctx)
			}
		})
	})
}

// onRecorded finishes an in-memory child once its parent wrote its outcome.
func (e *execution) onRecorded(ctx actor.Context, m *recorded) {
	then := e.onRecordedThen
	e.onRecordedThen = nil
	if then == nil {
		return
	}
	if m.err != nil {
		// Fenced by the parent's epoch (the parent lost its lease and
		// stops, and this child with it), or the node stops.
		ctx.Stop(ctx.Self())
		return
	}
	then(ctx)
}

// materialize has the parent write this in-memory child's row, then runs
// then. Writes asked for meanwhile wait their turn.
func (e *execution) materialize(ctx actor.Context, then func(actor.Context, error)) {
	if e.unwritten == nil {
		then(ctx, nil)
		return
	}
	e.materializing = append(e.materializing, then)
	if len(e.materializing) > 1 {
		return // asked already
	}
	row := *e.rec
	row.LeaseExpiresAt, row.LeaseTTL = time.Time{}, e.rt.cfg.LeaseTTL
	ctx.Send(e.unwritten.parent, to(e.unwritten.parentInc, &materializeChild{row: &row, intent: e.unwritten.intent,
		from: ctx.Self(), fromInc: e.inc}))
}

// onMaterializeChild writes the row of an in-memory child, with its intent
// in this journal, and tells the child.
func (e *execution) onMaterializeChild(ctx actor.Context, m *materializeChild) {
	c := &persistence.Commit{ExecutionID: e.id, Create: []*persistence.Execution{m.row}, Journal: []*persistence.JournalEntry{m.intent}}
	e.writeForChild(ctx, c, false, nil, func(actor.Context) { e.rememberEntry(m.intent) },
		func(ctx actor.Context, err error) { ctx.Send(m.from, to(m.fromInc, &materialized{err: err})) })
}

func (e *execution) onMaterialized(ctx actor.Context, m *materialized) {
	waiting := e.materializing
	e.materializing = nil
	if m.err != nil {
		if errors.Is(m.err, errLeaseLost) {
			m.err = fmt.Errorf("writing the row of %s: %w", e.id, errLeaseLost)
		}
		for _, w := range waiting {
			w(ctx, m.err)
		}
		return
	}
	e.unwritten = nil
	e.rt.setLeased(e.act)
	e.confirm(time.Now())
	for _, w := range waiting {
		w(ctx, nil)
	}
}

// deliver records a child's outcome that arrived as a message (already in
// this execution's journal).
func (e *execution) deliver(ctx actor.Context, m *messages.ChildOutcome) {
	pos := int(m.Position)
	e.deliverEntry(ctx, &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntryCall, Name: m.Function,
		ChildID: m.ChildId, Done: true, Output: m.Output, Error: infoFromProto(m.Error)})
}

// deliverEntry puts a child's outcome at its position, unless the position
// holds an outcome already, is not a call, or names another child (one of
// an earlier attempt), and answers the body's wait for it.
func (e *execution) deliverEntry(ctx actor.Context, ent *persistence.JournalEntry) {
	pos := ent.Position
	cur := e.entries[pos]
	if pos < 0 || cur != nil && (cur.Done || cur.Kind != persistence.EntryCall) {
		return // done already, or not a call: a stray or malformed message
	}
	if cur != nil && cur.ChildID != "" && cur.ChildID != ent.ChildID {
		return // an outcome of a child from an earlier attempt
	}
	if !ent.Done {
		e.entries[pos] = ent
		return
	}
	e.entries[pos] = ent
	if ws := e.awaits[pos]; len(ws) > 0 {
		delete(e.awaits, pos)
		for _, w := range ws {
			e.answerAwait(ctx, w, ent)
		}
	}
}

// rememberEntry puts an entry this activation wrote into the journal in
// memory, unless an outcome is there already.
func (e *execution) rememberEntry(ent *persistence.JournalEntry) {
	if cur, ok := e.entries[ent.Position]; ok && cur.Done && !ent.Done {
		return
	}
	e.entries[ent.Position] = ent
}

// hasOpenChildren reports whether a started child has no outcome yet.
func (e *execution) hasOpenChildren() bool {
	for _, ent := range e.entries {
		if ent.Kind == persistence.EntryCall && !ent.Done {
			return true
		}
	}
	return false
}

// releaseLease gives back the lease of rec under epoch.
func (rt *Runtime) releaseLease(rec *persistence.Execution, epoch int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs, err := rt.backend.Apply(ctx, []*persistence.Commit{{ExecutionID: rec.ID, Epoch: epoch,
		Update: &persistence.Update{Release: true}}})
	if err == nil && len(errs) == 1 {
		err = errs[0]
	}
	if err != nil && !errors.Is(err, persistence.ErrStaleEpoch) && !errors.Is(err, persistence.ErrClosed) {
		rt.log.Warn("giving back the lease of a stopped child", slog.String("execution_id", rec.ID), slog.Any("error", err))
		return
	}
	rt.Kick()
}

// Messages of the runtime's own that may reach an actor that has stopped
// (a write or a child's answer that comes back after the end) are dropped
// without a dead-letter log line.
func (*prepared) IgnoreDeadLetterLogging()         {}
func (*bodyDone) IgnoreDeadLetterLogging()         {}
func (*applied) IgnoreDeadLetterLogging()          {}
func (*leaseConfirmed) IgnoreDeadLetterLogging()   {}
func (*leaseLost) IgnoreDeadLetterLogging()        {}
func (*cancelExecution) IgnoreDeadLetterLogging()  {}
func (*childSettled) IgnoreDeadLetterLogging()     {}
func (*recorded) IgnoreDeadLetterLogging()         {}
func (*materializeChild) IgnoreDeadLetterLogging() {}
func (*materialized) IgnoreDeadLetterLogging()     {}
func (*leaseChecked) IgnoreDeadLetterLogging()     {}
func (*opBegin) IgnoreDeadLetterLogging()          {}
func (*opWrite) IgnoreDeadLetterLogging()          {}
func (*opSpawn) IgnoreDeadLetterLogging()          {}
func (*opAwait) IgnoreDeadLetterLogging()          {}
func (*opRemember) IgnoreDeadLetterLogging()       {}
func (*opCheckLease) IgnoreDeadLetterLogging()     {}
func (*opPermitHeld) IgnoreDeadLetterLogging()     {}
func (*opWatch) IgnoreDeadLetterLogging()          {}
func (*stopped) IgnoreDeadLetterLogging()          {}
