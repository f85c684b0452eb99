package actors

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// activate is the local form of messages.Activate: the lease is already held.
type activate struct {
	rec   *persistence.Execution
	fresh bool
	// virtual is set for a child whose row is not written yet.
	virtual *virtualChild
	// leasedAt, when not zero, is when the lease was last known held (the
	// request that took it was sent); zero means now.
	leasedAt time.Time
}

// stopped tells the supervisor that an execution actor has stopped.
type stopped struct{ e *execution }

// supervisor is the node's "executions" actor: the parent of every execution
// actor on the node. It keeps the node's index of active executions, so that
// an execution is activated at most once per node at a time.
type supervisor struct {
	rt *Runtime
	// pending holds an activation that arrived while the previous activation
	// of the same execution was still stopping.
	pending map[string]*activate
}

// supervisorStrategy stops an execution actor that panics inside Receive:
// its runner records nothing more, its lease expires or is released, and the
// execution is claimed again. Panics in user code never reach here (they are
// recovered on the body's goroutine).
var supervisorStrategy = actor.NewOneForOneStrategy(0, time.Second, func(reason interface{}) actor.Directive {
	return actor.StopDirective
})

func (s *supervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *activate:
		s.spawn(ctx, m)
	case *messages.Activate:
		// An activation without a lease: the runner acquires it. From
		// another member: new work placed here, or an execution woken
		// while no one held its lease.
		s.spawn(ctx, &activate{rec: &persistence.Execution{ID: m.ExecutionId, Epoch: 0}})
	case *messages.Wake:
		// From another member: a signal for an execution that runs here.
		if e := s.rt.lookupActive(m.ExecutionId); e != nil {
			e.signalled()
		} else {
			s.rt.Kick() // it passivated meanwhile: its row is due
		}
	case *messages.ChildOutcome:
		// From another member: a child's outcome, already in the journal.
		if e := s.rt.lookupActive(m.ParentId); e != nil {
			e.deliver(m)
		} else {
			s.rt.Kick()
		}
	case *messages.CancelExecution:
		// From another member: the cancel is recorded already.
		if e := s.rt.lookupActive(m.ExecutionId); e != nil {
			e.cancel()
		} else {
			s.rt.Kick()
		}
	case *messages.Finished:
		// From another member: a root finished; local callers re-read it.
		s.rt.poke(m.ExecutionId)
	case *stopped:
		rt := s.rt
		rt.mu.Lock()
		if rt.active[m.e.id] == m.e {
			delete(rt.active, m.e.id)
		}
		rt.mu.Unlock()
		if next, ok := s.pending[m.e.id]; ok {
			delete(s.pending, m.e.id)
			s.spawn(ctx, next)
		}
	}
}

func (s *supervisor) spawn(ctx actor.Context, m *activate) {
	rt := s.rt
	id := m.rec.ID
	rt.mu.Lock()
	if rt.stopping {
		rt.mu.Unlock()
		return
	}
	if old, busy := rt.active[id]; busy {
		rt.mu.Unlock()
		if m.rec.Epoch == 0 {
			return // already running here
		}
		// A newer lease while the old activation is still here: either it
		// is winding down (a passivation racing a wake-up), or its lease ran
		// out while it ran (renewals failed for longer than the lease) and
		// this node claimed the execution again. Either way the old one's
		// writes are refused from now on: make it stop, and run the new one
		// once it has.
		if old.currentEpoch() < m.rec.Epoch {
			rt.log.Info("lease taken again with a newer epoch; stopping the old activation",
				slog.String("execution_id", id), slog.Int64("epoch", old.currentEpoch()), slog.Int64("new_epoch", m.rec.Epoch))
			old.abandon()
		}
		if s.pending == nil {
			s.pending = make(map[string]*activate)
		}
		s.pending[id] = m
		return
	}
	e := newExecution(rt, m.rec, m.fresh, m.leasedAt)
	e.virtual = m.virtual
	rt.active[id] = e
	rt.runners.Add(1)
	rt.mu.Unlock()
	// A parent canceled while this child was on its way here: Cancel
	// looked for the parent's children before this one was registered, so
	// the child inherits the cancel itself (the parent's flag is set before
	// Cancel looks, and this child is registered before it checks).
	if pid := m.rec.ParentID; pid != "" {
		if p := rt.lookupActive(pid); p != nil && p.isCanceled() {
			e.mu.Lock()
			e.canceled = true
			e.mu.Unlock()
		}
	}
	props := actor.PropsFromProducer(func() actor.Actor { return &executionActor{e: e} },
		actor.WithSupervisor(supervisorStrategy))
	if _, err := ctx.SpawnNamed(props, id); err != nil {
		rt.log.Error("spawning an execution actor", slog.String("execution_id", id), slog.Any("error", err))
		rt.mu.Lock()
		delete(rt.active, id)
		rt.mu.Unlock()
		rt.runners.Done()
	}
}

// executionActor is the mailbox of one execution. It starts the runner and
// hands incoming messages to the in-memory journal; it never blocks.
type executionActor struct {
	e *execution
}

// runnerDone tells an execution actor that its runner has finished.
type runnerDone struct{}

func (a *executionActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.e.self = ctx.Self()
		go a.e.run()
	case *messages.ChildOutcome:
		a.e.deliver(m)
	case *messages.Wake:
		a.e.wake()
	case *runnerDone:
		ctx.Stop(ctx.Self())
	case *actor.Stopped:
		ctx.Send(ctx.Parent(), &stopped{e: a.e})
	}
}
