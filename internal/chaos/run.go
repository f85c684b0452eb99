package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// staleWriteLog is the node log message of an execution whose write was
// refused because another node took its lease (counted at any level).
const staleWriteLog = "activation lost its lease"

// Main runs `stent chaos` with args (after the subcommand) until it ends
// or SIGINT/SIGTERM, and returns the exit code.
func Main(args []string) int {
	cfg, err := Parse(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stent chaos:", err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := Run(ctx, cfg, os.Stdout, os.Stderr)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "stent chaos: interrupted; the nodes were killed")
		return ExitBroken
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stent chaos:", err)
		if errors.As(err, new(usageError)) {
			return ExitUsage
		}
		return ExitBroken
	}
	if !res.OK() {
		return ExitBroken
	}
	return ExitOK
}

// usageError is a bad --db: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// run is the state of one chaos run.
type run struct {
	cfg     Config
	out     io.Writer
	rng     *mrand.Rand
	dir     string
	db      string
	schema  string
	nodes   []*node
	command []string
	verbose io.Writer

	faults   ledger.Faults
	kills    []ledger.Kill
	restarts int
	pauses   int
	crashed  []string // unexpected exits
	events   []event  // starts and faults, for diagnose

	lastProgress time.Time // when the last progress line was printed
}

// Run performs the chaos run cfg, printing its progress and result table
// to out (and the nodes' logs to stderr with cfg.Verbose). It returns an
// error when the run could not be carried out (the database cannot be
// opened, a node does not start, ctx ended); a broken invariant is in the
// Result.
func Run(ctx context.Context, cfg Config, out, stderr io.Writer) (res Result, err error) {
	if err := cfg.validate(); err != nil {
		return res, usageError{err}
	}
	fmt.Fprintf(out, "seed %d\n", cfg.Seed)
	r := &run{
		cfg: cfg, out: out, rng: mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed)),
		faults: ledger.Faults{Kills: map[int]time.Time{}, Pauses: map[int][]ledger.Pause{}},
	}
	if cfg.Verbose {
		r.verbose = stderr
	}
	r.command = cfg.NodeCommand
	if len(r.command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return res, fmt.Errorf("finding this executable to run nodes: %w", err)
		}
		r.command = []string{exe, "node"}
	}
	if r.dir, err = os.MkdirTemp("", "stent-chaos-"); err != nil {
		return res, fmt.Errorf("creating the run's directory: %w", err)
	}
	keep := cfg.Keep
	defer func() {
		if keep || err != nil || !res.OK() {
			fmt.Fprintf(out, "kept %s\n", r.dir)
			return
		}
		err = errors.Join(err, os.RemoveAll(r.dir))
	}()
	r.db = cfg.DB
	if r.db == "" {
		r.db = filepath.Join(r.dir, "stent.db")
	}
	fmt.Fprintf(out, "run directory %s (node logs)\n", r.dir)

	// The driver's own view of the database: a backend for starting and
	// listing workflows (not serving), and the ledger for the check.
	backend, l, dropSchema, err := r.open(ctx)
	if err != nil {
		return res, err
	}
	defer func() {
		err = errors.Join(err, l.Close(), backend.Close())
		if dropSchema != nil && !keep && err == nil && res.OK() {
			err = errors.Join(err, dropSchema())
		} else if dropSchema != nil {
			fmt.Fprintf(out, "kept schema %s\n", r.schema)
		}
	}()
	ex, err := sdk.New(backend, sdk.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		return res, fmt.Errorf("creating the driver's executor: %w", err)
	}
	defer func() { err = errors.Join(err, ex.Close()) }()

	if err := r.startNodes(ctx); err != nil {
		return res, errors.Join(err, r.killAll())
	}
	defer func() {
		if ctx.Err() != nil || err != nil {
			err = errors.Join(err, r.killAll())
		}
	}()

	res, err = r.drive(ctx, ex, l, backend)
	return res, err
}

// open opens the driver's backend and ledger, creating the schema on
// PostgreSQL; dropSchema (nil on SQLite) drops it.
func (r *run) open(ctx context.Context) (persistence.Backend, *ledger.Ledger, func() error, error) {
	if !ledger.IsPostgres(r.db) {
		b, err := sqlite.Open(r.db)
		if err != nil {
			return nil, nil, nil, usageError{err}
		}
		if err := b.Init(ctx); err != nil {
			return nil, nil, nil, errors.Join(fmt.Errorf("creating Stent's tables in %s: %w", r.db, err), b.Close())
		}
		l, err := ledger.Open(r.db, ledger.WithNode("chaos-driver"))
		if err != nil {
			return nil, nil, nil, errors.Join(err, b.Close())
		}
		fmt.Fprintf(r.out, "database %s (SQLite)\n", r.db)
		return b, l, nil, nil
	}
	r.schema = "chaos_" + strconv.FormatUint(r.cfg.Seed, 10)
	conn, err := pgx.Connect(ctx, r.db)
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("connecting to --db: %w", err)}
	}
	var exists bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, r.schema).Scan(&exists)
	if err == nil && exists {
		err = usageError{fmt.Errorf("schema %s exists already (kept by an earlier run with this seed?): drop it, or use another --seed", r.schema)}
	}
	if cerr := conn.Close(ctx); err != nil || cerr != nil {
		return nil, nil, nil, errors.Join(err, cerr)
	}
	b, err := postgres.Open(ctx, r.db, postgres.WithSchema(r.schema))
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	if err := b.Init(ctx); err != nil {
		return nil, nil, nil, errors.Join(fmt.Errorf("creating Stent's tables in schema %s: %w", r.schema, err), b.Close())
	}
	l, err := ledger.Open(r.db, ledger.WithNode("chaos-driver"), ledger.WithSchema(r.schema))
	if err != nil {
		return nil, nil, nil, errors.Join(err, b.Close())
	}
	drop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, r.db)
		if err != nil {
			return fmt.Errorf("dropping schema %s: %w", r.schema, err)
		}
		_, err = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{r.schema}.Sanitize()+" CASCADE")
		if err != nil {
			err = fmt.Errorf("dropping schema %s: %w", r.schema, err)
		}
		return errors.Join(err, conn.Close(ctx))
	}
	fmt.Fprintf(r.out, "database PostgreSQL, schema %s\n", r.schema)
	return b, l, drop, nil
}

// startNodes picks the nodes' ports and starts them, waiting until each
// is ready.
func (r *run) startNodes(ctx context.Context) error {
	addrs, err := freeAddrs(3 * r.cfg.Nodes)
	if err != nil {
		return err
	}
	for i := range r.cfg.Nodes {
		n := &node{name: fmt.Sprintf("chaos-%d", i), logPath: filepath.Join(r.dir, fmt.Sprintf("chaos-%d.log", i))}
		n.admin, n.gossip, n.remote = addrs[3*i], addrs[3*i+1], addrs[3*i+2]
		r.nodes = append(r.nodes, n)
	}
	for _, n := range r.nodes {
		if err := r.startNode(n); err != nil {
			return err
		}
	}
	for _, n := range r.nodes {
		if err := n.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	cluster := "cluster: gossip on " + r.nodes[0].gossip + "…"
	if r.cfg.NoCluster {
		cluster = "no cluster: nodes share work through the database only"
	}
	fmt.Fprintf(r.out, "%d nodes ready (%s)\n", len(r.nodes), cluster)
	return nil
}

func (r *run) startNode(n *node) error {
	if err := n.start(append(append([]string{}, r.command...), nodeArgs(r.cfg, r.db, r.schema, n, r.nodes)...), r.verbose); err != nil {
		return err
	}
	r.note(n, "start")
	return nil
}

// killAll kills every node process still running (on an error or ctrl-C).
func (r *run) killAll() error {
	var errs []error
	for _, n := range r.nodes {
		if n.cmd != nil && !n.hasExited() {
			errs = append(errs, n.kill())
		}
	}
	return errors.Join(errs...)
}

// workload is what the driver started.
type workload struct {
	ids     []string
	inputs  map[string]ledger.WorkflowInput
	mu      sync.Mutex
	signals map[string]ledger.Sent
	sendErr int // failed SendSignal calls
}

// drive starts the workflows, runs the faults until they are all done,
// waits for quiet and checks.
func (r *run) drive(ctx context.Context, ex *sdk.Executor, l *ledger.Ledger, backend persistence.Backend) (Result, error) {
	cfg := r.cfg
	deadline := time.Now().Add(cfg.Timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Minute)) // room for the check
	defer cancel()
	cctx := sdk.WithExecutor(ctx, ex)

	w := &workload{inputs: map[string]ledger.WorkflowInput{}, signals: map[string]ledger.Sent{}}
	withSignal := map[int]bool{}
	for _, i := range r.rng.Perm(cfg.Workflows)[:cfg.Signals] {
		withSignal[i] = true
	}
	begin := time.Now()
	for i := range cfg.Workflows {
		in := ledger.WorkflowInput{Steps: cfg.Steps, Pause: cfg.StepPause, Limited: cfg.Limit > 0 && i%limitedEvery == 0}
		if withSignal[i] {
			in.Signal = "chaos"
		}
		h, err := ledger.Workflow.Start(cctx, in)
		if err != nil {
			return Result{}, fmt.Errorf("starting workflow %d: %w", i, err)
		}
		w.ids = append(w.ids, h.ID())
		w.inputs[h.ID()] = in
	}
	fmt.Fprintf(r.out, "started %d workflows of %d steps (%d wait for a signal, %d limited to %d at once) in %s\n",
		len(w.ids), cfg.Steps, cfg.Signals, countLimited(w), cfg.Limit, time.Since(begin).Round(time.Millisecond))

	if cfg.Schedule > 0 {
		if err := r.startSchedule(ctx, ex); err != nil {
			return Result{}, err
		}
	}
	sends := r.planSignals(w)
	var sending sync.WaitGroup
	sending.Add(1)
	go func() {
		defer sending.Done()
		sendSignals(ctx, ex, w, sends, deadline)
	}()

	done, err := r.faultLoop(ctx, ex, len(w.ids), deadline)
	elapsed := time.Since(begin)
	sending.Wait()
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(r.out, "%d of %d workflows ended in %s; %d kills, %d pauses; stopping faults\n",
		done, len(w.ids), elapsed.Round(100*time.Millisecond), len(r.kills), r.pauses)
	if err := r.heal(ctx); err != nil {
		return Result{}, err
	}
	quiet := r.cfg.Lease + time.Second
	fmt.Fprintf(r.out, "waiting %s for quiet\n", quiet)
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(quiet):
	}
	return r.check(ctx, ex, l, backend, w, elapsed)
}

func countLimited(w *workload) int {
	n := 0
	for _, in := range w.inputs {
		if in.Limited {
			n++
		}
	}
	return n
}

// signalSend is a planned signal: to workflow id, at offset at from the
// start of the sends.
type signalSend struct {
	id string
	at time.Duration
}

// planSignals picks when to send each workflow that waits for a signal
// its signal: a random time in the first stretch of the run (a step's
// pause per step, plus a second), in order of time.
func (r *run) planSignals(w *workload) []signalSend {
	spread := time.Duration(r.cfg.Steps)*r.cfg.StepPause + time.Second
	var sends []signalSend
	for _, id := range w.ids {
		if w.inputs[id].Signal != "" {
			sends = append(sends, signalSend{id, time.Duration(r.rng.Int64N(int64(spread)))})
		}
	}
	sort.Slice(sends, func(i, j int) bool { return sends[i].at < sends[j].at })
	return sends
}

// sendSignals sends the planned signals, retrying a failed send with a new
// payload until deadline. It records what it sent in w.
func sendSignals(ctx context.Context, ex *sdk.Executor, w *workload, sends []signalSend, deadline time.Time) {
	start := time.Now()
	for _, s := range sends {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(s.at))):
		}
		for attempt := 1; time.Now().Before(deadline); attempt++ {
			payload := s.id + "#" + strconv.Itoa(attempt)
			err := ex.SendSignal(ctx, s.id, "chaos", payload)
			w.mu.Lock()
			sent := w.signals[s.id]
			if err == nil {
				sent.Acked = append(sent.Acked, payload)
			} else {
				sent.Failed = append(sent.Failed, payload)
				w.sendErr++
			}
			w.signals[s.id] = sent
			w.mu.Unlock()
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// faultLoop kills, restarts, pauses and continues nodes on the schedule
// until the n workflows have all ended or deadline passes, and returns how
// many ended.
func (r *run) faultLoop(ctx context.Context, ex *sdk.Executor, n int, deadline time.Time) (int, error) {
	now := time.Now()
	nextKill, nextPause := r.next(now, r.cfg.KillEvery), r.next(now, r.cfg.PauseEvery)
	restartAt := map[*node]time.Time{}
	contAt := map[*node]time.Time{}
	nextPoll := now
	ended := 0
	for {
		select {
		case <-ctx.Done():
			return ended, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		now = time.Now()
		if now.After(nextPoll) {
			var err error
			if ended, err = countEnded(ctx, ex, n); err != nil {
				return ended, err
			}
			if ended == n || now.After(deadline) {
				return ended, nil
			}
			nextPoll = now.Add(250 * time.Millisecond)
			r.progress(now, ended, n)
		}
		for _, nd := range r.nodes {
			if !nd.killed && !nd.down && nd.hasExited() { // once per exit: down until restarted
				r.crashed = append(r.crashed, fmt.Sprintf("%s (pid %d): %v", nd.name, nd.pid(), nd.waitErr))
				fmt.Fprintf(r.out, "%s exited on its own (%v); restarting it\n", nd.name, nd.waitErr)
				nd.down = true
				restartAt[nd] = now.Add(time.Second) // as a supervisor would, not at once
			}
		}
		for nd, at := range restartAt {
			if now.After(at) {
				delete(restartAt, nd)
				if err := r.startNode(nd); err != nil {
					return ended, err
				}
				r.restarts++
			}
		}
		for nd, at := range contAt {
			if now.After(at) {
				delete(contAt, nd)
				if err := r.cont(nd); err != nil {
					return ended, err
				}
			}
		}
		if !nextKill.IsZero() && now.After(nextKill) {
			if nd := r.pick(); nd != nil {
				pid := nd.pid()
				at := time.Now()
				r.faults.Kills[pid] = at
				r.kills = append(r.kills, ledger.Kill{PID: pid, At: at})
				r.note(nd, "SIGKILL")
				if err := nd.kill(); err != nil {
					return ended, err
				}
				nd.down = true
				restartAt[nd] = at.Add(2*time.Second + time.Duration(r.rng.Int64N(int64(2*time.Second))))
			}
			nextKill = r.next(now, r.cfg.KillEvery)
		}
		if !nextPause.IsZero() && now.After(nextPause) && len(contAt) == 0 {
			if nd := r.pick(); nd != nil {
				pid := nd.pid()
				at := time.Now()
				if err := nd.signal(syscall.SIGSTOP); err != nil {
					return ended, err
				}
				nd.paused = true
				r.noteAt(nd, "SIGSTOP", at)
				r.faults.Pauses[pid] = append(r.faults.Pauses[pid], ledger.Pause{Stop: at})
				r.pauses++
				contAt[nd] = at.Add(r.cfg.PauseFor)
			}
			nextPause = r.next(now, r.cfg.PauseEvery)
		}
	}
}

// next is the time of the next fault of a schedule with mean every: a
// uniform random time in [every/2, 3×every/2] after now; zero if every is 0.
func (r *run) next(now time.Time, every time.Duration) time.Time {
	if every <= 0 {
		return time.Time{}
	}
	return now.Add(every/2 + time.Duration(r.rng.Int64N(int64(every)+1)))
}

// pick returns a random node that runs and is not paused, or nil.
func (r *run) pick() *node {
	var up []*node
	for _, n := range r.nodes {
		if !n.down && !n.paused && !n.hasExited() {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[r.rng.IntN(len(up))]
}

// cont continues a paused node.
func (r *run) cont(n *node) error {
	if !n.paused {
		return nil
	}
	pid := n.pid()
	// Stamped before the signal, as a SIGSTOP is: the process may run (and
	// record a tail in the ledger) before this goroutine reads the clock
	// again, and a tail must not seem to come before its SIGCONT.
	at := time.Now()
	if err := n.signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.paused = false
	r.noteAt(n, "SIGCONT", at)
	ps := r.faults.Pauses[pid]
	ps[len(ps)-1].Cont = at
	return nil
}

// heal ends the faults: continues paused nodes, restarts the killed ones,
// and waits until every node is ready.
func (r *run) heal(ctx context.Context) error {
	for _, n := range r.nodes {
		if err := r.cont(n); err != nil {
			return err
		}
		if n.down || n.hasExited() {
			if err := r.startNode(n); err != nil {
				return err
			}
			r.restarts++
		}
	}
	for _, n := range r.nodes {
		if err := n.waitReady(ctx, 60*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// countEnded returns how many ledger workflows have a terminal status.
func countEnded(ctx context.Context, ex *sdk.Executor, n int) (int, error) {
	rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Limit: n + 1})
	if err != nil {
		return 0, fmt.Errorf("listing workflows: %w", err)
	}
	ended := 0
	for _, r := range rows {
		if r.Status.Terminal() {
			ended++
		}
	}
	return ended, nil
}

// check reads the database and the nodes, stops the nodes, and prints the
// result.
func (r *run) check(ctx context.Context, ex *sdk.Executor, l *ledger.Ledger, backend persistence.Backend, w *workload, elapsed time.Duration) (Result, error) {
	res := Result{Elapsed: elapsed, Kills: len(r.kills), Pauses: r.pauses, Restarts: r.restarts, Crashed: r.crashed, Limit: r.cfg.Limit}
	if r.cfg.Schedule > 0 {
		var err error
		if res.Schedule, err = r.checkSchedule(ctx, ex); err != nil {
			return res, fmt.Errorf("checking the schedule: %w", err)
		}
	}
	rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Limit: len(w.ids) + 1})
	if err != nil {
		return res, fmt.Errorf("listing workflows: %w", err)
	}
	want := r.cfg.Steps * (r.cfg.Steps + 1) / 2
	for _, row := range rows {
		if _, ok := w.inputs[row.ID]; !ok {
			continue
		}
		if row.Status != sdk.StatusCompleted {
			res.NotCompleted++
			continue
		}
		res.StatusCompleted++
		var sum int
		if err := json.Unmarshal(row.Output, &sum); err != nil || sum != want {
			res.WrongOutput++
		}
	}
	if res.Permits, err = backend.CountPermits(ctx, ledger.LimitedStep.Name()); err != nil {
		return res, err
	}
	for _, n := range r.nodes {
		code, err := n.get(ctx, "/healthz")
		if err == nil && code == http.StatusOK {
			res.Healthy++
		}
		c, err := countLines(n.logPath, staleWriteLog)
		if err != nil {
			return res, fmt.Errorf("reading the log of %s: %w", n.name, err)
		}
		res.StaleWrites += c
	}
	res.Nodes = len(r.nodes)
	r.faults.Stops = map[int]time.Time{}
	for _, n := range r.nodes {
		r.faults.Stops[n.pid()] = time.Now()
		if err := n.stop(15 * time.Second); err != nil {
			res.UncleanStops = append(res.UncleanStops, fmt.Sprintf("%s: %v", n.name, err))
		}
	}

	snap, err := l.Snapshot(ctx)
	if err != nil {
		return res, err
	}
	w.mu.Lock()
	res.SendErrors = w.sendErr
	r.faults.Fenced = map[ledger.Fence][]time.Time{}
	for _, n := range r.nodes {
		if err := readFences(n.logPath, r.faults.Fenced); err != nil {
			return res, fmt.Errorf("reading the log of %s: %w", n.name, err)
		}
	}
	exp := ledger.Expect{Workflows: w.ids, Steps: r.cfg.Steps, Signals: w.signals, Faults: r.faults, End: time.Now()}
	w.mu.Unlock()
	if r.cfg.Limit > 0 {
		exp.Limit = r.cfg.Limit
	}
	res.Audit = ledger.AuditSnapshot(snap, exp)
	res.Window = r.cfg.StepPause + r.cfg.Lease
	res.Takeovers, res.Stuck = ledger.Takeovers(snap.Runs, r.kills, res.Window)
	res.Print(r.out)
	r.diagnose(r.out, res.Audit.Suspects, snap.Runs)
	return res, nil
}
