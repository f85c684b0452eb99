package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/codec"
)

// executorOptions are the options of an Executor.
type executorOptions struct {
	serve        bool
	queues       []string
	concurrency  int
	lease        time.Duration
	poll         time.Duration
	nodeID       string
	logger       *slog.Logger
	closeTimeout time.Duration
	notifier     persistence.Notifier
	noNotifier   bool
	ownNotifier  bool // the executor made it, and closes it

	tags              []string
	maxSignalPayload  int
	maxPendingSignals int
	maxPayload        int
	codec             codec.Codec

	cluster *cluster.Config

	tracerProvider trace.TracerProvider // WithTracerProvider; nil: the global one

	ops opsOptions // WithRetention, WithFunctions, WithNodeAddress

	test testOptions // WithClock, WithPassivateAfter, WithStubs (sdk/testing.go)

	meterProvider metric.MeterProvider // WithMeterProvider (sdk/metrics.go)
}

// ExecutorOption configures an Executor.
type ExecutorOption func(*executorOptions)

// Serve makes Bootstrap start the executor's worker, so that it runs
// executions (and recovers those left by a crash), and wait until it is ready.
func Serve() ExecutorOption { return func(o *executorOptions) { o.serve = true } }

// WithQueues names the queues the executor's worker serves. The default is
// every queue.
func WithQueues(queues ...string) ExecutorOption {
	return func(o *executorOptions) { o.queues = append([]string(nil), queues...) }
}

// WithConcurrency caps how many executions the worker takes from the
// database at once; the default is 1000. Sleeping and waiting executions do
// not count.
func WithConcurrency(n int) ExecutorOption { return func(o *executorOptions) { o.concurrency = n } }

// WithLeaseDuration sets how long this node's claim on a running execution
// lasts without renewal (default 10s). After a crash, other nodes (or the
// restarted process) take its executions over once their leases run out.
// Shorter recovers sooner; it must stay well above the time a healthy node
// may stall.
func WithLeaseDuration(d time.Duration) ExecutorOption {
	return func(o *executorOptions) { o.lease = d }
}

// WithPollInterval sets how often the worker looks for due work when no
// wake-up arrives: by default 200ms without a notifier, 1s with one.
func WithPollInterval(d time.Duration) ExecutorOption { return func(o *executorOptions) { o.poll = d } }

// WithNotifications sets the notifier that carries wake-ups between
// processes sharing the database: a process that starts work it does not run
// itself (a web handler, a client that does not serve) wakes the serving
// nodes at once, and a process waiting on a result elsewhere hears when it
// is done. On PostgreSQL the default is the backend's LISTEN/NOTIFY; with
// SQLite the default is none, and other processes find work by polling
// (WithPollInterval). Pass nil to turn notifications off. Notifications are
// hints: a lost one costs latency, never correctness. The executor does not
// close n.
func WithNotifications(n persistence.Notifier) ExecutorOption {
	return func(o *executorOptions) { o.notifier, o.noNotifier = n, n == nil }
}

// WithCluster makes the executor's node a member of a cluster (gossip
// membership, a remote endpoint, placement, takeover of lost members'
// executions): start from cluster.DefaultLocalConfig on one host, and set
// RemoteAddr, GossipPort, Seeds, SecretKey, Label and TLS. Its NodeName and
// Queues are the executor's (WithNodeID, WithQueues): give each node a
// unique WithNodeID. The node joins when the executor is made (New fails if
// it cannot), and leaves on Close. Use it on serving executors: a process
// that only starts work reaches the cluster through the database.
func WithCluster(cfg cluster.Config) ExecutorOption {
	return func(o *executorOptions) { c := cfg; o.cluster = &c }
}

// WithNodeID names this executor's node as the owner of leases (default a
// random ID).
func WithNodeID(id string) ExecutorOption { return func(o *executorOptions) { o.nodeID = id } }

// WithLogger sets the logger of the executor and its actor system (default
// slog.Default()).
func WithLogger(l *slog.Logger) ExecutorOption { return func(o *executorOptions) { o.logger = l } }

// WithCloseTimeout bounds how long Close waits for running attempts to
// reach a durable operation and stop (default 10s).
func WithCloseTimeout(d time.Duration) ExecutorOption {
	return func(o *executorOptions) { o.closeTimeout = d }
}

// DefaultMaxPayload is the largest input or output, encoded, in bytes, that
// an executor accepts unless WithMaxPayload says otherwise.
const DefaultMaxPayload = 2 << 20

// WithMaxPayload sets the largest input or output of an execution, encoded
// (JSON, before any codec), in bytes; 0 keeps DefaultMaxPayload. An input
// over it is refused with an error matching ErrPayloadTooLarge before
// anything is written; an output over it fails the execution at once,
// without retries, and is not stored. Journal values are inputs and outputs
// of children, or signal payloads (limited by WithSignalLimits).
func WithMaxPayload(n int) ExecutorOption { return func(o *executorOptions) { o.maxPayload = n } }

// WithCodec passes every payload the executor stores through c: inputs,
// outputs, journal values and snapshots, signal payloads and dead letters'
// inputs are encoded before they are written and decoded when read (see
// package persistence/codec; codec.NewAESGCM encrypts them). Every node and
// tool that reads the same database needs the codec, with the keys of what
// is stored. Payloads stored before are read as they are. Without it
// nothing is encoded and nothing is paid.
func WithCodec(c codec.Codec) ExecutorOption { return func(o *executorOptions) { o.codec = c } }

// Executor starts, runs and inspects executions on one backend.
type Executor struct {
	backend persistence.Backend
	rt      *actors.Runtime
	opts    executorOptions
	sched   *scheduler

	mu        sync.Mutex
	serving   bool
	closed    bool
	serveStop context.CancelFunc
	serveDone chan struct{}

	bg background // the node registry heartbeat and the retention sweep
}

var defaultExecutor struct {
	sync.RWMutex
	ex *Executor
}

type executorKey struct{}

// WithExecutor returns a context that binds e: calls made with it outside
// any execution start their executions on e.
func WithExecutor(ctx context.Context, e *Executor) context.Context {
	return context.WithValue(ctx, executorKey{}, e)
}

// executorFrom returns the executor bound to ctx, or the process default.
func executorFrom(ctx context.Context) *Executor {
	if e, ok := ctx.Value(executorKey{}).(*Executor); ok && e != nil {
		return e
	}
	defaultExecutor.RLock()
	defer defaultExecutor.RUnlock()
	return defaultExecutor.ex
}

// New makes an executor on b without making it the process default. The
// schema must exist (b.Init). Call Serve to run executions.
func New(b persistence.Backend, opts ...ExecutorOption) (*Executor, error) {
	if b == nil {
		return nil, errors.New("sdk: nil backend")
	}
	o := executorOptions{logger: slog.Default(), closeTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.concurrency < 0 || o.lease < 0 || o.poll < 0 {
		return nil, errors.New("sdk: negative concurrency, lease duration or poll interval")
	}
	if o.maxPayload < 0 {
		return nil, fmt.Errorf("sdk: WithMaxPayload(%d): the limit must not be negative (0 keeps the default of %d)", o.maxPayload, DefaultMaxPayload)
	}
	if o.maxPayload == 0 {
		o.maxPayload = DefaultMaxPayload
	}
	if o.closeTimeout < 0 {
		return nil, fmt.Errorf("sdk: WithCloseTimeout(%s): the timeout must not be negative", o.closeTimeout)
	}
	if o.maxSignalPayload < 0 || o.maxPendingSignals < 0 {
		return nil, fmt.Errorf("sdk: WithSignalLimits(%d, %d): the limits must not be negative (0 keeps a default)",
			o.maxSignalPayload, o.maxPendingSignals)
	}
	if o.cluster != nil && o.nodeID == "" {
		return nil, errors.New("sdk: WithCluster needs WithNodeID: each member's unique name")
	}
	if err := o.ops.validate(); err != nil {
		return nil, err
	}
	if err := o.test.validate(); err != nil {
		return nil, err
	}
	if o.lease > 0 && o.lease < 100*time.Millisecond {
		return nil, fmt.Errorf("sdk: lease duration %s is too short (100ms at least)", o.lease)
	}
	if o.notifier == nil && !o.noNotifier {
		if d, ok := b.(interface{ DefaultNotifier() persistence.Notifier }); ok {
			o.notifier, o.ownNotifier = d.DefaultNotifier(), true
		}
	}
	tags, err := actors.NormalizeTags(o.tags)
	if err != nil {
		return nil, fmt.Errorf("sdk: WithWorkerTags: %w", err)
	}
	o.tags = tags              // sorted and deduplicated, as the registry shows them
	b = codec.Wrap(b, o.codec) // b itself without a codec
	if o.poll == 0 {
		o.poll = 200 * time.Millisecond
		if o.notifier != nil {
			o.poll = time.Second
		}
	}
	rt, err := actors.New(o.test.apply(actors.Config{
		Notifier:     o.notifier,
		Backend:      b,
		Lookup:       o.ops.lookup,
		Functions:    o.ops.functionNames,
		NodeID:       o.nodeID,
		Queues:       o.queues,
		Tags:         tags,
		LeaseTTL:     o.lease,
		PollInterval: o.poll,
		Concurrency:  o.concurrency,
		MaxPayload:   o.maxPayload,
		Logger:       o.logger,
		Cluster:      o.cluster,
		// MeterProvider: nil takes the global one (sdk/metrics.go).
		MeterProvider:   o.meterProvider,
		Tracer:          o.tracer(),
		TracerRecording: o.tracerRecording(),
	}))
	if err != nil {
		if o.ownNotifier {
			err = errors.Join(err, o.notifier.Close())
		}
		return nil, err
	}
	return &Executor{backend: b, rt: rt, opts: o, sched: newScheduler()}, nil
}

// Use makes an executor on b and makes it the process default, used by
// calls whose context binds no executor. The schema must exist (b.Init).
// It panics only on invalid options, a programming error.
func Use(b persistence.Backend, opts ...ExecutorOption) *Executor {
	e, err := New(b, opts...)
	if err != nil {
		panic(err)
	}
	defaultExecutor.Lock()
	defaultExecutor.ex = e
	defaultExecutor.Unlock()
	return e
}

// Bootstrap creates or migrates the schema (b.Init), makes an executor the
// process default (Use), and, with Serve(), starts its worker in the
// background and waits until it is ready.
func Bootstrap(ctx context.Context, b persistence.Backend, opts ...ExecutorOption) (*Executor, error) {
	if b == nil {
		return nil, errors.New("sdk: nil backend")
	}
	// Building the actor system takes a while (protoactor allocates its
	// process registry up front): do it while the schema is migrated.
	type built struct {
		e   *Executor
		err error
	}
	ready := make(chan built, 1)
	go func() {
		e, err := New(b, opts...)
		ready <- built{e, err}
	}()
	initErr := b.Init(ctx)
	nb := <-ready
	if initErr != nil {
		if nb.e != nil {
			nb.e.rt.Discard()
			if nb.e.opts.ownNotifier {
				initErr = errors.Join(initErr, nb.e.opts.notifier.Close())
			}
		}
		return nil, fmt.Errorf("initialising the backend: %w", initErr)
	}
	if nb.err != nil {
		return nil, nb.err
	}
	e := nb.e
	if err := e.declareSchedules(ctx); err != nil {
		return nil, errors.Join(err, e.Close())
	}
	if e.opts.serve {
		if err := e.startServing(); err != nil {
			return nil, err
		}
		if err := e.WaitUntilReady(ctx); err != nil {
			return nil, errors.Join(err, e.Close())
		}
	}
	defaultExecutor.Lock()
	defaultExecutor.ex = e
	defaultExecutor.Unlock()
	return e, nil
}

func (e *Executor) startServing() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return persistence.ErrClosed
	}
	if e.serving {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.serving, e.serveStop, e.serveDone = true, cancel, make(chan struct{})
	go func() {
		defer close(e.serveDone)
		if err := e.rt.Serve(ctx); err != nil {
			e.opts.logger.Error("serving", slog.Any("error", err))
		}
	}()
	e.startBackground()
	e.startSchedules()
	return nil
}

// Serve runs the worker: it recovers executions left by a crash (once their
// leases run out), runs executions that fall due, and renews its leases. It
// blocks until ctx ends or Close is called. When ctx ends, Serve closes the
// executor as Close does (a worker that stops serving gives its leases back
// rather than let them lapse) and returns Close's error; after Close it
// returns nil.
func (e *Executor) Serve(ctx context.Context) error {
	if err := e.startServing(); err != nil {
		return err
	}
	e.mu.Lock()
	done := e.serveDone
	e.mu.Unlock()
	select {
	case <-ctx.Done():
		return e.Close()
	case <-done:
		return nil
	}
}

// WaitUntilReady waits until the backend answers and, when the executor
// serves (Serve() at Bootstrap, or Serve called, even just before in another
// goroutine), until its worker has made its first pass over due work.
func (e *Executor) WaitUntilReady(ctx context.Context) error {
	if _, err := e.backend.ListExecutions(ctx, persistence.ListFilter{Limit: 1}); err != nil {
		return fmt.Errorf("reaching the backend: %w", err)
	}
	// `go ex.Serve(ctx); ex.WaitUntilReady(ctx)` races: give a Serve that
	// is being started a moment to begin before concluding it is not.
	var serving bool
	var done chan struct{}
	for i := 0; ; i++ {
		e.mu.Lock()
		serving, done = e.serving, e.serveDone
		e.mu.Unlock()
		if serving || i == 50 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	if !serving {
		return nil
	}
	select {
	case <-e.rt.Ready():
		return nil
	case <-done:
		return errors.New("sdk: the worker stopped before it was ready")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the worker, gives running attempts until the close timeout to
// reach a durable operation (they are not recorded as failed, and resume on
// the next start or on another node at once, as Close releases their leases),
// and closes the backend. If e is the process default, it no longer is.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	stop := e.serveStop
	e.mu.Unlock()
	defaultExecutor.Lock()
	if defaultExecutor.ex == e {
		defaultExecutor.ex = nil
	}
	defaultExecutor.Unlock()
	e.stopSchedules()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.closeTimeout)
	defer cancel()
	err := e.rt.Stop(ctx)
	e.stopBackground()
	err = errors.Join(err, e.unregisterNode())
	if stop != nil {
		stop()
	}
	if e.opts.ownNotifier {
		err = errors.Join(err, e.opts.notifier.Close())
	}
	return errors.Join(err, e.backend.Close())
}

// NodeID returns the name this executor holds leases under.
func (e *Executor) NodeID() string { return e.rt.NodeID() }

// ActiveExecutions returns the IDs of the executions that have an actor (a
// running body) on this executor's node now. Sleeping and waiting executions
// have none.
func (e *Executor) ActiveExecutions() []string { return e.rt.Active() }

// Backend returns the executor's backend.
func (e *Executor) Backend() persistence.Backend { return e.backend }

// startRoot records a root execution and, when this executor serves its
// queue, runs it here at once.
func (e *Executor) startRoot(ctx context.Context, fn *actors.Function, input []byte, o actors.CallOptions) (string, error) {
	if err := e.rt.CheckPayload(fn.Name, "input", len(input)); err != nil {
		return "", fmt.Errorf("starting %q: %w", fn.Name, err)
	}
	queue := o.Queue
	if queue == "" {
		queue = fn.Queue
	}
	now := e.rt.Now().UTC()
	rec := &persistence.Execution{
		ID: actors.NewID(), Function: fn.Name, Queue: queue, Status: persistence.StatusPending, Input: input,
		Priority: o.Priority, Version: fn.Version, IdempotencyKey: o.IdempotencyKey, CreatedAt: now, UpdatedAt: now,
	}
	if rec.IdempotencyKey == "" && fn.Idempotent {
		rec.IdempotencyKey = fn.IdempotencyKey(input)
	}
	rec.RootID = rec.ID
	if o.MaxDuration > 0 {
		rec.Deadline = now.Add(o.MaxDuration)
	}
	if o.Delay > 0 {
		rec.RunAt = now.Add(o.Delay)
	}
	end := e.rt.StartRootSpan(ctx, rec)
	id, err := e.recordRoot(ctx, fn, rec, o)
	end(err)
	return id, err
}

// recordRoot tags and inserts rec (startRoot).
func (e *Executor) recordRoot(ctx context.Context, fn *actors.Function, rec *persistence.Execution, o actors.CallOptions) (string, error) {
	tags := fn.CallTags(o.Tags)
	if err := e.rt.TagExecution(ctx, tags, rec.ID); err != nil {
		return "", fmt.Errorf("starting %q: %w", fn.Name, err)
	}
	if ctx.Done() != nil {
		return e.insertBefore(ctx, fn, rec, o)
	}
	return e.insertRoot(ctx, fn, rec, o)
}

// insertBefore inserts rec as insertRoot does, but returns when ctx ends
// first, saying that the execution may be recorded all the same: the
// insert goes on, detached from ctx, so that it is never cut off between
// its commit and its answer, where the caller would get an error for an
// execution that is written and runs.
func (e *Executor) insertBefore(ctx context.Context, fn *actors.Function, rec *persistence.Execution, o actors.CallOptions) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("starting %q: %w (nothing was recorded)", fn.Name, context.Cause(ctx))
	}
	type result struct {
		id  string
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := e.insertRoot(context.WithoutCancel(ctx), fn, rec, o)
		done <- result{id, err}
	}()
	select {
	case r := <-done:
		return r.id, r.err
	case <-ctx.Done():
		which := "execution " + rec.ID
		if rec.IdempotencyKey != "" {
			which += fmt.Sprintf(" (or the one of idempotency key %q)", rec.IdempotencyKey)
		}
		return "", fmt.Errorf("starting %q: %w before the execution was recorded; it may be recorded and run all the same: look up %s",
			fn.Name, context.Cause(ctx), which)
	}
}

// insertRoot writes a root execution and runs it here when this executor
// serves its queue, or dispatches it.
func (e *Executor) insertRoot(ctx context.Context, fn *actors.Function, rec *persistence.Execution, o actors.CallOptions) (string, error) {
	queue := rec.Queue
	tags := fn.CallTags(o.Tags)
	if e.rt.Serving() && e.rt.Serves(queue) && e.rt.Covers(tags) && o.Delay <= 0 && e.opts.ops.runs(fn.Name) {
		got, _, err := e.rt.StartLocal(ctx, rec)
		if err != nil {
			return "", fmt.Errorf("starting %q: %w", fn.Name, err)
		}
		return got.ID, nil
	}
	got, created, err := e.backend.CreateExecution(ctx, rec)
	if err != nil {
		return "", fmt.Errorf("starting %q: %w", fn.Name, err)
	}
	if created {
		e.rt.Dispatch(got.ID, queue, fn.Name, o.Delay <= 0)
	}
	return got.ID, nil
}

// ExecutionInfo describes one execution.
type ExecutionInfo struct {
	ID       string
	Function string
	Queue    string
	Status   Status
	ParentID string
	Attempts int
	Input    json.RawMessage
	Output   json.RawMessage
	// Error is the last failure's message ("" if none).
	Error     string
	Priority  int
	Version   string
	Owner     string
	CreatedAt time.Time
	UpdatedAt time.Time

	// RootID is the root of the execution's tree (its own ID for a root).
	RootID string
	// IdempotencyKey is the key it was started with ("" if none).
	IdempotencyKey string
	// RunAt is when it may next run (a delayed start, a retry's backoff,
	// a durable timer), zero when not scheduled; Deadline ends the whole
	// execution (WithMaxDuration), zero when none.
	RunAt    time.Time
	Deadline time.Time
	// EndedAt is when it reached a terminal status (zero before).
	EndedAt time.Time
	// CancelRequested is set once Cancel was called and the execution has
	// not ended yet.
	CancelRequested bool
	// Failure is the last failure in full (nil if none): its message,
	// kind and stack.
	Failure *ErrorDetail
	// WaitingOn says what a waiting or running execution waits for now,
	// read from its journal by Execution (List leaves it empty): "signal
	// NAME", "timer until TIME", "child ID (FUNCTION)", or "retry at
	// TIME" for a retry's backoff.
	WaitingOn string
	// CachedFrom is the ID of the execution whose cached result this one
	// returned (WithCache), or "" when it ran its body.
	CachedFrom string
	// Counters are the counters of the execution's tree (Counter), shared
	// by the root and all its descendants; State is the execution's own
	// state (SetState), each value a JSON document. Execution fills them
	// in; List leaves them nil.
	Counters map[string]float64
	State    map[string]json.RawMessage
	// JournalOnly is set for a step recorded only as its outcome in its
	// parent's journal (see Execution): it has no row of its own, so no
	// journal, children, queue or owner.
	JournalOnly bool
}

// ErrorDetail is a recorded failure: Kind is one of "error", "panic",
// "timeout", "canceled", "nondeterministic", "decode", "unknown_function".
type ErrorDetail struct {
	Message      string
	Kind         string
	NonRetryable bool
	Stack        string
}

// shown is a stored payload as ExecutionInfo and DeadLetter show it: an
// encrypted one that this executor could not decode (no codec, or not its
// key) is the JSON string "encrypted (key ID)", so that they stay JSON.
func shown(b []byte) json.RawMessage { return codec.ForDisplay(nil, b) }

func infoOf(r *persistence.Execution) ExecutionInfo {
	i := ExecutionInfo{
		ID: r.ID, Function: r.Function, Queue: r.Queue, Status: r.Status, ParentID: r.ParentID,
		Attempts: r.Attempts, Input: shown(r.Input), Output: shown(r.Output),
		Priority: r.Priority, Version: r.Version, Owner: r.Owner, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}
	if r.Error != nil {
		i.Error = r.Error.Message
	}
	i.RootID, i.IdempotencyKey, i.RunAt, i.Deadline = r.RootID, r.IdempotencyKey, r.RunAt, r.Deadline
	i.CancelRequested = r.CancelRequested && !r.Status.Terminal()
	if r.Status.Terminal() {
		i.EndedAt = r.UpdatedAt
	}
	if r.Status == StatusRunning || (r.Status == StatusWaiting && r.Error == nil) {
		// The attempt under way (or passivated on a timer or a signal)
		// counts; a waiting execution with an error waits to retry.
		i.Attempts = r.Attempts + 1
	}
	if r.Error != nil {
		i.Failure = &ErrorDetail{Message: r.Error.Message, Kind: string(r.Error.Kind),
			NonRetryable: r.Error.NonRetryable, Stack: r.Error.Stack}
	}
	return i
}

// Execution returns one execution, or an error matching ErrNotFound. A step
// that completed at its first attempt without durable operations of its own
// is recorded only as its outcome in its parent's journal; Execution finds
// it there, with JournalOnly set: its input, times and attempts as that
// entry records them (a step recorded by a version of Stent that did not
// keep them has only its output and status).
func (e *Executor) Execution(ctx context.Context, id string) (ExecutionInfo, error) {
	r, err := e.backend.GetExecution(ctx, id)
	if err == nil {
		info := infoOf(r)
		if !r.Status.Terminal() {
			entries, jerr := e.Journal(ctx, id)
			if jerr != nil {
				return ExecutionInfo{}, jerr
			}
			info.WaitingOn = waitingOn(info, entries)
		}
		return e.withProgress(ctx, info, r.RootID)
	}
	if !errors.Is(err, persistence.ErrNotFound) {
		return ExecutionInfo{}, fmt.Errorf("reading execution %q: %w", id, err)
	}
	if parent, pos, ok := actors.SplitChildID(id); ok {
		entries, jerr := e.backend.JournalEntries(ctx, parent)
		if jerr != nil {
			return ExecutionInfo{}, fmt.Errorf("reading execution %q: %w", id, jerr)
		}
		for _, ent := range entries {
			if ent.Position == pos && ent.ChildID == id && ent.Done {
				return e.stepWithProgress(ctx, stepInfo(parent, ent))
			}
		}
	}
	return ExecutionInfo{}, fmt.Errorf("execution %q: %w", id, ErrNotFound)
}

// stepInfo describes a step recorded only in its parent's journal, from
// its entry as JournalEntries reads it. An entry whose writer recorded the
// step (Attempts set) gives its input and times; an older one has only the
// outcome, and times that are its write's, not the step's: they are left
// out.
func stepInfo(parent string, ent *persistence.JournalEntry) ExecutionInfo {
	info := ExecutionInfo{ID: ent.ChildID, Function: ent.Name, Status: StatusCompleted, ParentID: parent,
		Attempts: 1, Output: shown(ent.Output), JournalOnly: true}
	if ent.Error != nil {
		info.Status, info.Error = StatusFailed, ent.Error.Message
		info.Failure = &ErrorDetail{Message: ent.Error.Message, Kind: string(ent.Error.Kind),
			NonRetryable: ent.Error.NonRetryable, Stack: ent.Error.Stack}
	}
	if ent.Attempts > 0 {
		info.Attempts, info.Input = ent.Attempts, shown(ent.Input)
		info.CreatedAt, info.UpdatedAt, info.EndedAt = ent.StartedAt, ent.EndedAt, ent.EndedAt
	}
	return info
}

// ListFilter selects executions for List and ListPage. Zero fields select
// everything.
type ListFilter struct {
	Status   Status
	Function string
	ParentID string
	Queue    string
	// Since and Until bound the creation time: Since <= CreatedAt < Until.
	Since, Until time.Time
	// After is the cursor of a page (Page.Next from ListPage): the list
	// starts after the last execution of the page before.
	After string
	// Limit caps the executions returned; 0 means 100.
	Limit int
}

// List returns executions matching f, newest first. With f.ParentID, the
// steps recorded only in the parent's journal (see Execution) follow the
// children that have a row, in the order the parent started them.
func (e *Executor) List(ctx context.Context, f ListFilter) ([]ExecutionInfo, error) {
	pf, err := f.backendFilter()
	if err != nil {
		return nil, err
	}
	rs, err := e.backend.ListExecutions(ctx, pf)
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", err)
	}
	out := make([]ExecutionInfo, len(rs))
	seen := make(map[string]bool, len(rs))
	for i, r := range rs {
		out[i] = infoOf(r)
		seen[r.ID] = true
	}
	if f.ParentID == "" || (f.Status != "" && f.Status != StatusCompleted) {
		return out, nil
	}
	// Steps recorded only in the parent's journal (see Execution).
	entries, err := e.backend.JournalEntries(ctx, f.ParentID)
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	for _, ent := range entries {
		if len(out) >= limit {
			break
		}
		if ent.Kind != persistence.EntryCall || !ent.Done || ent.Error != nil || ent.ChildID == "" || seen[ent.ChildID] {
			continue
		}
		if f.Function != "" && ent.Name != f.Function {
			continue
		}
		info := stepInfo(f.ParentID, ent)
		if c := info.CreatedAt; !c.IsZero() && (c.Before(f.Since) || (!f.Until.IsZero() && !c.Before(f.Until))) {
			continue // outside Since and Until (a step whose times are not recorded is kept)
		}
		out = append(out, info)
	}
	return out, nil
}

// DeadLetter is an execution that failed for good: its retries ran out or
// its error was not retryable.
type DeadLetter struct {
	ID          string
	ExecutionID string
	Function    string
	Input       json.RawMessage
	Error       string
	Attempts    int
	CreatedAt   time.Time
}

// DeadLetters returns the dead-letter queue, oldest first (at most 1000).
func (e *Executor) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	ds, err := e.backend.ListDeadLetters(ctx, 1000)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	out := make([]DeadLetter, len(ds))
	for i, d := range ds {
		out[i] = DeadLetter{ID: d.ID, ExecutionID: d.ExecutionID, Function: d.Function, Input: shown(d.Input),
			Attempts: d.Attempts, CreatedAt: d.CreatedAt}
		if d.Error != nil {
			out[i].Error = d.Error.Message
		}
	}
	return out, nil
}

// ReplayDeadLetter runs a dead-lettered execution again from a fresh attempt
// count, keeping the outcomes its journal recorded. Replaying a child's dead
// letter also resumes the parent that waits on it. id is a dead letter's ID
// or the ID of an execution that has a dead letter (its newest is
// replayed). It returns an error matching ErrNotFound, saying which, when id
// is neither, or names an execution without a dead letter.
func (e *Executor) ReplayDeadLetter(ctx context.Context, id string) error {
	dl, err := e.resolveDeadLetter(ctx, id)
	if err != nil {
		return fmt.Errorf("replaying dead letter: %w", err)
	}
	if _, err := e.backend.ReplayDeadLetter(ctx, dl); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("dead letter %q: %w (ReplayDeadLetter takes a dead letter's ID, DeadLetter.ID from DeadLetters)", id, ErrNotFound)
		}
		return fmt.Errorf("replaying dead letter %q: %w", id, err)
	}
	e.rt.Kick()
	return nil
}

// DiscardDeadLetter removes a dead letter; its execution stays failed. id
// is a dead letter's ID or the ID of an execution that has one (its newest
// goes). It returns an error matching ErrNotFound for an unknown dead
// letter.
func (e *Executor) DiscardDeadLetter(ctx context.Context, id string) error {
	dl, err := e.resolveDeadLetter(ctx, id)
	if err != nil {
		return fmt.Errorf("discarding dead letter: %w", err)
	}
	if err := e.backend.DeleteDeadLetter(ctx, dl); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return fmt.Errorf("dead letter %q: %w", id, ErrNotFound)
		}
		return fmt.Errorf("discarding dead letter %q: %w", id, err)
	}
	return nil
}
