package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// adoptLease asks the activation holding the lease of epoch from to go on
// under epoch to, which this node claimed when the lease ran out while the
// activation ran (renewals failed for longer than the lease: the database
// was out of reach). No other node held the lease meanwhile (the epoch
// went from from to to here), so the activation's journal in memory is
// still the whole of it, unless a write of it or a lease check is in
// flight under the old epoch: then it stops instead (leaseLost).
type adoptLease struct{ from, to int64 }

// leaseAdopted tells the supervisor that the activation of id runs under
// the lease of epoch now.
type leaseAdopted struct {
	id    string
	epoch int64
}

// activate asks for an activation of an execution on this node.
type activate struct {
	rec   *persistence.Execution
	fresh bool
	// unwritten is set for a child whose row is not written yet.
	unwritten *unwritten
	// canceled is set for a child whose parent was being canceled.
	canceled bool
	// leasedAt, when not zero, is when the lease was last known held (the
	// request that took it was sent); zero means now.
	leasedAt time.Time
}

// activation is the node's directory entry of an execution actor: where
// to send its messages, and the lease it runs under. The entry belongs to
// the Runtime (under Runtime.mu); the activation's own state is its
// actor's.
type activation struct {
	spawn *activate
	pid   *actor.PID
	// epoch is the lease epoch the activation runs under (0 while it
	// takes its lease); leased is false while it is a child in memory
	// with no row (its parent's lease covers it).
	epoch     int64
	leased    bool
	unwritten *unwritten
	// failed is set when supervision gave up on the actor: its lease is
	// left to run out rather than given back, so that a fault that
	// repeats is not claimed again at once.
	failed bool
	// mailbox dispatches the actor's mailbox.
	mailbox *mailbox
}

// cancelLocal asks the supervisor to cancel the activation of execution
// id, whose lease this node holds, once the activations asked for before
// are spawned (Cancel found none yet).
type cancelLocal struct{ id string }

// execActorPrefix names every execution actor in the process registry:
// "executions/<execution ID>", flat, whichever actor is its parent, so that
// any member can address an execution it knows the owner of.
const execActorPrefix = "executions/"

// ExecutionPID returns the PID of execution id's actor on the member whose
// remote address is addr.
func ExecutionPID(addr, id string) *actor.PID { return actor.NewPID(addr, execActorPrefix+id) }

// errBusy means an activation of the execution is on this node already.
var errBusy = errors.New("an activation of the execution is on this node")

// spawnExecution registers and spawns the actor of a, as a child of the
// actor whose context spawner is: the node's supervisor, or the parent
// execution for a child that runs in memory here.
func (rt *Runtime) spawnExecution(spawner actor.Context, a *activate) error {
	id := a.rec.ID
	act := &activation{spawn: a, epoch: a.rec.Epoch, leased: a.unwritten == nil, unwritten: a.unwritten,
		pid: ExecutionPID(rt.system.Address(), id), mailbox: &mailbox{w: rt.workers}}
	rt.mu.Lock()
	if rt.stopping {
		rt.mu.Unlock()
		return errShutdown
	}
	if _, busy := rt.active[id]; busy {
		rt.mu.Unlock()
		return errBusy
	}
	rt.active[id] = act
	rt.runners.Add(1)
	rt.mu.Unlock()
	restarted := false
	props := actor.PropsFromProducer(func() actor.Actor {
		// Called again by a restart: the new instance reads the journal.
		e := newExecution(rt, act, restarted)
		restarted = true
		return e
	}, actor.WithSupervisor(rt.strategy), actor.WithDispatcher(act.mailbox), actor.WithSpawnFunc(func(system *actor.ActorSystem, _ string, props *actor.Props, parent actor.SpawnerContext) (*actor.PID, error) {
		return actor.DefaultSpawner(system, execActorPrefix+id, props, parent)
	}))
	// The spawner's goroutine handles the actor's start (Started) itself:
	// the start is short, and a parent's body waits for its child.
	act.mailbox.here.Store(true)
	_, err := spawner.SpawnNamed(props, id)
	act.mailbox.here.Store(false)
	if err != nil {
		rt.mu.Lock()
		if rt.active[id] == act {
			delete(rt.active, id)
		}
		rt.mu.Unlock()
		rt.runners.Done()
		return fmt.Errorf("spawning the actor of %s: %w", id, err)
	}
	return nil
}

// deactivate removes act from the directory once its actor has stopped,
// and tells the supervisor, which may have an activation waiting for it.
func (rt *Runtime) deactivate(act *activation) {
	id := act.spawn.rec.ID
	rt.mu.Lock()
	if rt.active[id] == act {
		delete(rt.active, id)
	}
	epoch := act.epoch
	rt.mu.Unlock()
	rt.runners.Done()
	rt.system.Root.Send(rt.sup, &stopped{id: id, epoch: epoch})
}

// setEpoch records the epoch of the lease act took.
func (rt *Runtime) setEpoch(act *activation, epoch int64) {
	rt.mu.Lock()
	act.epoch = epoch
	rt.mu.Unlock()
}

// setLeased records that act's row is written: it holds a lease of its own.
func (rt *Runtime) setLeased(act *activation) {
	rt.mu.Lock()
	act.leased, act.unwritten = true, nil
	rt.mu.Unlock()
}

// pidOf returns the PID of execution id's actor on this node, or nil.
func (rt *Runtime) pidOf(id string) *actor.PID {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if act := rt.active[id]; act != nil {
		return act.pid
	}
	return nil
}

// leased returns the leases this node's activations run under, with the
// PIDs to tell about them.
func (rt *Runtime) leased() ([]persistence.Lease, []*actor.PID) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	leases := make([]persistence.Lease, 0, len(rt.active))
	pids := make([]*actor.PID, 0, len(rt.active))
	for id, act := range rt.active {
		if act.leased && act.epoch > 0 {
			leases = append(leases, persistence.Lease{ExecutionID: id, Epoch: act.epoch})
			pids = append(pids, act.pid)
		}
	}
	return leases, pids
}

// stopped tells the supervisor that an execution actor, which ran under
// epoch, has stopped.
type stopped struct {
	id    string
	epoch int64
}

// supervisor is the node's "executions" actor: the parent of the actors of
// executions that run here as roots of their tree on this node (claimed,
// started here, placed here, woken). Children that run in memory are the
// children of their parent's actor instead. It makes sure an execution is
// activated at most once on the node at a time.
type supervisor struct {
	rt *Runtime
	// pending holds an activation that arrived while the previous activation
	// of the same execution was still stopping.
	pending map[string]*activate
}

func (s *supervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *activate:
		s.spawn(ctx, m)
	case *messages.Activate:
		// An activation without a lease: the actor takes it. From another
		// member: new work placed here, or an execution woken while no one
		// held its lease.
		s.spawn(ctx, &activate{rec: &persistence.Execution{ID: m.ExecutionId, Epoch: 0}})
	case *messages.Finished:
		// From another member: a root finished; local callers re-read it.
		s.rt.poke(m.ExecutionId)
	case *cancelLocal:
		// After any activation of the execution asked for before it.
		if pid := s.rt.pidOf(m.id); pid != nil {
			ctx.Send(pid, &cancelExecution{})
		} else if next, ok := s.pending[m.id]; ok {
			next.canceled = true
		}
	case *leaseAdopted:
		if next, ok := s.pending[m.id]; ok && next.rec.Epoch == m.epoch {
			delete(s.pending, m.id) // the running activation holds it
		}
	case *stopped:
		if next, ok := s.pending[m.id]; ok {
			delete(s.pending, m.id)
			if next.rec.Epoch > m.epoch {
				s.spawn(ctx, next)
			}
			// else: the stopped activation took a newer lease than the
			// waiting one (placement and a claim raced): the waiting one's
			// is stale, and the execution ran (or is due again).
		}
	}
}

func (s *supervisor) spawn(ctx actor.Context, m *activate) {
	rt := s.rt
	id := m.rec.ID
	err := rt.spawnExecution(ctx, m)
	if err == nil || !errors.Is(err, errBusy) {
		if err != nil && !errors.Is(err, errShutdown) {
			rt.log.Error("spawning an execution actor", slog.String("execution_id", id), slog.Any("error", err))
		}
		return
	}
	if m.rec.Epoch == 0 {
		return // already running here
	}
	// A newer lease while the old activation is still here: either it is
	// winding down (a passivation racing a wake-up), or its lease ran out
	// while it ran (renewals failed for longer than the lease) and this
	// node claimed the execution again. Either way the old one's writes are
	// refused from now on: make it stop, and run the new one once it has.
	rt.mu.Lock()
	old := rt.active[id]
	var oldEpoch int64
	if old != nil {
		oldEpoch = old.epoch
	}
	rt.mu.Unlock()
	if old != nil && oldEpoch > 0 && oldEpoch < m.rec.Epoch {
		// The old activation keeps running under the new lease if it can
		// (adoptLease): stopping it would run again, in a new
		// activation, the steps it started after its last write. If it
		// cannot, it stops, and the new one runs once it has.
		ctx.Send(old.pid, &adoptLease{from: oldEpoch, to: m.rec.Epoch})
	}
	if old == nil {
		s.spawn(ctx, m) // it stopped meanwhile
		return
	}
	if s.pending == nil {
		s.pending = make(map[string]*activate)
	}
	s.pending[id] = m
}

// restartStrategy is the supervision of execution actors (set on the
// supervisor's props and on every execution's, for its children). A panic
// inside an actor's Receive (a runtime fault: user code runs on its own
// goroutine and its panics fail the attempt instead) restarts the actor
// after a backoff of restartBackoff doubled per failure; the new instance
// reads the snapshot and journal again and replays, under the lease it
// holds. More than maxRestarts failures within restartWindow stop it
// instead: its lease runs out and a claim, here or elsewhere, takes it.
type restartStrategy struct {
	rt *Runtime
}

const (
	maxRestarts    = 3
	restartWindow  = time.Minute
	restartBackoff = 100 * time.Millisecond
)

func (s *restartStrategy) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics,
	reason interface{}, msg interface{}) {
	if rs.NumberOfFailures(restartWindow) == 0 {
		rs.Reset()
	}
	rs.Fail()
	n := rs.FailureCount()
	id := strings.TrimPrefix(child.Id, execActorPrefix)
	if n > maxRestarts {
		s.rt.mu.Lock()
		if act := s.rt.active[id]; act != nil {
			act.failed = true
		}
		s.rt.mu.Unlock()
		s.rt.log.Error("execution actor failed too often; stopping it", slog.String("execution_id", id),
			slog.Int("failures", n), slog.Any("reason", reason), slog.String("message", fmt.Sprintf("%T", msg)))
		sup.StopChildren(child)
		return
	}
	backoff := restartBackoff << (n - 1)
	s.rt.log.Error("execution actor failed; restarting it from its journal", slog.String("execution_id", id),
		slog.Int("failures", n), slog.Duration("backoff", backoff), slog.Any("reason", reason), slog.String("message", fmt.Sprintf("%T", msg)))
	time.AfterFunc(backoff, func() { sup.RestartChildren(child) })
}
