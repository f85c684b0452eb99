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
	_ "modernc.org/sqlite" // registers the "sqlite" driver

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
})

// Workflow calls Step in.Steps times in sequence (steps 0 to Steps-1),
// records its completion in stent_ledger_done, and returns the sum of the
// steps' outputs, Steps×(Steps+1)/2. Its workflow ID is its execution ID.
var Workflow = sdk.Durable("ledger_workflow", func(ctx context.Context, in WorkflowInput) (int, error) {
	l := current.Load()
	if l == nil {
		return 0, errNotRegistered
	}
	id := sdk.ExecutionID(ctx)
	sum := 0
	for i := range in.Steps {
		v, err := Step.Call(ctx, StepInput{WorkflowID: id, Step: i, Pause: in.Pause})
		if err != nil {
			return 0, err
		}
		sum += v
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
		`CREATE TABLE IF NOT EXISTS stent_ledger_done (workflow_id TEXT NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, at BIGINT NOT NULL)`)
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
	var q string
	var args []any
	switch {
	case what == "run" && l.postgres:
		q, args = `INSERT INTO stent_ledger_runs (workflow_id, step, node, pid, at) VALUES ($1, $2, $3, $4, $5)`, []any{workflowID, step, l.node, l.pid, at}
	case what == "run":
		q, args = `INSERT INTO stent_ledger_runs (workflow_id, step, node, pid, at) VALUES (?, ?, ?, ?, ?)`, []any{workflowID, step, l.node, l.pid, at}
	case l.postgres:
		q, args = `INSERT INTO stent_ledger_done (workflow_id, node, pid, at) VALUES ($1, $2, $3, $4)`, []any{workflowID, l.node, l.pid, at}
	default:
		q, args = `INSERT INTO stent_ledger_done (workflow_id, node, pid, at) VALUES (?, ?, ?, ?)`, []any{workflowID, l.node, l.pid, at}
	}
	if _, err := l.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("recording ledger %s of %s: %w", what, workflowID, err)
	}
	return nil
}
