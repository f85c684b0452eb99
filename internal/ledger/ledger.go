// Package ledger is a built-in workload for chaos tests of Stent nodes: a
// workflow of sequential steps that record every run of their bodies in
// tables of their own, next to Stent's, so that a test can count what ran
// more than once after nodes were killed.
//
// Every run of a ledger_step body inserts a row into stent_ledger_runs
// before it returns, and every run of a ledger_workflow body that reaches its
// end inserts a row into stent_ledger_done. Neither table has a unique key:
// duplicates stay visible. These inserts are side effects outside Stent's
// journal, so a node killed after an insert and before Stent recorded the
// outcome runs that body again (at-least-once side effects). Check counts
// such repeats; telling them apart from bugs (a run repeated although no
// kill interrupted it) needs the caller's knowledge of kills, which is why
// Report lists the process IDs of each repeat.
//
// Two options widen the workload for chaos runs (stent chaos). A workflow
// with WorkflowInput.Signal waits, after its first step, for a signal of
// that name (sdk.WaitForSignal) and hands its payload to the step
// ledger_signal_receipt, which records it in stent_ledger_signals. A
// workflow with WorkflowInput.Limited runs its steps as ledger_limited_step,
// declared with sdk.WithMaxConcurrent(LimitedMax): each run records itself
// in stent_ledger_runs like ledger_step, and its start and end in
// stent_ledger_limited, so that a checker can compute how many ran at once.
// Audit checks the invariants over all the tables.
//
// It is internal: stent-node registers it, and tests start it.
package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stent-go/stent/sdk"
)

// WorkflowInput is the input of ledger_workflow.
type WorkflowInput struct {
	// Steps is how many ledger_step calls the workflow makes, one after
	// the other.
	Steps int `json:"steps"`
	// Pause is how long each step works (sleeps) after recording its run,
	// so that kills find steps in flight. Zero means no pause.
	Pause time.Duration `json:"pause,omitempty"`
	// Signal, if not empty, makes the workflow wait after its first step
	// (at once if Steps is 0) for a signal of that name with a string
	// payload, and record its receipt with SignalReceipt.
	Signal string `json:"signal,omitempty"`
	// Limited makes the workflow run LimitedStep instead of Step, so that
	// at most LimitedMax of its steps (with those of every other limited
	// workflow) run at once across the nodes.
	Limited bool `json:"limited,omitempty"`
}

// LimitedMax is the concurrency limit of ledger_limited_step. It is fixed
// when the package is initialised (sdk.WithMaxConcurrent is an option of
// sdk.Durable), so every node and checker agrees on it.
const LimitedMax = 5

// ReceiptInput is the input of ledger_signal_receipt.
type ReceiptInput struct {
	WorkflowID string `json:"workflow_id"`
	Payload    string `json:"payload"`
}

// StepInput is the input of ledger_step.
type StepInput struct {
	WorkflowID string        `json:"workflow_id"`
	Step       int           `json:"step"`
	Pause      time.Duration `json:"pause,omitempty"`
}

// current is the ledger the bodies write to (Register).
var current atomic.Pointer[Ledger]

var errNotRegistered = errors.New("ledger: no ledger registered in this process (ledger.Register)")

// Step records its run in stent_ledger_runs, pauses for in.Pause, and
// returns in.Step+1.
var Step = sdk.Durable("ledger_step", func(ctx context.Context, in StepInput) (int, error) {
	l := current.Load()
	if l == nil {
		return 0, errNotRegistered
	}
	return stepBody(ctx, l, in)
})

// stepBody is the body of Step and LimitedStep.
func stepBody(ctx context.Context, l *Ledger, in StepInput) (int, error) {
	if err := l.exec(ctx, "run", in.WorkflowID, in.Step); err != nil {
		return 0, err
	}
	if in.Pause > 0 {
		t := time.NewTimer(in.Pause)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return in.Step + 1, nil
}

// LimitedStep is Step declared with sdk.WithMaxConcurrent(LimitedMax): it
// records its run in stent_ledger_runs as Step does, and its start and end
// (taken once the permit is held, and just before returning, error or
// not) in stent_ledger_limited.
var LimitedStep = sdk.Durable("ledger_limited_step", func(ctx context.Context, in StepInput) (out int, err error) {
	l := current.Load()
	if l == nil {
		return 0, errNotRegistered
	}
	runID, err := l.limitedStart(ctx, in)
	if err != nil {
		return 0, err
	}
	defer func() {
		// The end is recorded even when ctx has ended (the node stops or
		// lost the lease): the body ran until now either way.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, l.limitedEnd(ectx, runID))
	}()
	return stepBody(ctx, l, in)
}, sdk.WithMaxConcurrent(LimitedMax))

// SignalReceipt records in stent_ledger_signals that the workflow received
// a signal with in.Payload, and returns the payload. It is a step, so that
// a replay of the workflow does not record the receipt again.
var SignalReceipt = sdk.Durable("ledger_signal_receipt", func(ctx context.Context, in ReceiptInput) (string, error) {
	l := current.Load()
	if l == nil {
		return "", errNotRegistered
	}
	if err := l.insert(ctx, "signal receipt", in.WorkflowID,
		`INSERT INTO stent_ledger_signals (workflow_id, payload, node, pid, at) VALUES (?, ?, ?, ?, ?)`,
		in.WorkflowID, in.Payload, l.node, l.pid, time.Now().UnixMicro()); err != nil {
		return "", err
	}
	return in.Payload, nil
})

// Workflow calls Step (LimitedStep if in.Limited) in.Steps times in
// sequence (steps 0 to Steps-1), waiting for in.Signal after the first if
// it is set, records its completion in stent_ledger_done, and returns the
// sum of the steps' outputs, Steps×(Steps+1)/2. Its workflow ID is its
// execution ID.
var Workflow = sdk.Durable("ledger_workflow", func(ctx context.Context, in WorkflowInput) (int, error) {
	l := current.Load()
	if l == nil {
		return 0, errNotRegistered
	}
	id := sdk.ExecutionID(ctx)
	step := Step
	if in.Limited {
		step = LimitedStep
	}
	sum := 0
	for i := range max(in.Steps, 1) {
		if i < in.Steps {
			v, err := step.Call(ctx, StepInput{WorkflowID: id, Step: i, Pause: in.Pause})
			if err != nil {
				return 0, err
			}
			sum += v
		}
		if i == 0 && in.Signal != "" {
			payload, err := sdk.WaitForSignal[string](ctx, in.Signal)
			if err != nil {
				return 0, err
			}
			if _, err := SignalReceipt.Call(ctx, ReceiptInput{WorkflowID: id, Payload: payload}); err != nil {
				return 0, err
			}
		}
	}
	if err := l.exec(ctx, "done", id, 0); err != nil {
		return 0, err
	}
	return sum, nil
})

// Register makes l the ledger that the bodies of Step and Workflow run in
// this process write to; nil unregisters it. The functions themselves are
// registered with sdk.Durable when the package is initialised, so a process
// that only starts workflows needs no Register. Register is safe for
// concurrent use; it returns an error only for a closed ledger.
func Register(l *Ledger) error {
	if l != nil && l.closed.Load() {
		return errors.New("ledger: registering a closed ledger")
	}
	current.Store(l)
	return nil
}

// Ledger is a connection to the ledger tables. It is safe for concurrent
// use. Make one with Open and Close it when done.
type Ledger struct {
	db       *sql.DB
	postgres bool
	node     string
	pid      int
	runs     atomic.Int64 // LimitedStep runs started, for their IDs
	closed   atomic.Bool
}

// Option configures Open.
type Option func(*options)

type options struct {
	schema string
	node   string
}

// WithSchema puts the tables in the named PostgreSQL schema (created if
// missing), as postgres.WithSchema does for Stent's; the default is the
// connection's search_path. It is ignored for SQLite.
func WithSchema(name string) Option { return func(o *options) { o.schema = name } }

// WithNode sets the node name recorded with each run (default hostname-pid).
func WithNode(name string) Option { return func(o *options) { o.node = name } }

// Open connects to database, a SQLite path or a postgres:// (or
// postgresql://) DSN as stent-node's --db takes, and creates the ledger
// tables if they are missing. SQLite files are used in WAL mode with a 5s
// busy timeout, as Stent uses them, so several processes share one file.
func Open(database string, opts ...Option) (*Ledger, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.node == "" {
		o.node = DefaultNode()
	}
	l := &Ledger{node: o.node, pid: os.Getpid(), postgres: IsPostgres(database)}
	var ddl []string
	if l.postgres {
		cfg, err := pgx.ParseConfig(database)
		if err != nil {
			return nil, fmt.Errorf("opening ledger: parsing postgres DSN: %w", err)
		}
		if o.schema != "" {
			cfg.RuntimeParams["search_path"] = o.schema
			ddl = append(ddl, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{o.schema}.Sanitize())
		}
		l.db = stdlib.OpenDB(*cfg)
	} else {
		if database == "" {
			return nil, errors.New("opening ledger: empty database path")
		}
		db, err := sql.Open("sqlite", "file:"+database+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
		if err != nil {
			return nil, fmt.Errorf("opening ledger %s: %w", database, err)
		}
		db.SetMaxOpenConns(1) // one writer per process; busy_timeout handles the others
		l.db = db
	}
	ddl = append(ddl,
		`CREATE TABLE IF NOT EXISTS stent_ledger_runs (workflow_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS stent_ledger_done (workflow_id TEXT NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, at BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS stent_ledger_signals (workflow_id TEXT NOT NULL, payload TEXT NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, at BIGINT NOT NULL)`,
		// end_at is NULL until the run ends: a killed run has none.
		`CREATE TABLE IF NOT EXISTS stent_ledger_limited (run_id TEXT NOT NULL, workflow_id TEXT NOT NULL, step INTEGER NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, start_at BIGINT NOT NULL, end_at BIGINT)`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range ddl {
		if _, err := l.db.ExecContext(ctx, q); err != nil {
			return nil, errors.Join(fmt.Errorf("creating ledger tables: %w", err), l.db.Close())
		}
	}
	return l, nil
}

// IsPostgres reports whether database is a PostgreSQL DSN (it starts with
// postgres:// or postgresql://) rather than a SQLite path.
func IsPostgres(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// DefaultNode is the default node name: hostname-pid.
func DefaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// Close closes the ledger's connections. Register(nil) first if it is the
// registered one.
func (l *Ledger) Close() error {
	l.closed.Store(true)
	return l.db.Close()
}

// exec records a step run (what "run") or a completion (what "done").
func (l *Ledger) exec(ctx context.Context, what, workflowID string, step int) error {
	at := time.Now().UnixMicro()
	if what == "run" {
		return l.insert(ctx, what, workflowID,
			`INSERT INTO stent_ledger_runs (workflow_id, step, node, pid, at) VALUES (?, ?, ?, ?, ?)`,
			workflowID, step, l.node, l.pid, at)
	}
	return l.insert(ctx, what, workflowID,
		`INSERT INTO stent_ledger_done (workflow_id, node, pid, at) VALUES (?, ?, ?, ?)`,
		workflowID, l.node, l.pid, at)
}

// limitedStart records the start of a run of LimitedStep and returns the
// run's ID, for limitedEnd.
func (l *Ledger) limitedStart(ctx context.Context, in StepInput) (string, error) {
	runID := fmt.Sprintf("%d-%d", l.pid, l.runs.Add(1))
	return runID, l.insert(ctx, "limited start", in.WorkflowID,
		`INSERT INTO stent_ledger_limited (run_id, workflow_id, step, node, pid, start_at) VALUES (?, ?, ?, ?, ?, ?)`,
		runID, in.WorkflowID, in.Step, l.node, l.pid, time.Now().UnixMicro())
}

// limitedEnd records the end of run runID of LimitedStep.
func (l *Ledger) limitedEnd(ctx context.Context, runID string) error {
	return l.insert(ctx, "limited end", runID,
		`UPDATE stent_ledger_limited SET end_at = ? WHERE run_id = ?`, time.Now().UnixMicro(), runID)
}

// insert runs write q, written with ? placeholders, with args; what and id
// name it in the error. On SQLite it waits out a write lock that another
// process holds past the busy timeout (one stopped by SIGSTOP while it
// writes), until ctx ends: a record the workload failed to write would be
// a failed step, run again, or a limited run without an end.
func (l *Ledger) insert(ctx context.Context, what, id, q string, args ...any) error {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		_, err := l.db.ExecContext(ctx, l.rebind(q), args...)
		if err == nil {
			return nil
		}
		if l.postgres || !isBusy(err) {
			return fmt.Errorf("recording ledger %s of %s: %w", what, id, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("recording ledger %s of %s: %w", what, id, err)
		case <-t.C:
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// rebind turns the ? placeholders of q into PostgreSQL's $1, $2, ... when
// the ledger is on PostgreSQL. Ledger queries have no ? in literals.
func (l *Ledger) rebind(q string) string {
	if !l.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
