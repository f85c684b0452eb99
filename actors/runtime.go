package actors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/internal/retry"
	"github.com/stent-go/stent/persistence"
)

// Function is a registered durable function, type-erased: JSON in, JSON out.
type Function struct {
	Name    string
	Queue   string
	Retry   retry.Policy
	Timeout time.Duration
	Version string
	// MaxConcurrent, when > 0, caps how many executions of the function run
	// at once across the cluster (permits in the database).
	MaxConcurrent int
	// Idempotent makes the hash of the input the idempotency key of every
	// execution of the function (IdempotencyKey).
	Idempotent bool
	// Tags, sorted, are the tags a node must have to run the function.
	Tags []string
	// CacheTTL, when > 0, reuses a completed result of the function with
	// the same version and input for that long (CacheKey).
	CacheTTL time.Duration
	// Run runs one attempt of the body.
	Run func(ctx context.Context, input []byte) ([]byte, error)
}

// Config configures a Runtime. Zero fields take the defaults noted.
type Config struct {
	Backend persistence.Backend
	// Lookup finds a registered function by name.
	Lookup func(name string) (*Function, bool)
	// Functions, when set, returns the names of the functions this node
	// runs: it claims executions of those only. Nil claims every function.
	Functions func() []string
	// NodeID names this node as the owner of leases; default a random ID.
	NodeID string
	// Queues served; empty serves every queue.
	Queues []string
	// Tags this node has, sorted: it runs only executions whose every tag
	// is one of them (NormalizeTags).
	Tags []string
	// LeaseTTL is how long a lease lasts without renewal; default 10s.
	// Leases are renewed every LeaseTTL/3.
	LeaseTTL time.Duration
	// PollInterval bounds how long due work can wait unnoticed when no
	// wake-up arrives; default 500ms.
	PollInterval time.Duration
	// SnapshotEvery is the number of journal entries between snapshots;
	// default 64.
	SnapshotEvery int
	// Concurrency caps the executions this node claims from the database at
	// once; default 1000. Executions started by this node run regardless.
	Concurrency int
	// PassivateAfter is the shortest sleep that passivates; default 1s.
	PassivateAfter time.Duration
	// MaxPayload, when positive, is the largest input or output, encoded,
	// in bytes: a child's input over it is refused before anything is
	// written, and an output over it fails the execution (not retried).
	MaxPayload int
	// Notifier, when set, carries wake-ups between processes: this node
	// publishes work it cannot run itself and the roots it finishes, and
	// listens for work in its queues and for finished executions it waits
	// on. Without one, other processes find the work by polling.
	Notifier persistence.Notifier
	// Cluster, when set, makes the node a member of a cluster: New starts
	// its remote endpoint on Cluster.RemoteAddr and joins the gossip
	// through Cluster.Seeds. NodeName and Queues are taken from NodeID and
	// Queues. Only a node that serves should join.
	Cluster *cluster.Config
	Logger  *slog.Logger
	// Clock, when set, is the clock of durable sleeps, signal-wait
	// timeouts, retry backoff, delayed starts and deadlines (actors/clock.go);
	// nil is the host's. Tests set it (sdk/stenttest).
	Clock Clock
	// MeterProvider makes the runtime's instruments (metrics.go); nil
	// takes the global provider, a no-op until one is set.
	MeterProvider metric.MeterProvider
	// Tracer, when set, records a span per attempt and per durable
	// operation (trace.go); nil records none.
	Tracer trace.Tracer
	// TracerRecording, when set, reports whether Tracer records spans at
	// the moment (a global provider the program may set later); when it
	// says no, the runtime starts no span.
	TracerRecording func() bool
}

// Outcome is the terminal state of an execution.
type Outcome struct {
	Status   persistence.Status
	Output   []byte
	Error    *persistence.ErrorInfo
	Function string
	Attempts int
}

// Runtime runs executions on one node.
type Runtime struct {
	cfg     Config
	backend persistence.Backend
	log     *slog.Logger
	system  *actor.ActorSystem
	sup     *actor.PID
	// incarnations numbers the execution actors' incarnations (incMsg).
	incarnations atomic.Uint64
	// workers runs the execution actors' mailboxes, their attempts and
	// their writes.
	workers *workers
	// strategy supervises every execution actor (restartStrategy).
	strategy actor.SupervisorStrategy
	// deadLetters is the subscription of watchDeadLetters.
	deadLetters *eventstream.Subscription
	routers     *actor.PID

	baseCtx    context.Context
	baseCancel context.CancelFunc

	// mu guards the node's directory and bookkeeping below, never an
	// execution's state (each execution actor owns its own).
	mu       sync.Mutex
	active   map[string]*activation
	waiters  map[string][]chan *Outcome
	serving  bool
	stopping bool // Drain (or Stop) has begun
	stopped  bool // Stop has begun
	runners  sync.WaitGroup

	kick  chan struct{}
	ready chan struct{}
	done  chan struct{}

	// pub queues notifications for the publisher goroutine.
	pub     chan persistence.Notification
	pubDone chan struct{}

	// cl is the node's part in a cluster, or nil.
	cl *clusterNode
	// tr makes the spans of attempts and operations.
	tr *tracing
	// permitWaits are this node's executions waiting for a permit from a
	// router in the cluster, by function and holder (under mu).
	permitWaits map[string]*permitWait
	// permitsHeld are the permits this node's executions hold from a
	// router in the cluster (under mu), so that a repeated grant is not
	// mistaken for one nobody waits for.
	permitsHeld map[string]bool
	// permitsInUse are the permits of this node's attempts not yet given
	// back, by holder (under mu): renewed while a body runs on one, after
	// its actor has stopped too.
	permitsInUse map[string]*heldPermit
	// waits tracks attempts and their waits under a test clock (clock.go).
	waits *waitTracker
	// metrics are the runtime's instruments.
	metrics *metrics
}

// New builds a runtime. It starts the actor system but claims no work until
// Serve runs.
func New(cfg Config) (*Runtime, error) {
	if cfg.Backend == nil {
		return nil, errors.New("actors: Config.Backend is nil")
	}
	if cfg.Lookup == nil {
		return nil, errors.New("actors: Config.Lookup is nil")
	}
	if cfg.NodeID == "" {
		cfg.NodeID = "node-" + NewID()[20:] // 12 random digits
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = 64
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1000
	}
	if cfg.PassivateAfter <= 0 {
		cfg.PassivateAfter = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rt := &Runtime{
		cfg:     cfg,
		backend: cfg.Backend,
		log:     cfg.Logger.With(slog.String("node", cfg.NodeID)),
		active:  make(map[string]*activation),
		waiters: make(map[string][]chan *Outcome),
		kick:    make(chan struct{}, 1),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		tr:      newTracing(cfg.Tracer, cfg.TracerRecording, cfg.NodeID),
		workers: newWorkers(),
	}
	rt.baseCtx, rt.baseCancel = context.WithCancel(context.Background())
	rt.waits = newWaitTracker(cfg.Clock)
	// protoactor logs routine events (system started, dead letters during a
	// hand-over) at INFO and some at ERROR; keep only its warnings and worse.
	actorLog := slog.New(&minLevel{Handler: rt.log.Handler(), min: slog.LevelWarn}).With(slog.String("component", "protoactor"))
	rt.system = newActorSystem(actorLog)
	if cfg.Notifier != nil {
		if err := rt.startNotifications(); err != nil {
			rt.system.Shutdown()
			rt.baseCancel()
			return nil, err
		}
	}
	m, err := newMetrics(rt, cfg.MeterProvider)
	if err != nil {
		rt.system.Shutdown()
		rt.baseCancel()
		return nil, fmt.Errorf("making the metrics: %w", err)
	}
	rt.metrics = m
	rt.strategy = &restartStrategy{rt: rt}
	rt.watchDeadLetters()
	sup, err := rt.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &supervisor{rt: rt} },
		actor.WithSupervisor(rt.strategy)), "executions")
	if err != nil {
		return nil, fmt.Errorf("spawning the executions supervisor: %w", err)
	}
	rt.sup = sup
	rt.routers, err = rt.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &routers{rt: rt, pid: make(map[string]*actor.PID)}
	}), routersActor)
	if err != nil {
		return nil, fmt.Errorf("spawning the routers actor: %w", err)
	}
	if cfg.Cluster != nil {
		if err := rt.joinCluster(*cfg.Cluster); err != nil {
			rt.Discard()
			return nil, err
		}
	}
	return rt, nil
}

// routersActor is the name of each node's parent of router actors, which
// the other members send permit messages to.
const routersActor = "routers"

// NodeID returns the name this node holds leases under.
func (rt *Runtime) NodeID() string { return rt.cfg.NodeID }

// Backend returns the backend the runtime writes to.
func (rt *Runtime) Backend() persistence.Backend { return rt.backend }

// Serving reports whether Serve is running.
func (rt *Runtime) Serving() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.serving && !rt.stopping
}

// Serves reports whether this node runs executions of queue.
func (rt *Runtime) Serves(queue string) bool {
	if len(rt.cfg.Queues) == 0 {
		return true
	}
	for _, q := range rt.cfg.Queues {
		if q == queue {
			return true
		}
	}
	return false
}

// LeaseTTL returns the lease duration.
func (rt *Runtime) LeaseTTL() time.Duration { return rt.cfg.LeaseTTL }

// Ready is closed once Serve has recovered due work for the first time.
func (rt *Runtime) Ready() <-chan struct{} { return rt.ready }

// Serve claims and runs due executions until ctx ends or Stop is called:
// first the executions whose lease expired (recovery after a crash), then
// whatever falls due. It renews this node's leases every LeaseTTL/3.
func (rt *Runtime) Serve(ctx context.Context) error {
	rt.mu.Lock()
	if rt.serving {
		rt.mu.Unlock()
		return errors.New("actors: Serve called twice")
	}
	if rt.stopping {
		rt.mu.Unlock()
		return persistence.ErrClosed
	}
	rt.serving = true
	rt.mu.Unlock()
	defer close(rt.done)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-rt.baseCtx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()

	renewDone := make(chan struct{}, 2)
	go func() {
		defer func() { renewDone <- struct{}{} }()
		rt.renewLoop(ctx)
	}()
	go func() {
		defer func() { renewDone <- struct{}{} }()
		rt.renewPermitsLoop(ctx)
	}()
	defer func() { <-renewDone; <-renewDone }()

	// A node restarted under the same ID takes back at once the executions
	// its previous incarnation held, instead of waiting for their leases to
	// run out. (Node IDs must be unique among live nodes.)
	if err := rt.backend.ReleaseLeases(ctx, rt.cfg.NodeID); err != nil && ctx.Err() == nil {
		rt.log.Error("releasing the leases of an earlier run of this node", slog.Any("error", err))
	}
	first := true
	for {
		n, err := rt.claim(ctx)
		if first {
			if err == nil {
				close(rt.ready)
				first = false
			} else if ctx.Err() == nil {
				rt.log.Error("claiming due executions", slog.Any("error", err))
			}
		} else if err != nil && ctx.Err() == nil {
			rt.log.Error("claiming due executions", slog.Any("error", err))
		}
		if ctx.Err() != nil {
			return nil
		}
		if n > 0 && err == nil {
			continue // a full batch: there may be more
		}
		wait := rt.cfg.PollInterval
		if err == nil {
			if next, nerr := rt.backend.NextRunAtTagged(ctx, rt.cfg.Queues, rt.cfg.Tags); nerr == nil && !next.IsZero() {
				if d := rt.until(next); d < wait {
					wait = max(d, time.Millisecond)
				}
			}
		}
		tc, stop := rt.newTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-rt.kick:
		case <-tc:
		}
		stop()
	}
}

// claim leases a batch of due executions and activates them. It returns how
// many were claimed when the batch was full (so the caller loops at once).
func (rt *Runtime) claim(ctx context.Context) (int, error) {
	rt.mu.Lock()
	free := rt.cfg.Concurrency - len(rt.active)
	rt.mu.Unlock()
	if free <= 0 {
		return 0, nil
	}
	limit := min(free, 256)
	sent := time.Now()
	var fns []string
	if rt.cfg.Functions != nil {
		fns = rt.cfg.Functions()
		if fns == nil {
			fns = []string{}
		}
	}
	recs, err := rt.backend.ClaimDueTagged(ctx, rt.cfg.NodeID, rt.cfg.Queues, fns, rt.cfg.Tags, rt.cfg.LeaseTTL, limit)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		rt.system.Root.Send(rt.sup, &activate{rec: r, leasedAt: sent})
	}
	if len(recs) == limit {
		return len(recs), nil
	}
	return 0, nil
}

func (rt *Runtime) renewLoop(ctx context.Context) {
	t := time.NewTicker(rt.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Only the executions running here: a lease this node holds
			// without running the execution (a claim whose answer was
			// lost with a connection) runs out and is claimed again.
			leases, pids := rt.leased()
			active := make([]string, len(leases))
			for i, l := range leases {
				active[i] = l.ExecutionID
			}
			start := time.Now()
			n, err := rt.backend.RenewLeases(ctx, rt.cfg.NodeID, active, rt.cfg.LeaseTTL)
			if err != nil && ctx.Err() == nil {
				rt.log.Error("renewing leases", slog.Any("error", err))
			}
			if err == nil {
				var lost map[string]bool
				if n < len(active) {
					// Some were not renewed: executions that just ended,
					// or leases taken over.
					lost = rt.checkLeases(ctx, leases, pids)
				}
				if lost != nil || n == len(active) {
					for i, l := range leases {
						if !lost[l.ExecutionID] {
							rt.system.Root.Send(pids[i], &leaseConfirmed{epoch: l.Epoch, at: start})
						}
					}
				}
			}
			rt.checkCancels(ctx, active) // cancels requested by other processes
		}
	}
}

// renewPermitsLoop renews the permits of the executions running here, on
// a loop of its own: a body runs on its permit, which nothing fences, so
// its renewals wait for no lease query or cancel check that a slow
// database holds up. Not every permit under this node's name (an earlier
// process of the same name may have left some behind when it was killed):
// those of every activation, with a lease of its own or not, since a child
// in memory (its parent's lease covers it) holds its permit as long as any
// other.
func (rt *Runtime) renewPermitsLoop(ctx context.Context) {
	t := time.NewTicker(rt.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := rt.backend.RenewPermits(ctx, rt.cfg.NodeID, rt.permitHolders(), rt.cfg.LeaseTTL); err != nil && ctx.Err() == nil {
				rt.log.Error("renewing permits", slog.Any("error", err))
			}
		}
	}
}

// Kick makes the serve loop look for due work now.
func (rt *Runtime) Kick() {
	select {
	case rt.kick <- struct{}{}:
	default:
	}
}

// kickAt makes the serve loop look for due work after d.
func (rt *Runtime) kickAt(d time.Duration) {
	if d > 10*time.Minute {
		return // the poll's NextRunAt finds it
	}
	rt.afterFunc(d, rt.Kick)
}

// activate runs an execution this node holds the lease of. fresh means the
// execution was just created here: it has no journal to load.
func (rt *Runtime) activate(rec *persistence.Execution, fresh bool) {
	rt.system.Root.Send(rt.sup, &activate{rec: rec, fresh: fresh})
}

// CheckPayload returns an error wrapping ErrPayloadTooLarge when n bytes
// of what (an "input" or "output" of function fn) are over the node's
// MaxPayload.
func (rt *Runtime) CheckPayload(fn, what string, n int) error {
	if limit := rt.cfg.MaxPayload; limit > 0 && n > limit {
		return fmt.Errorf("%s of %q is %d bytes, over the limit of %d (raise it with WithMaxPayload, or store large data elsewhere and pass a reference): %w",
			what, fn, n, limit, ErrPayloadTooLarge)
	}
	return nil
}

// StartLocal creates a root execution leased by this node and runs it here
// at once. The record must have Owner, Epoch and LeaseExpiresAt unset; it
// returns the stored execution and whether it was created.
func (rt *Runtime) StartLocal(ctx context.Context, rec *persistence.Execution) (*persistence.Execution, bool, error) {
	rec.Owner = rt.cfg.NodeID
	rec.Epoch = 1
	rec.Status = persistence.StatusRunning
	// The lease counts from the backend's clock when the row is inserted,
	// never this node's: a slow insert (a lock, an outage) or a clock
	// behind the database's would store a lease already expired, and
	// another claim would run the first step again.
	rec.LeaseExpiresAt, rec.LeaseTTL = time.Time{}, rt.cfg.LeaseTTL
	sent := time.Now()
	got, created, err := rt.backend.CreateExecution(ctx, rec)
	if err != nil {
		return nil, false, err
	}
	if created {
		// Held since the insert was sent, as far as this node knows: an
		// insert slower than half a lease makes the first step check it.
		rt.system.Root.Send(rt.sup, &activate{rec: got, fresh: true, leasedAt: sent})
	}
	return got, created, nil
}

// Await waits for execution id to reach a terminal status and returns its
// outcome. It listens for a local finish and polls the database as a
// fallback (for executions that run on other nodes).
func (rt *Runtime) Await(ctx context.Context, id string) (*Outcome, error) {
	ch := make(chan *Outcome, 1)
	rt.mu.Lock()
	rt.waiters[id] = append(rt.waiters[id], ch)
	rt.mu.Unlock()
	defer func() { rt.removeWaiter(id, ch) }()
	backoff := 2 * time.Millisecond
	for {
		rec, err := rt.backend.GetExecution(ctx, id)
		if err != nil {
			if errors.Is(err, persistence.ErrNotFound) {
				return nil, fmt.Errorf("awaiting %s: %w", id, ErrNotFound)
			}
			if errors.Is(err, persistence.ErrClosed) {
				// The executor was closed under the caller: waiting on
				// would never end. The execution goes on elsewhere.
				return nil, fmt.Errorf("awaiting %s: %w", id, err)
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			rt.log.Warn("polling an execution", slog.String("execution_id", id), slog.Any("error", err))
		} else if rec.Status.Terminal() {
			return &Outcome{Status: rec.Status, Output: rec.Output, Error: rec.Error, Function: rec.Function, Attempts: rec.Attempts}, nil
		}
		t := time.NewTimer(backoff)
		select {
		case o := <-ch:
			t.Stop()
			if o == nil { // a notification that it finished elsewhere: read it now
				backoff = 2 * time.Millisecond
				ch = rt.rewait(id, ch)
				continue
			}
			return o, nil
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, 250*time.Millisecond)
	}
}

func (rt *Runtime) removeWaiter(id string, ch chan *Outcome) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ws := rt.waiters[id]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(rt.waiters, id)
	} else {
		rt.waiters[id] = ws
	}
}

// rewait registers a fresh waiter channel for id in place of old.
func (rt *Runtime) rewait(id string, old chan *Outcome) chan *Outcome {
	rt.removeWaiter(id, old)
	ch := make(chan *Outcome, 1)
	rt.mu.Lock()
	rt.waiters[id] = append(rt.waiters[id], ch)
	rt.mu.Unlock()
	return ch
}

// poke tells local waiters of id to read it again.
func (rt *Runtime) poke(id string) {
	rt.mu.Lock()
	ws := append([]chan *Outcome(nil), rt.waiters[id]...)
	rt.mu.Unlock()
	for _, w := range ws {
		select {
		case w <- nil:
		default:
		}
	}
}

// finished hands an outcome to local waiters.
func (rt *Runtime) finished(id string, o *Outcome) {
	rt.mu.Lock()
	ws := rt.waiters[id]
	delete(rt.waiters, id)
	rt.mu.Unlock()
	for _, w := range ws {
		select {
		case w <- o:
		default:
		}
	}
}

// Active returns the IDs of the executions with an actor on this node.
func (rt *Runtime) Active() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ids := make([]string, 0, len(rt.active))
	for id := range rt.active {
		ids = append(ids, id)
	}
	return ids
}

// permitHolders returns the executions whose permits this node renews:
// those active here, and those whose body still runs on a permit after
// their actor stopped.
func (rt *Runtime) permitHolders() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	ids := make([]string, 0, len(rt.active)+len(rt.permitsInUse))
	for id := range rt.active {
		ids = append(ids, id)
	}
	for id := range rt.permitsInUse {
		if rt.active[id] == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// isStopping reports whether Stop has begun.
func (rt *Runtime) isStopping() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.stopping
}

// Stop stops claiming work, abandons running attempts at their next durable
// operation (they are not recorded as failed), waits for them up to ctx's
// deadline, gives up this node's leases so another node can take the
// executions at once, and stops the actor system.
func (rt *Runtime) Stop(ctx context.Context) error {
	rt.mu.Lock()
	if rt.stopped {
		rt.mu.Unlock()
		return nil
	}
	rt.stopped = true
	rt.mu.Unlock()
	err := rt.Drain(ctx)
	if rt.pubDone != nil {
		<-rt.pubDone
	}
	rt.system.Root.Stop(rt.sup)
	rt.system.Root.Stop(rt.routers)
	rt.system.Shutdown()
	rt.workers.stop()
	rt.metrics.unregister()
	return err
}

// Drain is the first half of Stop: it leaves the cluster, stops claiming
// work, abandons running attempts at their next durable operation, waits for
// them up to ctx's deadline and gives up this node's leases, so another
// node can take the executions at once. The actor system keeps running
// (Stop ends it). A second Drain returns nil at once.
func (rt *Runtime) Drain(ctx context.Context) error {
	rt.mu.Lock()
	if rt.stopping {
		rt.mu.Unlock()
		return nil
	}
	rt.stopping = true
	serving := rt.serving
	rt.mu.Unlock()
	// Leave first, so that the others stop placing work here and take
	// over at once rather than after failure detection.
	leaveErr := rt.leaveCluster()
	rt.baseCancel()
	if serving {
		<-rt.done
	}
	waited := make(chan struct{})
	go func() {
		rt.runners.Wait()
		close(waited)
	}()
	err := leaveErr
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("stopping node %s: executions still running: %w", rt.cfg.NodeID, ctx.Err())
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rerr := rt.backend.ReleaseLeases(rctx, rt.cfg.NodeID); rerr != nil && !errors.Is(rerr, persistence.ErrClosed) {
		err = errors.Join(err, fmt.Errorf("releasing leases of %s: %w", rt.cfg.NodeID, rerr))
	}
	return err
}

// Discard stops the actor system of a runtime that never served, leaving
// the backend open.
func (rt *Runtime) Discard() {
	rt.mu.Lock()
	rt.stopping = true
	rt.mu.Unlock()
	if err := rt.leaveCluster(); err != nil {
		rt.log.Warn("leaving the cluster", slog.Any("error", err))
	}
	rt.baseCancel()
	rt.system.Root.Stop(rt.sup)
	rt.system.Shutdown()
	rt.workers.stop()
	rt.metrics.unregister()
}

// IdempotencyKey returns the key under which an execution of fn with input
// is unique when fn is Idempotent.
func (fn *Function) IdempotencyKey(input []byte) string {
	h := sha256.Sum256(input)
	return "idempotent:" + fn.Name + "@" + fn.Version + ":" + hex.EncodeToString(h[:])
}

// NewID returns a new execution or dead-letter ID: 32 hex digits, of
// which the first 12 are the time (so that IDs sort by creation, to the
// millisecond) and the other 20 random.
func NewID() string {
	var b [16]byte
	// The first 6 bytes are the time in milliseconds, big-endian: IDs made
	// one after the other sort together, and a new row lands beside the
	// last one in the primary key's b-tree instead of on a random page
	// (fewer pages written per commit). The other 10 are random.
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("reading random bytes: %v", err)) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h *minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h *minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h *minLevel) WithGroup(name string) slog.Handler {
	return &minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}

// leaveForAnotherNode releases the lease of an execution this node cannot
// run (its function is not registered here), so that a node that has the
// function claims it.
func (rt *Runtime) leaveForAnotherNode(ctx context.Context, rec *persistence.Execution, epoch int64) {
	errs, err := rt.backend.Apply(ctx, []*persistence.Commit{{ExecutionID: rec.ID, Epoch: epoch,
		Update: &persistence.Update{Release: true}}})
	if err == nil && len(errs) == 1 {
		err = errs[0]
	}
	if err != nil && !errors.Is(err, persistence.ErrStaleEpoch) && ctx.Err() == nil {
		rt.log.Error("releasing an execution of a function this node does not have", slog.String("execution_id", rec.ID),
			slog.String("function", rec.Function), slog.Any("error", err))
		return
	}
	rt.log.Info("execution left for a node that has its function", slog.String("execution_id", rec.ID),
		slog.String("function", rec.Function))
}
