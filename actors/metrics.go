package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/stent-go/stent/persistence"
)

// The names of the instruments a Runtime records (docs/observability.md,
// "Metrics", describes each). A Prometheus exporter turns the dots into
// underscores, adds the unit ("_seconds") and "_total" to counters.
const (
	MetricExecutionsStarted   = "stent.executions.started"
	MetricExecutionsCompleted = "stent.executions.completed"
	MetricExecutionsFailed    = "stent.executions.failed"
	MetricExecutionsRetried   = "stent.executions.retried"
	MetricExecutionsCanceled  = "stent.executions.canceled"
	MetricExecutionsTimedOut  = "stent.executions.timed_out"
	MetricExecutionsRunning   = "stent.executions.running"
	MetricExecutionsWaiting   = "stent.executions.waiting"
	MetricExecutionDuration   = "stent.execution.duration"
	MetricStepDuration        = "stent.step.duration"
	MetricQueueDepth          = "stent.queue.depth"
	MetricQueueOldestPending  = "stent.queue.oldest_pending_age"
	MetricPermitsInUse        = "stent.permits.in_use"
	MetricPermitsWaiting      = "stent.permits.waiting"
	MetricActivations         = "stent.node.activations"
	MetricLeasesHeld          = "stent.leases.held"
	MetricLeasesLost          = "stent.leases.lost"
	MetricLeasesTakenOver     = "stent.leases.taken_over"
	MetricDeadLetters         = "stent.dead_letters"
	// MetricCommitDuration follows the OpenTelemetry semantic conventions
	// for database clients, with db.operation.name "commit".
	MetricCommitDuration  = "db.client.operation.duration"
	MetricCommitBatchSize = "stent.db.commit.batch_size"
	MetricClusterMembers  = "stent.cluster.members"
)

// The attributes of the instruments.
const (
	AttrStatus       = "stent.status"
	AttrMemberState  = "stent.member.state"
	AttrDBSystem     = "db.system.name"
	AttrDBOperation  = "db.operation.name"
	AttrCommitFailed = "error.type"
)

// statsMaxAge is how long a scrape reuses the counts of the last
// Backend.Stats: a dashboard that scrapes often (or several scrapers)
// costs the database one Stats query a second at most.
const statsMaxAge = time.Second

// durationBuckets are the boundaries, in seconds, of the latency
// histograms: from a step of a millisecond to a workflow of hours.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400}

// commitBuckets are the boundaries, in seconds, of the commit latency.
var commitBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// batchBuckets are the boundaries of the commit batch size.
var batchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}

// metrics holds a Runtime's instruments. Its methods are called from the
// actors' message handlers and the attempts' goroutines; the instruments
// are safe for concurrent use. With a no-op meter provider every method
// returns after one Enabled check, building no attributes.
type metrics struct {
	rt *Runtime

	started, completed, failed, retried, canceled, timedOut metric.Int64Counter
	deadLetters, leasesLost, takenOver                      metric.Int64Counter
	permitsInUse, permitsWaiting                            metric.Int64UpDownCounter
	execDuration, stepDuration                              metric.Float64Histogram
	commitDuration                                          metric.Float64Histogram
	commitBatch                                             metric.Int64Histogram

	// attrs caches the attribute options by function, queue and status
	// (a plain map under a read lock: a sync.Map would box the key, an
	// allocation on every lookup of every step).
	attrsMu sync.RWMutex
	attrs   map[[3]string]*attrOpts
	// commitOK and commitFailed are the attributes of the backend's
	// commits, made once the backend is known.
	commitOK, commitFailed *attrOpts

	regs []metric.Registration
	// dbSystem is the backend's db.system.name.
	dbSystem string
	// stats are the instruments observeStats reports.
	stats statsInstruments

	statsMu   sync.Mutex // guards the cached Stats below; held across the query
	lastStats *persistence.Stats
	statsAt   time.Time
}

// newMetrics makes the instruments of rt on mp (the global provider when
// nil) and registers the observable ones.
func newMetrics(rt *Runtime, mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	meter := mp.Meter("github.com/stent-go/stent/actors")
	m := &metrics{rt: rt}
	var errs []error
	counter := func(dst *metric.Int64Counter, name, desc string) {
		c, err := meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{execution}"))
		errs = append(errs, err)
		*dst = c
	}
	counter(&m.started, MetricExecutionsStarted, "Executions whose first attempt began on this node.")
	counter(&m.completed, MetricExecutionsCompleted, "Executions that completed on this node.")
	counter(&m.failed, MetricExecutionsFailed, "Executions that failed for good on this node (each also writes a dead letter).")
	counter(&m.retried, MetricExecutionsRetried, "Failed attempts on this node that were scheduled to run again.")
	counter(&m.canceled, MetricExecutionsCanceled, "Executions that ended canceled on this node.")
	counter(&m.timedOut, MetricExecutionsTimedOut, "Executions that ended past their deadline on this node.")
	var err error
	m.deadLetters, err = meter.Int64Counter(MetricDeadLetters, metric.WithUnit("{dead_letter}"),
		metric.WithDescription("Dead letters written by this node (one per execution that failed for good)."))
	errs = append(errs, err)
	m.leasesLost, err = meter.Int64Counter(MetricLeasesLost, metric.WithUnit("{lease}"),
		metric.WithDescription("Activations on this node stopped because their lease was taken by another node or a write was fenced."))
	errs = append(errs, err)
	m.takenOver, err = meter.Int64Counter(MetricLeasesTakenOver, metric.WithUnit("{member}"),
		metric.WithDescription("Lost cluster members whose leases this node released to take their executions over."))
	errs = append(errs, err)
	m.permitsInUse, err = meter.Int64UpDownCounter(MetricPermitsInUse, metric.WithUnit("{permit}"),
		metric.WithDescription("Concurrency permits held by attempts on this node, by limited function."))
	errs = append(errs, err)
	m.permitsWaiting, err = meter.Int64UpDownCounter(MetricPermitsWaiting, metric.WithUnit("{attempt}"),
		metric.WithDescription("Attempts on this node waiting for a concurrency permit, by limited function."))
	errs = append(errs, err)
	m.execDuration, err = meter.Float64Histogram(MetricExecutionDuration, metric.WithUnit("s"),
		metric.WithDescription("End-to-end time of an execution, from its creation to its outcome, by function, queue and status."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	m.stepDuration, err = meter.Float64Histogram(MetricStepDuration, metric.WithUnit("s"),
		metric.WithDescription("Time of one attempt of a step (an execution called by another), from its start to its outcome."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	errs = append(errs, err)
	m.commitDuration, err = meter.Float64Histogram(MetricCommitDuration, metric.WithUnit("s"),
		metric.WithDescription("Time of one transaction of the backend's writer (a group commit)."),
		metric.WithExplicitBucketBoundaries(commitBuckets...))
	errs = append(errs, err)
	m.commitBatch, err = meter.Int64Histogram(MetricCommitBatchSize, metric.WithUnit("{request}"),
		metric.WithDescription("Write requests in one transaction of the backend's writer."),
		metric.WithExplicitBucketBoundaries(batchBuckets...))
	errs = append(errs, err)

	running, err := meter.Int64ObservableGauge(MetricExecutionsRunning, metric.WithUnit("{execution}"),
		metric.WithDescription("Executions running in the database (every node's), by function and queue."))
	errs = append(errs, err)
	waiting, err := meter.Int64ObservableGauge(MetricExecutionsWaiting, metric.WithUnit("{execution}"),
		metric.WithDescription("Executions waiting (a sleep, a signal, a child) in the database, by function and queue."))
	errs = append(errs, err)
	depth, err := meter.Int64ObservableGauge(MetricQueueDepth, metric.WithUnit("{execution}"),
		metric.WithDescription("Executions of a queue that may run now and no node has taken."))
	errs = append(errs, err)
	oldest, err := meter.Float64ObservableGauge(MetricQueueOldestPending, metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest execution of a queue that may run now and no node has taken."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m.stats = statsInstruments{running: running, waiting: waiting, depth: depth, oldest: oldest}
	reg, err := meter.RegisterCallback(m.observeStats, running, waiting, depth, oldest)
	if err != nil {
		return nil, err
	}
	m.regs = append(m.regs, reg)

	activations, err := meter.Int64ObservableGauge(MetricActivations, metric.WithUnit("{execution}"),
		metric.WithDescription("Executions with an actor on this node."))
	errs = append(errs, err)
	held, err := meter.Int64ObservableGauge(MetricLeasesHeld, metric.WithUnit("{lease}"),
		metric.WithDescription("Leases this node's activations hold."))
	errs = append(errs, err)
	members, err := meter.Int64ObservableGauge(MetricClusterMembers, metric.WithUnit("{member}"),
		metric.WithDescription("Cluster members as this node sees them, by state (absent outside a cluster)."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		m.unregister()
		return nil, err
	}
	reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		rt.mu.Lock()
		n, leased := len(rt.active), 0
		for _, act := range rt.active {
			if act.leased && act.epoch > 0 {
				leased++
			}
		}
		rt.mu.Unlock()
		o.ObserveInt64(activations, int64(n))
		o.ObserveInt64(held, int64(leased))
		if rt.cl != nil {
			byState := map[string]int64{}
			for _, mem := range rt.Members() {
				byState[mem.State.String()]++
			}
			for s, c := range byState {
				o.ObserveInt64(members, c, metric.WithAttributes(attribute.String(AttrMemberState, s)))
			}
		}
		return nil
	}, activations, held, members)
	if err != nil {
		m.unregister()
		return nil, err
	}
	m.regs = append(m.regs, reg)
	m.observeCommits()
	return m, nil
}

// unregister removes the callbacks of the observable instruments and the
// commit observer.
func (m *metrics) unregister() {
	for _, r := range m.regs {
		if err := r.Unregister(); err != nil {
			m.rt.log.Warn("unregistering a metrics callback", "error", err)
		}
	}
	m.regs = nil
	if o := commitObservable(m.rt.backend); o != nil {
		o.SetCommitObserver(nil)
	}
}

// attrOpts is one attribute set as the options of each kind of
// instrument update, each a slice made once: an option passed alone to the
// variadic methods of the instruments (interfaces) would be put in a new
// slice on every update.
type attrOpts struct {
	add []metric.AddOption
	rec []metric.RecordOption
	obs []metric.ObserveOption
}

func newAttrOpts(kv ...attribute.KeyValue) *attrOpts {
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	return &attrOpts{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}, obs: []metric.ObserveOption{o}}
}

// opt returns the attribute options of function fn, queue q and status s
// (empty: none), made once.
func (m *metrics) opt(fn, q, s string) *attrOpts {
	k := [3]string{fn, q, s}
	m.attrsMu.RLock()
	v, ok := m.attrs[k]
	m.attrsMu.RUnlock()
	if ok {
		return v
	}
	kv := make([]attribute.KeyValue, 0, 3)
	if fn != "" {
		kv = append(kv, AttrFunction.String(fn))
	}
	if q == "" && fn != "" {
		q = "default"
	}
	if q != "" {
		kv = append(kv, AttrQueue.String(q))
	}
	if s != "" {
		kv = append(kv, attribute.String(AttrStatus, s))
	}
	v = newAttrOpts(kv...)
	m.attrsMu.Lock()
	defer m.attrsMu.Unlock()
	if w, ok := m.attrs[k]; ok {
		return w
	}
	if m.attrs == nil {
		m.attrs = make(map[[3]string]*attrOpts)
	}
	m.attrs[k] = v
	return v
}

// queueOf is the queue of e (the default queue's name when empty).
func queueOf(rec *persistence.Execution) string {
	if rec.Queue == "" {
		return "default"
	}
	return rec.Queue
}

// attemptStarted counts e's first attempt when its body starts.
func (m *metrics) attemptStarted(e *execution) {
	ctx := context.Background()
	if !m.started.Enabled(ctx) || e.attempt != 1 || len(e.entries) > 0 {
		return // a resumption, or a retry (counted by retried)
	}
	m.started.Add(ctx, 1, m.opt(e.rec.Function, queueOf(e.rec), "").add...)
}

// outcome counts how e's attempt ended: a retry (o nil) or the
// execution's end, with its latencies.
func (m *metrics) outcome(e *execution, o *Outcome) {
	ctx := context.Background()
	if !m.completed.Enabled(ctx) {
		return
	}
	base := m.opt(e.rec.Function, queueOf(e.rec), "")
	if e.rec.ParentID != "" && !e.attemptStart.IsZero() {
		m.stepDuration.Record(ctx, time.Since(e.attemptStart).Seconds(), base.rec...)
	}
	if o == nil {
		m.retried.Add(ctx, 1, base.add...)
		return
	}
	m.count(ctx, e.rec, o)
}

// ended counts execution x, which no node ran, ended in the database by
// this node (Cancel).
func (m *metrics) ended(x *persistence.Execution, o *Outcome) {
	ctx := context.Background()
	if !m.completed.Enabled(ctx) {
		return
	}
	m.count(ctx, x, o)
}

// count counts the end o of execution rec, with its end-to-end latency.
func (m *metrics) count(ctx context.Context, rec *persistence.Execution, o *Outcome) {
	fn, q := rec.Function, queueOf(rec)
	base := m.opt(fn, q, "")
	switch o.Status {
	case persistence.StatusCompleted:
		m.completed.Add(ctx, 1, base.add...)
	case persistence.StatusFailed:
		m.failed.Add(ctx, 1, base.add...)
		m.deadLetters.Add(ctx, 1, base.add...)
	case persistence.StatusCanceled:
		m.canceled.Add(ctx, 1, base.add...)
	case persistence.StatusTimedOut:
		m.timedOut.Add(ctx, 1, base.add...)
	}
	if !rec.CreatedAt.IsZero() {
		m.execDuration.Record(ctx, max(0, time.Since(rec.CreatedAt).Seconds()), m.opt(fn, q, string(o.Status)).rec...)
	}
}

// leaseLost counts an activation stopped for its lost lease.
func (m *metrics) leaseLost() {
	if ctx := context.Background(); m.leasesLost.Enabled(ctx) {
		m.leasesLost.Add(ctx, 1)
	}
}

// tookOver counts a lost member taken over.
func (m *metrics) tookOver() {
	if ctx := context.Background(); m.takenOver.Enabled(ctx) {
		m.takenOver.Add(ctx, 1)
	}
}

// permitHeld adds n to the permits of function key held here.
func (m *metrics) permitHeld(key, queue string, n int64) {
	if ctx := context.Background(); m.permitsInUse.Enabled(ctx) {
		m.permitsInUse.Add(ctx, n, m.opt(key, queue, "").add...)
	}
}

// waitPermit counts an attempt waiting for a permit of key until the
// function it returns is called.
func (m *metrics) waitPermit(key, queue string) func() {
	ctx := context.Background()
	if !m.permitsWaiting.Enabled(ctx) {
		return func() {}
	}
	o := m.opt(key, queue, "")
	m.permitsWaiting.Add(ctx, 1, o.add...)
	return func() { m.permitsWaiting.Add(ctx, -1, o.add...) }
}

// ObserveCommit records one transaction of the backend's writer.
func (m *metrics) ObserveCommit(requests int, took time.Duration, failed bool) {
	ctx := context.Background()
	if !m.commitDuration.Enabled(ctx) {
		return
	}
	o := m.commitOK
	if failed {
		o = m.commitFailed
	}
	m.commitDuration.Record(ctx, took.Seconds(), o.rec...)
	m.commitBatch.Record(ctx, int64(requests), o.rec...)
}

// commitOpt returns the attributes of a commit of the backend system,
// failed or not.
func commitOpt(system string, failed bool) *attrOpts {
	kv := []attribute.KeyValue{attribute.String(AttrDBSystem, system), attribute.String(AttrDBOperation, "commit")}
	if failed {
		kv = append(kv, attribute.String(AttrCommitFailed, "failed"))
	}
	return newAttrOpts(kv...)
}

// observeCommits makes m the commit observer of the runtime's backend,
// when it reports its commits.
func (m *metrics) observeCommits() {
	if o := commitObservable(m.rt.backend); o != nil {
		m.dbSystem = o.DBSystem()
		m.commitOK, m.commitFailed = commitOpt(m.dbSystem, false), commitOpt(m.dbSystem, true)
		o.SetCommitObserver(m)
	}
}

// commitObservable finds, under any wrappers (Unwrap), the backend that
// reports its commits.
func commitObservable(b persistence.Backend) persistence.CommitObservable {
	for b != nil {
		if o, ok := b.(persistence.CommitObservable); ok {
			return o
		}
		u, ok := b.(interface{ Unwrap() persistence.Backend })
		if !ok {
			return nil
		}
		b = u.Unwrap()
	}
	return nil
}

// observeStats reports the counts of Backend.Stats, read at most once per
// statsMaxAge: running and waiting executions by function and queue, and
// the depth and oldest due execution of each queue.
func (m *metrics) observeStats(ctx context.Context, o metric.Observer) error {
	st, err := m.readStats(ctx)
	if err != nil {
		return err
	}
	type fq struct{ fn, q string }
	running, waiting := map[fq]int64{}, map[fq]int64{}
	depth, oldest := map[string]int64{}, map[string]time.Time{}
	for _, g := range st.Groups {
		k := fq{g.Function, g.Queue}
		running[k] += 0
		waiting[k] += 0
		depth[g.Queue] += 0
		switch g.Status {
		case persistence.StatusRunning:
			running[k] += int64(g.Count)
		case persistence.StatusWaiting:
			waiting[k] += int64(g.Count)
		case persistence.StatusPending:
			depth[g.Queue] += int64(g.Due)
			if !g.OldestDue.IsZero() && (oldest[g.Queue].IsZero() || g.OldestDue.Before(oldest[g.Queue])) {
				oldest[g.Queue] = g.OldestDue
			}
		}
	}
	insts := m.stats
	for k, n := range running {
		o.ObserveInt64(insts.running, n, m.opt(k.fn, k.q, "").obs...)
	}
	for k, n := range waiting {
		o.ObserveInt64(insts.waiting, n, m.opt(k.fn, k.q, "").obs...)
	}
	for q, n := range depth {
		o.ObserveInt64(insts.depth, n, m.opt("", q, "").obs...)
		age := 0.0
		if t := oldest[q]; !t.IsZero() {
			age = max(0, st.At.Sub(t).Seconds())
		}
		o.ObserveFloat64(insts.oldest, age, m.opt("", q, "").obs...)
	}
	return nil
}

// statsInstruments are the observable instruments fed by Backend.Stats.
type statsInstruments struct {
	running, waiting, depth metric.Int64ObservableGauge
	oldest                  metric.Float64ObservableGauge
}

// readStats returns the counts of Backend.Stats, read again when the last
// read is older than statsMaxAge. Concurrent scrapes share one read.
func (m *metrics) readStats(ctx context.Context) (*persistence.Stats, error) {
	m.statsMu.Lock()
	defer m.statsMu.Unlock()
	if m.lastStats != nil && time.Since(m.statsAt) < statsMaxAge {
		return m.lastStats, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := m.rt.backend.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading stats for metrics: %w", err)
	}
	m.lastStats, m.statsAt = st, time.Now()
	return st, nil
}
