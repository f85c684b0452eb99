package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// A node in a cluster starts a protoactor remote endpoint and joins the
// membership gossip. Membership is only a hint about where an execution
// runs: the lease epoch in the database decides who. The hint is used to
// send messages straight to the node that should act on them, each written
// to the database before it is sent, so a message lost with a node is found
// again by the claim loop:
//
//   - new work this node does not run: Activate to the member placement
//     gives for its queue;
//   - a signal or a child's outcome: Wake or ChildOutcome to the lease
//     holder, or Activate to the placed member when no one holds the lease;
//   - a cancel: CancelExecution to the lease holder;
//   - a root's end: Finished to every member, for callers waiting on it.
//
// When a member is declared dead (or leaves), the survivors release its
// leases at once and claim its executions, with a new epoch, instead of
// waiting for the leases to run out; a paused process's leases run out and
// are claimed the same way. A node that finds at renewal that a lease it
// holds was taken stops those activations.

// clusterNode is the runtime's part in a cluster.
type clusterNode struct {
	remote  *cluster.Remote
	members *cluster.Membership
	done    chan struct{} // closed when watchMembers returns
}

// joinCluster starts the remote endpoint and joins the cluster. The node's
// name and queues are the runtime's.
func (rt *Runtime) joinCluster(cfg cluster.Config) error {
	cfg.NodeName = rt.cfg.NodeID
	cfg.Queues = rt.cfg.Queues
	if rt.cfg.Functions != nil {
		cfg.Functions = rt.cfg.Functions()
		if cfg.Functions == nil {
			cfg.Functions = []string{}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = rt.log.With(slog.String("component", "cluster"))
	}
	if cfg.RemoteAddr == "" {
		return errors.New("actors: cluster.Config.RemoteAddr is required (host:port of this node's remote endpoint)")
	}
	r, err := cluster.StartRemote(rt.system, cfg.RemoteAddr, cfg.TLS)
	if err != nil {
		return err
	}
	cfg.RemoteAddr = r.Addr()
	ctx, cancel := context.WithTimeout(rt.baseCtx, 30*time.Second)
	defer cancel()
	m, err := cluster.Join(ctx, cfg)
	if err != nil {
		r.Stop()
		return fmt.Errorf("joining the cluster as %s: %w", cfg.NodeName, err)
	}
	rt.cl = &clusterNode{remote: r, members: m, done: make(chan struct{})}
	go rt.watchMembers()
	rt.log.Info("joined the cluster", slog.String("remote", r.Addr()), slog.Int("gossip_port", m.GossipPort()),
		slog.Int("members", len(m.Members())))
	return nil
}

// Members returns the cluster members as this node sees them, or nil
// outside a cluster.
func (rt *Runtime) Members() []cluster.Member {
	if rt.cl == nil {
		return nil
	}
	return rt.cl.members.Members()
}

// leaveCluster leaves the gossip (so the others know at once, not after
// failure detection) and stops the remote endpoint.
func (rt *Runtime) leaveCluster() error {
	if rt.cl == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := rt.cl.members.Leave(ctx)
	if cerr := rt.cl.members.Close(); cerr != nil && err == nil {
		err = cerr
	}
	<-rt.cl.done
	rt.cl.remote.Stop()
	if err != nil {
		return fmt.Errorf("leaving the cluster: %w", err)
	}
	return nil
}

// watchMembers takes over the executions of members that die or leave.
func (rt *Runtime) watchMembers() {
	defer close(rt.cl.done)
	m := rt.cl.members
	alive := make(map[string]cluster.Member)
	for {
		changed := m.Changes()
		now := make(map[string]cluster.Member)
		for _, mem := range m.Members() {
			if mem.State == cluster.StateAlive {
				now[mem.Name] = mem
			}
		}
		for name, mem := range alive {
			if _, ok := now[name]; !ok && name != rt.cfg.NodeID {
				go rt.takeOver(mem) // dead, left, or gone from the view
			}
		}
		alive = now
		select {
		case <-changed:
		case <-m.Done():
			return
		case <-rt.baseCtx.Done():
			return
		}
	}
}

// takeOver releases the leases of member name, declared dead or gone, and
// claims what is due: every survivor does so, and the claims share the
// executions out. If the member is in fact alive (a false suspicion), its
// activations lose their leases: their writes are refused and they stop.
func (rt *Runtime) takeOver(mem cluster.Member) {
	if !rt.Serving() {
		return
	}
	name := mem.Name
	// Gossip declares dead a member that is only slow to answer probes
	// too (a busy host, or probes relayed through a stopped third node).
	// Taking over a live member's executions is safe (its writes are
	// refused) but reruns its steps in flight. A member whose remote
	// endpoint still accepts a connection is alive, or stopped (SIGSTOP):
	// its executions are left to their leases, which a stopped process
	// does not renew. One that refuses it or cannot be reached is taken
	// over now.
	if mem.RemoteAddr != "" {
		if conn, err := net.DialTimeout("tcp", mem.RemoteAddr, 300*time.Millisecond); err == nil {
			_ = conn.Close()
			rt.log.Info("a member declared dead still accepts connections; its executions are left to their leases",
				slog.String("member", name), slog.String("remote", mem.RemoteAddr))
			return
		}
	}
	ctx, cancel := context.WithTimeout(rt.baseCtx, 10*time.Second)
	defer cancel()
	if err := rt.backend.ReleaseLeases(ctx, name); err != nil {
		if ctx.Err() == nil {
			rt.log.Error("releasing the leases of a lost member", slog.String("member", name), slog.Any("error", err))
		}
		return
	}
	rt.log.Info(LogTakeover, slog.String("member", name))
	rt.metrics.tookOver()
	rt.Kick()
}

// aliveMember returns the live member called name.
func (rt *Runtime) aliveMember(name string) (cluster.Member, bool) {
	if rt.cl == nil || name == "" {
		return cluster.Member{}, false
	}
	for _, mem := range rt.cl.members.Members() {
		if mem.Name == name {
			return mem, mem.State == cluster.StateAlive && mem.MetaErr == nil
		}
	}
	return cluster.Member{}, false
}

// sendTo sends msg to member mem's executions actor, or its routers actor
// for the messages about permits (this node's own when mem is this node).
func (rt *Runtime) sendTo(mem cluster.Member, msg proto.Message) {
	routers := false
	switch msg.(type) {
	case *messages.PermitRequest, *messages.PermitGranted, *messages.PermitReleased, *messages.PermitCanceled:
		routers = true
	}
	switch {
	case mem.Name == rt.cfg.NodeID && routers:
		rt.system.Root.Send(rt.routers, msg)
	case mem.Name == rt.cfg.NodeID:
		rt.system.Root.Send(rt.sup, msg)
	case routers:
		rt.system.Root.Send(actor.NewPID(mem.RemoteAddr, routersActor), msg)
	default:
		rt.system.Root.Send(cluster.PID(mem), msg)
	}
}

// place sends Activate for execution id of function, due and without a
// lease holder, to the member placement gives for queue among those that
// may run function. It reports whether it sent.
func (rt *Runtime) place(id, queue, function string) bool {
	_, ok := rt.placeOn(id, queue, function)
	return ok
}

// placeOn is place, returning the PID the execution's actor gets on the
// member it was sent to.
func (rt *Runtime) placeOn(id, queue, function string) (*actor.PID, bool) {
	if rt.cl == nil {
		return nil, false
	}
	mem, ok := rt.cl.members.OwnerOf(id, queue, function)
	if !ok {
		return nil, false
	}
	if mem.Name == rt.cfg.NodeID && !rt.Serving() {
		return nil, false
	}
	rt.sendTo(mem, &messages.Activate{ExecutionId: id})
	if mem.Name == rt.cfg.NodeID {
		return nil, true
	}
	return ExecutionPID(mem.RemoteAddr, id), true
}

// tell sends msg about rec to the node that runs it: the holder of its
// lease when that is a live member, or else (no holder) Activate to the
// placed member. It reports whether it sent anything.
func (rt *Runtime) tell(rec *persistence.Execution, msg proto.Message) bool {
	if rt.cl == nil {
		return false
	}
	if rec.Owner != "" && time.Now().Before(rec.LeaseExpiresAt) {
		if mem, ok := rt.aliveMember(rec.Owner); ok {
			rt.sendToExecution(mem, rec.ID, msg)
			return true
		}
		return false // a lost member: takeOver or the lease's expiry re-places it
	}
	return rt.place(rec.ID, rec.Queue, rec.Function)
}

// sendToExecution sends msg to the actor of execution id on member mem. A
// message to an actor that is not there (it passivated or moved
// meanwhile) is a dead letter there, which makes that node look for due
// work (watchDeadLetters): the message is in the database already.
func (rt *Runtime) sendToExecution(mem cluster.Member, id string, msg proto.Message) {
	if mem.Name != rt.cfg.NodeID {
		rt.system.Root.Send(ExecutionPID(mem.RemoteAddr, id), msg)
		return
	}
	if pid := rt.pidOf(id); pid != nil {
		rt.system.Root.Send(pid, msg)
		return
	}
	rt.Kick()
}

// watchDeadLetters makes the node look for due work when a message to an
// execution's actor finds none: the execution passivated (or its actor
// stopped) meanwhile, and the message, recorded before it was sent, made
// its row due.
func (rt *Runtime) watchDeadLetters() {
	rt.deadLetters = rt.system.EventStream.Subscribe(func(evt any) {
		dl, ok := evt.(*actor.DeadLetterEvent)
		if !ok || dl.PID == nil || !strings.HasPrefix(dl.PID.Id, execActorPrefix) {
			return
		}
		switch dl.Message.(type) {
		case *messages.Wake, *messages.ChildOutcome, *messages.CancelExecution:
			rt.Kick()
		}
	})
}

// tellParent hands a child's outcome (already in the parent's journal) to
// the node that runs the parent, when that is not this node.
func (rt *Runtime) tellParent(parentID string, m *messages.ChildOutcome) {
	if rt.cl == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(rt.baseCtx, 5*time.Second)
		defer cancel()
		parent, err := rt.backend.GetExecution(ctx, parentID)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, persistence.ErrNotFound) {
				rt.log.Debug("reading a parent to hand it a child's outcome", slog.String("execution_id", parentID), slog.Any("error", err))
			}
			return
		}
		if parent.Status.Terminal() {
			return
		}
		rt.tell(parent, m)
	}()
}

// broadcastFinished tells every other live member that root execution id
// finished, for callers waiting on it there.
func (rt *Runtime) broadcastFinished(id string) {
	if rt.cl == nil {
		return
	}
	for _, mem := range rt.cl.members.Members() {
		if mem.Name != rt.cfg.NodeID && mem.State == cluster.StateAlive && mem.MetaErr == nil {
			rt.sendTo(mem, &messages.Finished{ExecutionId: id})
		}
	}
}

// checkLeases stops the activations of leases (this node's, whose renewal
// fell short; pids are their actors) whose lease this node no longer
// holds: another node took the execution over (after a pause longer than
// the lease, or a false suspicion of this node), or released it to do so.
// Their writes would be refused; stopping them saves the work and starts
// no step more. It returns the lost ones, or nil if the check failed.
func (rt *Runtime) checkLeases(ctx context.Context, leases []persistence.Lease, pids []*actor.PID) map[string]bool {
	lost, err := rt.backend.LostLeases(ctx, rt.cfg.NodeID, leases)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Error("checking leases", slog.Any("error", err))
		}
		return nil
	}
	out := make(map[string]bool, len(lost))
	for _, id := range lost {
		out[id] = true
	}
	for i, l := range leases {
		if out[l.ExecutionID] {
			// The activation checked (by its epoch), not a newer one.
			rt.system.Root.Send(pids[i], &leaseLost{epoch: l.Epoch})
		}
	}
	return out
}

// Addresses returns this node's cluster endpoints by kind ("remote",
// "gossip"), or nil outside a cluster.
func (rt *Runtime) Addresses() map[string]string {
	if rt.cl == nil {
		return nil
	}
	out := map[string]string{"remote": rt.cl.remote.Addr()}
	for _, m := range rt.cl.members.Members() {
		if m.Name == rt.cfg.NodeID {
			out["gossip"] = m.GossipAddr
		}
	}
	return out
}
