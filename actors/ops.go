package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/persistence"
)

// CallOptions are the per-call options of a child or root start.
type CallOptions struct {
	// Queue overrides the function's queue when not "".
	Queue string
	// Priority orders executions waiting in a queue; higher first.
	Priority int
	// Delay postpones the start.
	Delay time.Duration
	// MaxDuration is a deadline for the whole execution, children included.
	MaxDuration time.Duration
	// IdempotencyKey makes a root start idempotent.
	IdempotencyKey string
	// Tags are added to the function's for this call (NormalizeTags).
	Tags []string
}

// handle is what an attempt's goroutines hold of their activation: the
// actor to ask, and what does not change while the attempt runs. It is the
// value a body's context carries.
type handle struct {
	rt  *Runtime
	act *activation
	id  string
	rec *persistence.Execution // read-only
	fn  *Function
	pid *actor.PID
	// inc is the incarnation of the actor at pid that runs this attempt.
	inc     uint64
	system  *actor.ActorSystem
	attempt int
	// fresh and unwritten are the activation's, at the attempt's start
	// (for the result cache's marks).
	fresh, unwritten bool
	// gone is closed when the actor stops or restarts; goneErr, set
	// before, says why.
	gone    chan struct{}
	goneErr error
	// signalC is poked when a signal may have arrived for a wait in memory.
	signalC chan struct{}
	// pollC is poked when a child placed on another member is gone (its
	// actor stopped, or its member): a wait for it reads its row now.
	pollC chan struct{}
	// progressSeq numbers the counter additions of this attempt.
	progressSeq atomic.Int64
	// calls are the spans of calls not awaited yet (trace.go).
	calls openCalls
}

func (h *handle) isGone() bool {
	select {
	case <-h.gone:
		return true
	default:
		return false
	}
}

// opReply is the actor's answer to a request of the body.
type opReply struct {
	pos  int
	ents []*persistence.JournalEntry
	ent  *persistence.JournalEntry
	err  error
	// stay answers a passivating write that was not made: children
	// started and not awaited still report to this activation.
	stay bool
}

// send sends msg to the attempt's incarnation of its actor. The body's
// goroutine waits for the actor next (or goes on after a short handler):
// it runs the actor's mailbox if it is idle.
func (h *handle) send(msg any) { h.act.mailbox.sendHere(h.system, h.pid, to(h.inc, msg)) }

// ask sends a request to the actor and waits for its answer, or for the
// actor to stop.
func (h *handle) ask(msg any, reply chan opReply) opReply {
	h.send(msg)
	select {
	case r := <-reply:
		return r
	case <-h.gone:
		select {
		case r := <-reply:
			return r
		default:
			return opReply{err: h.goneErr}
		}
	}
}

// The body's requests. Each carries the channel its answer goes to.
type (
	// opBegin takes the next n journal positions for operations of kind
	// and name, and returns what the journal holds there (nil where new).
	// With checkLease the answer waits for a lease check when the lease
	// was not confirmed for half a lease.
	opBegin struct {
		kind       persistence.EntryKind
		name       string
		n          int
		checkLease bool
		reply      chan opReply
	}
	// opWrite writes a commit of the body and remembers its entries. With
	// passivate the activation ends once the write succeeds (the commit
	// releases the lease); if children are still open it writes nothing
	// and answers stay.
	opWrite struct {
		c         *persistence.Commit
		remember  []*persistence.JournalEntry
		passivate bool
		reply     chan opReply
	}
	// opSpawn remembers the intents of children that run in memory here
	// and spawns them as child actors. It has no answer.
	opSpawn struct {
		intents  []*persistence.JournalEntry
		children []*activate
	}
	// opAwait asks for the outcome at pos, answered once it is there.
	opAwait struct {
		pos   int
		reply chan opReply
	}
	// opRemember hands the actor outcomes the body read from the
	// database. It has no answer.
	opRemember struct{ entries []*persistence.JournalEntry }
	// opCheckLease asks whether the lease is still held (checked in the
	// database if it was not confirmed for half a lease). An in-memory
	// child forwards it to its parent; notify then gets leaseChecked.
	opCheckLease struct {
		reply     chan opReply
		notify    *actor.PID
		notifyInc uint64
	}
	// opWatch has the actor watch the actors of children placed on other
	// members. It has no answer.
	opWatch struct{ pids []*actor.PID }
	// opPermitHeld tells the actor that the attempt holds a permit.
	opPermitHeld struct {
		permit *heldPermit
		reply  chan opReply
	}
)

// leaseChecked is the result of a lease check.
type leaseChecked struct {
	lost bool
	err  error
	at   time.Time
}

func newReply() chan opReply { return make(chan opReply, 1) }

// usable returns why the activation may take no more positions, or nil.
func (e *execution) usable() error {
	switch {
	case e.closed != nil:
		return e.closed
	case e.rt.isStopping():
		return errShutdown
	case e.canceled:
		return fmt.Errorf("execution %s: %w", e.id, ErrCanceled)
	}
	return nil
}

func (e *execution) onBegin(ctx actor.Context, m *opBegin) {
	if err := e.usable(); err != nil {
		m.reply <- opReply{err: err}
		return
	}
	pos := e.next
	ents := make([]*persistence.JournalEntry, m.n)
	for i := range m.n {
		p := e.next
		e.next++
		ent := e.entries[p]
		if ent != nil && (ent.Kind != m.kind || ent.Name != m.name) {
			err := fmt.Errorf("%w: position %d of %s recorded %s %q, the replay issued %s %q",
				ErrNonDeterministic, p, e.id, ent.Kind, ent.Name, m.kind, m.name)
			if e.nondet == nil {
				e.nondet = &persistence.ErrorInfo{Message: err.Error(), Kind: persistence.ErrorKindNonDeterministic, NonRetryable: true}
			}
			m.reply <- opReply{err: err}
			return
		}
		ents[i] = ent
	}
	r := opReply{pos: pos, ents: ents}
	if !m.checkLease {
		m.reply <- r
		return
	}
	e.checkLease(ctx, func(err error) {
		r.err = err
		m.reply <- r
	})
}

func (e *execution) onWrite(ctx actor.Context, m *opWrite) {
	if e.closed != nil {
		m.reply <- opReply{err: e.closed}
		return
	}
	if m.passivate && e.hasOpenChildren() {
		m.reply <- opReply{stay: true}
		return
	}
	e.materialize(ctx, func(ctx actor.Context, err error) {
		if err == nil && e.closed != nil {
			err = e.closed
		}
		if err != nil {
			m.reply <- opReply{err: err}
			return
		}
		c := m.c
		snap := -1
		e.sinceSnap += len(c.Journal)
		if e.sinceSnap >= e.rt.cfg.SnapshotEvery || (c.Update != nil && c.Update.Release) {
			snap = e.attachSnapshot(c)
		}
		c.Epoch = e.epoch
		e.apply(ctx, c, false, nil, func(ctx actor.Context, err error) {
			if err != nil {
				m.reply <- opReply{err: err}
				return
			}
			if snap >= 0 {
				e.snapAt, e.sinceSnap = snap, 0
			}
			for _, ent := range m.remember {
				e.rememberEntry(ent)
			}
			if m.passivate {
				e.passivated = true
				if e.canceled {
					// Canceled while the write was under way: the row is
					// due again (the commit saw the request), and the
					// next activation ends it canceled.
					e.rt.Kick()
				}
				m.reply <- opReply{}
				e.shut(errPassivated)
				e.stopAfterChildren(ctx)
				return
			}
			m.reply <- opReply{}
		})
	})
}

// attachSnapshot adds the completed prefix of the journal, plus the entries
// c writes, to c as a snapshot when it reaches past the stored one. It
// returns the snapshot's position or -1.
func (e *execution) attachSnapshot(c *persistence.Commit) int {
	view := make(map[int]*persistence.JournalEntry, len(e.entries)+len(c.Journal))
	for p, ent := range e.entries {
		view[p] = ent
	}
	for _, ent := range c.Journal {
		view[ent.Position] = ent
	}
	prefix := donePrefix(view)
	if len(prefix)-1 <= e.snapAt {
		return -1
	}
	data, pos := encodeSnapshot(e.id, prefix)
	if data == nil {
		return -1
	}
	c.Snapshot = &persistence.Snapshot{ExecutionID: e.id, Position: pos, Data: data}
	return pos
}

func (e *execution) onSpawn(ctx actor.Context, m *opSpawn) {
	for _, ent := range m.intents {
		e.rememberEntry(ent)
	}
	rt := e.rt
	for _, a := range m.children {
		if e.closed != nil {
			return // the body's later operations fail; a replay starts them
		}
		a.unwritten.parent, a.unwritten.parentInc, a.unwritten.parentBox = ctx.Self(), e.inc, e.act.mailbox
		a.canceled = e.canceled
		a.leasedAt = confirmBase.Add(e.confirmed) // its lease is this one's
		if err := rt.spawnExecution(ctx, a); err != nil {
			// Not runnable here now (an activation of the same ID is
			// still stopping): write its row for a claim to run it.
			row := *a.rec
			row.Status, row.Owner, row.Epoch, row.LeaseExpiresAt = persistence.StatusPending, "", 0, time.Time{}
			intent := a.unwritten.intent
			rt.log.Debug("child not started in memory; left to a claim", slog.String("execution_id", row.ID), slog.Any("reason", err))
			e.apply(ctx, &persistence.Commit{ExecutionID: e.id, Epoch: e.epoch, Create: []*persistence.Execution{&row},
				Journal: []*persistence.JournalEntry{intent}}, true, nil, func(ctx actor.Context, err error) {
				if err == nil {
					e.rememberEntry(intent)
					rt.Kick()
				}
			})
		}
	}
}

func (e *execution) onAwait(ctx actor.Context, m *opAwait) {
	if ent := e.entries[m.pos]; ent != nil && ent.Done {
		e.answerAwait(ctx, m, ent)
		return
	}
	if e.closed != nil {
		m.reply <- opReply{err: e.closed}
		return
	}
	e.awaits[m.pos] = append(e.awaits[m.pos], m)
}

// answerAwait hands a child's outcome to the body. The body goes on with
// code outside any step: after a long gap (the process was stopped while
// the child ran), the lease is checked first.
func (e *execution) answerAwait(ctx actor.Context, m *opAwait, ent *persistence.JournalEntry) {
	e.checkLease(ctx, func(err error) {
		m.reply <- opReply{ent: ent, err: err}
	})
}

func (e *execution) onCheckLease(ctx actor.Context, m *opCheckLease) {
	e.checkLease(ctx, func(err error) {
		if m.reply != nil {
			m.reply <- opReply{err: err}
		}
		if m.notify != nil {
			ctx.Send(m.notify, to(m.notifyInc, &leaseChecked{err: err, at: time.Now()}))
		}
	})
}

// checkLease calls then with nil if this activation still holds its lease:
// at once if it was confirmed within half a lease, else after asking the
// database (an in-memory child asks its parent, whose lease is its own). A
// process stopped (SIGSTOP) past its lease, whose execution another node
// took over, thus starts no step and runs no more of the body when it
// resumes.
func (e *execution) checkLease(ctx actor.Context, then func(error)) {
	if e.closed != nil {
		then(e.closed)
		return
	}
	if e.leaseFresh() {
		then(nil)
		return
	}
	e.checking = append(e.checking, then)
	if len(e.checking) > 1 {
		return // a check is in flight
	}
	if e.unwritten != nil {
		ctx.Send(e.unwritten.parent, to(e.unwritten.parentInc, &opCheckLease{notify: ctx.Self(), notifyInc: e.inc}))
		return
	}
	rt, system, self, id, epoch, inc, mb := e.rt, ctx.ActorSystem(), ctx.Self(), e.id, e.epoch, e.inc, e.act.mailbox
	go func() {
		start := time.Now()
		lost, err := rt.backend.LostLeases(rt.baseCtx, rt.cfg.NodeID, []persistence.Lease{{ExecutionID: id, Epoch: epoch}})
		mb.sendHere(system, self, to(inc, &leaseChecked{lost: len(lost) > 0, err: err, at: start}))
	}()
}

func (e *execution) onLeaseChecked(ctx actor.Context, m *leaseChecked) {
	checks := e.checking
	e.checking = nil
	var err error
	switch {
	case m.err != nil && e.unwritten != nil:
		err = m.err // the parent's answer
	case m.err != nil:
		err = fmt.Errorf("checking the lease of %s: %w", e.id, m.err)
	case m.lost:
		err = fmt.Errorf("execution %s: %w", e.id, errLeaseLost)
		e.loseLease(ctx)
	default:
		e.confirm(m.at)
	}
	for _, then := range checks {
		then(err)
	}
}

// begin takes the next n positions of the journal for operations of kind
// and name.
func (h *handle) begin(kind persistence.EntryKind, name string, n int, checkLease bool) (int, []*persistence.JournalEntry, error) {
	m := &opBegin{kind: kind, name: name, n: n, checkLease: checkLease, reply: newReply()}
	r := h.ask(m, m.reply)
	return r.pos, r.ents, r.err
}

// write writes a commit of the body and remembers its entries.
func (h *handle) write(c *persistence.Commit, remember ...*persistence.JournalEntry) error {
	m := &opWrite{c: c, remember: remember, reply: newReply()}
	return h.ask(m, m.reply).err
}

// checkLease returns nil if the activation still holds its lease.
func (h *handle) checkLease() error {
	m := &opCheckLease{reply: newReply()}
	return h.ask(m, m.reply).err
}

// takePermit waits for a permit of the attempt's function, tells the actor
// it holds one, and checks the lease (the wait may have been long). The
// body starts only on a permit that is surely still held: one taken or
// confirmed more than half a lease ago (the process may have been stopped
// since, its permit run out in the database and given to another
// execution) is confirmed in the database again, and waited for again if
// it is gone. It returns the permit, of which the caller holds a reference
// (the actor holds the other) once the actor knows of it; gone reports that
// the actor stopped meanwhile.
func (h *handle) takePermit(ctx context.Context) (p *heldPermit, gone bool, err error) {
	rt, fn, rec := h.rt, h.fn, h.rec
	rt.mu.Lock()
	prev := rt.permitsInUse[h.id]
	rt.mu.Unlock()
	if prev != nil {
		// An earlier activation's body still runs on the holder's permit
		// row, which this one would share.
		select {
		case <-prev.released:
		case <-ctx.Done():
			return nil, false, ctxError(ctx)
		}
	}
	for {
		at, err := rt.acquirePermit(ctx, h.id, h.act, fn.Name, fn.Queue, fn.MaxConcurrent, rec.Priority, rec.CreatedAt)
		if err != nil {
			return p, false, err
		}
		if p == nil {
			m := &opPermitHeld{permit: newHeldPermit(rt, h.id, h.act, fn.Name, fn.Queue), reply: newReply()}
			if r := h.ask(m, m.reply); r.err != nil {
				m.permit.drop(rt) // the actor is gone: both references
				m.permit.drop(rt)
				return nil, true, nil
			}
			p = m.permit
		}
		if err := h.checkLease(); err != nil {
			return p, false, err
		}
		held := true
		for held && time.Since(at) >= rt.cfg.LeaseTTL/2 {
			at = time.Now()
			ok, err := rt.backend.AcquirePermit(ctx, fn.Name, h.id, rt.cfg.NodeID, fn.MaxConcurrent, rt.cfg.LeaseTTL)
			if ctx.Err() != nil {
				return p, false, ctxError(ctx)
			}
			if ok {
				continue // confirmed: its lease runs from at
			}
			if err != nil {
				rt.log.Warn("confirming a permit", slog.String("function", fn.Name), slog.String("execution_id", h.id), slog.Any("error", err))
			} else {
				rt.log.Info("permit ran out before the body started (the process was stopped?); waiting for one again",
					slog.String("function", fn.Name), slog.String("execution_id", h.id))
			}
			rt.releasePermit(h.id, h.act, fn.Name, fn.Queue)
			held = false
		}
		if held {
			return p, false, nil
		}
	}
}

// usable returns why the activation may no longer write, or nil.
func (h *handle) usable() error {
	if h.isGone() {
		return h.goneErr
	}
	return nil
}

// run is the goroutine of one attempt: it takes the cached result or a
// permit if the function has them, runs the body on a goroutine of its
// own, and tells the actor how it ended.
func (h *handle) run(ctx context.Context, cacheCheck bool) {
	rt, fn, rec := h.rt, h.fn, h.rec
	defer rt.runners.Done()
	defer rt.waits.attempt()()
	done := func(r bodyResult, kind persistence.ErrorKind) {
		h.send(&bodyDone{h: h, r: r, kind: kind})
	}
	defer func() {
		if r := recover(); r != nil {
			rt.log.Error("an attempt's goroutine panicked", slog.String("execution_id", h.id), slog.Any("panic", r),
				slog.String("stack", string(debug.Stack())))
			done(bodyResult{panic: r, stack: debug.Stack()}, "")
		}
	}()
	ctx = context.WithValue(ctx, execKey{}, h)
	if cacheCheck {
		if r, ok := h.fromCache(ctx); ok {
			done(r, "")
			return
		}
	}
	if fn.MaxConcurrent > 0 {
		// Wait for a permit: the body runs only with one.
		sp := h.startOp(ctx, opPermit, fn.Name)
		p, gone, err := h.takePermit(ctx)
		endSpan(sp, err)
		if gone {
			return
		}
		if p != nil {
			defer p.drop(rt) // once the body has returned (or will not run)
		}
		if err != nil {
			done(bodyResult{err: err}, "") // canceled, lease lost, or the node stops (not recorded)
			return
		}
	}
	cancel := func() {}
	var timeout <-chan time.Time
	if fn.Timeout > 0 {
		t := time.NewTimer(fn.Timeout)
		defer t.Stop()
		timeout = t.C
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeoutCause(ctx, fn.Timeout, ErrTimeout)
		defer tcancel()
		cancel = tcancel
	}
	if !rec.Deadline.IsZero() {
		var dcancel context.CancelFunc
		ctx, dcancel = rt.withDeadline(ctx, rec.Deadline, ErrTimeout)
		defer dcancel()
	}
	out := make(chan bodyResult, 1)
	var r bodyResult
	if timeout == nil {
		// No timeout to watch: the body runs on this goroutine. A body
		// that ends by runtime.Goexit (passivation) ends it too, which
		// tells the actor on the way out.
		ended := false
		defer func() {
			if !ended {
				h.endCalls()
				done(<-out, "")
			}
		}()
		h.body(ctx, fn, rec.Input, out)
		r, ended = <-out, true
	} else {
		// The body's goroutine may end by runtime.Goexit (passivation):
		// a worker's goroutine ends with it, which the pool allows.
		rt.workers.Go(func() { h.body(ctx, fn, rec.Input, out) })
		select {
		case r = <-out:
		case <-timeout:
			r = bodyResult{err: fmt.Errorf("attempt %d of %s ran longer than %s: %w", h.attempt, fn.Name, fn.Timeout, ErrTimeout)}
			cancel()
		}
	}
	h.endCalls()
	if r.err != nil && !rec.Deadline.IsZero() && !rt.Now().Before(rec.Deadline) {
		r.err = NonRetryable(fmt.Errorf("execution %s ran past its deadline (%s): %w", h.id, rec.Deadline.Format(time.RFC3339Nano), ErrTimeout))
	}
	done(r, "")
}

// body runs the user's function, turning a panic into the attempt's
// failure and noticing a runtime.Goexit (passivation).
func (h *handle) body(ctx context.Context, fn *Function, input []byte, out chan<- bodyResult) {
	returned := false
	defer func() {
		if r := recover(); r != nil {
			out <- bodyResult{panic: r, stack: debug.Stack()}
			return
		}
		if !returned {
			out <- bodyResult{exited: true}
		}
	}()
	if errors.Is(context.Cause(ctx), ErrCanceled) {
		// The cancel arrived while this goroutine was being started.
		returned = true
		out <- bodyResult{err: fmt.Errorf("execution %s: %w", h.id, ErrCanceled)}
		return
	}
	o, err := fn.Run(ctx, input)
	returned = true
	out <- bodyResult{out: o, err: err}
}

type execKey struct{}

// fromContext returns the attempt a body's context belongs to.
func fromContext(ctx context.Context) *handle {
	h, _ := ctx.Value(execKey{}).(*handle)
	return h
}

// ExecutionID returns the ID of the execution ctx belongs to, or "".
func ExecutionID(ctx context.Context) string {
	if h := fromContext(ctx); h != nil {
		return h.id
	}
	return ""
}

// InExecution reports whether ctx belongs to a running execution body.
func InExecution(ctx context.Context) bool { return fromContext(ctx) != nil }

// Future is a child started by an execution.
type Future struct {
	h       *handle
	pos     int
	childID string
	span    trace.Span // the call's, ended by Await
}

// ID returns the child's execution ID.
func (f *Future) ID() string { return f.childID }

func (h *handle) childID(pos int) string {
	if a := h.attempt; a > 1 {
		return h.id + "." + strconv.Itoa(pos) + "-" + strconv.Itoa(a)
	}
	return h.id + "." + strconv.Itoa(pos)
}

// StartChildren starts one child of fn per input, at consecutive journal
// positions, in one write. Children already recorded (a replay) are not
// started again. It must be called from an execution body.
func StartChildren(ctx context.Context, fn *Function, inputs [][]byte, opts CallOptions) ([]*Future, error) {
	h := fromContext(ctx)
	if h == nil {
		return nil, errors.New("actors: StartChildren outside an execution")
	}
	rt := h.rt
	for i, in := range inputs {
		if err := rt.CheckPayload(fn.Name, "input", len(in)); err != nil {
			return nil, NonRetryable(fmt.Errorf("starting call %d of %s: %w", i, h.id, err))
		}
	}
	first, ents, err := h.begin(persistence.EntryCall, fn.Name, len(inputs), true)
	if err != nil {
		return nil, err
	}
	futures := make([]*Future, len(inputs))
	var creates []*persistence.Execution
	var written, inMemory []*persistence.JournalEntry
	var local []*activate
	var idempotents []*persistence.Execution
	queue := opts.Queue
	if queue == "" {
		queue = fn.Queue
	}
	tags := fn.CallTags(opts.Tags)
	here := rt.Serves(queue) && rt.Covers(tags) && opts.Delay <= 0 && rt.Serving()
	now := rt.Now().UTC()
	deadline := h.rec.Deadline
	if opts.MaxDuration > 0 {
		if d := now.Add(opts.MaxDuration); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	rootID := h.rec.RootID
	if rootID == "" {
		rootID = h.id
	}
	for i, in := range inputs {
		pos := first + i
		// A child that runs here in memory (a step) gets no call span: its
		// attempt span, a child of this attempt's, covers the call (one
		// span per step, not two). Other children get one, ended by Await.
		sp := noSpan
		parentSpan := trace.SpanContextFromContext(ctx)
		if !here || fn.Idempotent {
			sp = h.startOp(ctx, opCall, fn.Name)
			h.trackCall(sp)
			parentSpan = sp.SpanContext()
		}
		if ent := ents[i]; ent != nil {
			opAt(sp, pos, true)
			if sp.IsRecording() {
				sp.SetAttributes(AttrChildID.String(ent.ChildID))
			}
			futures[i] = &Future{h: h, pos: pos, childID: ent.ChildID, span: sp}
			continue
		}
		id := h.childID(pos)
		opAt(sp, pos, false)
		if sp.IsRecording() {
			sp.SetAttributes(AttrChildID.String(id))
		}
		if err := rt.tagExecutions(ctx, tags, id); err != nil {
			return nil, fmt.Errorf("starting %q at position %d of %s: %w", fn.Name, pos, h.id, err)
		}
		futures[i] = &Future{h: h, pos: pos, childID: id, span: sp}
		child := &persistence.Execution{
			ID: id, Function: fn.Name, Queue: queue, Status: persistence.StatusPending, Input: in,
			ParentID: h.id, ParentPos: pos, RootID: rootID, Priority: opts.Priority, Version: fn.Version,
			Deadline: deadline, CreatedAt: now, UpdatedAt: now, TraceContext: FormatTraceParent(parentSpan),
		}
		if opts.Delay > 0 {
			child.RunAt = now.Add(opts.Delay)
		}
		intent := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntryCall, Name: fn.Name, ChildID: id,
			StartedAt: now}
		if fn.Idempotent {
			// Unique by its input across every execution: insert it (or
			// find the one that exists) before the intent names it. It is
			// no child actor of this one (other executions may wait on it).
			child.IdempotencyKey = fn.IdempotencyKey(in)
			if here {
				child.Status, child.Owner, child.Epoch = persistence.StatusRunning, rt.cfg.NodeID, 1
				child.LeaseTTL = rt.cfg.LeaseTTL // from the backend's clock
			}
			got, created, err := rt.backend.CreateExecution(ctx, child)
			if err != nil {
				return nil, fmt.Errorf("starting %q at position %d of %s: %w", fn.Name, pos, h.id, err)
			}
			intent.ChildID, futures[i].childID = got.ID, got.ID
			switch {
			case created && here:
				idempotents = append(idempotents, got)
			case created:
				rt.Kick()
				rt.publish(persistence.TopicQueue, queue)
				rt.place(got.ID, queue, fn.Name)
			case !created && got.Status.Terminal():
				intent.Done, intent.Output = true, got.Output
				if got.Status != persistence.StatusCompleted {
					intent.Error = withIdentity(got)
				}
			}
			written = append(written, intent)
			continue
		}
		if here {
			// Run it here at once, as a child actor of this one, in
			// memory: its row is written with its outcome, or before its
			// first durable write. A crash before then loses nothing
			// recorded: the replay starts it again.
			child.Status = persistence.StatusRunning
			child.Owner = rt.cfg.NodeID
			child.Epoch = 1
			local = append(local, &activate{rec: child, fresh: true, unwritten: &unwritten{intent: intent}})
			inMemory = append(inMemory, intent)
			continue
		}
		creates = append(creates, child)
		written = append(written, intent)
	}
	if len(written) > 0 {
		if err := h.write(&persistence.Commit{ExecutionID: h.id, Create: creates, Journal: written}, written...); err != nil {
			return nil, err
		}
	}
	if len(local) > 0 || len(inMemory) > 0 {
		h.send(&opSpawn{intents: inMemory, children: local})
	}
	for _, c := range idempotents {
		rt.activate(c, true)
	}
	if len(creates) > 0 {
		if opts.Delay > 0 {
			rt.kickAt(opts.Delay)
		} else {
			rt.Kick()
			var remote []*actor.PID
			for _, c := range creates {
				if pid, ok := rt.placeOn(c.ID, queue, c.Function); ok && pid != nil {
					remote = append(remote, pid)
				}
			}
			if len(remote) > 0 {
				// Watched: if a child's actor or its member goes away, the
				// wait reads the child's row at once.
				h.send(&opWatch{pids: remote})
			}
		}
		rt.publish(persistence.TopicQueue, queue)
	}
	return futures, nil
}

// Await waits for the child's outcome: its JSON output, or an
// *ExecutionError. While it waits it checks the child's row now and then, in
// case the child finished on another node.
func (f *Future) Await(ctx context.Context) (out []byte, err error) {
	h := f.h
	defer func() { h.endCall(f.span, err) }()
	m := &opAwait{pos: f.pos, reply: newReply()}
	h.send(m)
	defer h.rt.waits.wait(time.Time{})()
	poll := h.rt.cfg.PollInterval
	missing := 0 // consecutive polls that found no row and no activation of the child
	for {
		t := time.NewTimer(poll)
		select {
		case r := <-m.reply:
			t.Stop()
			return answer(r)
		case <-h.gone:
			t.Stop()
			select {
			case r := <-m.reply:
				return answer(r)
			default:
				return nil, h.goneErr
			}
		case <-ctx.Done():
			t.Stop()
			return nil, ctxError(ctx)
		case <-h.pollC:
			t.Stop()
			if err := f.poll(ctx, &missing); err != nil {
				return nil, err
			}
		case <-t.C:
			if err := f.poll(ctx, &missing); err != nil {
				return nil, err
			}
		}
	}
}

// poll reads the child's row: a finished child's outcome goes to the
// actor (which answers the wait); a child missing too often fails the call.
func (f *Future) poll(ctx context.Context, missing *int) error {
	h := f.h
	rec, err := h.rt.backend.GetExecution(ctx, f.childID)
	if f.dangling(err, missing) {
		return f.danglingChild()
	}
	if err != nil || !rec.Status.Terminal() {
		return nil
	}
	info := rec.Error
	if info != nil && info.ExecutionID == "" {
		c := *info
		c.Function, c.ExecutionID, c.Attempts = rec.Function, rec.ID, rec.Attempts
		info = &c
	}
	h.send(&opRemember{entries: []*persistence.JournalEntry{{ExecutionID: h.id, Position: f.pos,
		Kind: persistence.EntryCall, Name: rec.Function, ChildID: rec.ID, Done: true, Output: rec.Output, Error: info}}})
	return nil
}

func answer(r opReply) ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.ent.Output, errorFromInfo(r.ent.Error)
}

// danglingPolls is how many polls in a row must find neither the child's
// row nor an activation of it before the child counts as missing: an
// in-memory child that just finished is in neither for a moment, until its
// outcome reaches the parent.
const danglingPolls = 3

// dangling counts, in missing, the polls in a row where the child has no
// row (err from reading it) and no activation on this node (an in-memory
// child has no row yet), and reports when there were danglingPolls.
func (f *Future) dangling(err error, missing *int) bool {
	if !errors.Is(err, persistence.ErrNotFound) || f.h.rt.pidOf(f.childID) != nil {
		*missing = 0
		return false
	}
	*missing++
	return *missing >= danglingPolls
}

// danglingChild fails the call at f, whose child's row does not exist (it
// was deleted, or the journal is corrupt): waiting would never end. The
// error is not retried (a retry would run the child again, though it may
// have done its work); replaying the dead letter does that on purpose.
func (f *Future) danglingChild() error {
	h := f.h
	h.rt.log.Error("a child named in the journal does not exist; failing the call",
		slog.String("execution_id", h.id), slog.Int("position", f.pos), slog.String("child_id", f.childID))
	return NonRetryable(fmt.Errorf("execution %s: the child %s at journal position %d does not exist (its row was deleted or never written); replay the dead letter to run the call again",
		h.id, f.childID, f.pos))
}

// ctxError is what a durable operation returns when the body's context ends.
func ctxError(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return cause
	}
	return ctx.Err()
}

// Sleep is a durable timer. Inside an execution it records its end in the
// journal; a sleep of PassivateAfter or more passivates the execution (its
// actor and goroutines end, and a timer in the database brings it back).
// Outside an execution it is a plain sleep that honours ctx.
func Sleep(ctx context.Context, d time.Duration) (err error) {
	h := fromContext(ctx)
	if h == nil {
		return plainSleep(ctx, d)
	}
	sp := h.startOp(ctx, opSleep, "")
	defer func() { endSpan(sp, err) }() // also on a passivation's Goexit
	pos, ents, err := h.begin(persistence.EntrySleep, "", 1, false)
	if err != nil {
		return err
	}
	opAt(sp, pos, ents[0] != nil)
	var fireAt time.Time
	if ent := ents[0]; ent != nil {
		fireAt = ent.FireAt
	} else {
		if d <= 0 {
			return nil
		}
		fireAt = h.rt.Now().UTC().Add(d)
		intent := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntrySleep, FireAt: fireAt}
		if d >= h.rt.cfg.PassivateAfter {
			return h.passivate(ctx, intent, d)
		}
		if err := h.write(&persistence.Commit{ExecutionID: h.id, Journal: []*persistence.JournalEntry{intent}}, intent); err != nil {
			return err
		}
	}
	remaining := h.rt.until(fireAt)
	if remaining <= 0 {
		return nil
	}
	if remaining >= h.rt.cfg.PassivateAfter {
		return h.passivate(ctx, nil, remaining)
	}
	return h.rt.sleep(ctx, remaining)
}

// passivate records the sleep (intent may be nil on a replay), schedules the
// wake-up, releases the lease and ends the body's goroutine. With children
// still open it sleeps in memory instead: they report to this activation.
func (h *handle) passivate(ctx context.Context, intent *persistence.JournalEntry, d time.Duration) error {
	wakeIn := d
	if dl := h.rec.Deadline; !dl.IsZero() && h.rt.until(dl) < wakeIn {
		wakeIn = max(h.rt.until(dl), 0) // wake at the deadline to end as timed out
	}
	c := &persistence.Commit{ExecutionID: h.id, Update: &persistence.Update{
		Status: persistence.StatusWaiting, SetRunAt: true, RunAfter: wakeIn, Release: true,
	}}
	var remember []*persistence.JournalEntry
	if intent != nil {
		c.Journal = []*persistence.JournalEntry{intent}
		remember = c.Journal
	}
	m := &opWrite{c: c, remember: remember, passivate: true, reply: newReply()}
	r := h.ask(m, m.reply)
	if r.stay {
		if intent != nil {
			if err := h.write(&persistence.Commit{ExecutionID: h.id, Journal: remember}, remember...); err != nil {
				return err
			}
		}
		return h.rt.sleep(ctx, d)
	}
	if r.err != nil {
		return r.err
	}
	h.rt.kickAt(wakeIn)
	runtime.Goexit()
	return nil
}

func plainSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Now returns a time recorded once in the journal and returned again on
// replay. Outside an execution it is time.Now.
func Now(ctx context.Context) (_ time.Time, err error) {
	h := fromContext(ctx)
	if h == nil {
		return time.Now(), nil
	}
	sp := h.startOp(ctx, opNow, "")
	defer func() { endSpan(sp, err) }()
	pos, ents, err := h.begin(persistence.EntryNow, "", 1, false)
	if err != nil {
		return time.Time{}, err
	}
	opAt(sp, pos, ents[0] != nil)
	if ent := ents[0]; ent != nil && ent.Done {
		var t time.Time
		if err := json.Unmarshal(ent.Output, &t); err != nil {
			return time.Time{}, fmt.Errorf("decoding the time recorded at position %d of %s: %w", pos, h.id, err)
		}
		return t, nil
	}
	t := h.rt.Now().UTC()
	out, err := json.Marshal(t)
	if err != nil {
		return time.Time{}, fmt.Errorf("encoding a time: %w", err)
	}
	ent := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntryNow, Done: true, Output: out}
	if err := h.write(&persistence.Commit{ExecutionID: h.id, Journal: []*persistence.JournalEntry{ent}}, ent); err != nil {
		return time.Time{}, err
	}
	return t, nil
}
