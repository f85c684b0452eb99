// Package postgres implements persistence.Backend on PostgreSQL with pgx/v5.
//
// # Schema
//
// Every table lives in one schema (WithSchema, default "public"), so several
// applications can share a database. Init creates the schema and applies the
// embedded migrations (migration/NNN_name.up.sql, numbered as SQLite's) in
// one transaction under an advisory lock, so concurrent Inits are safe.
//
// # Writes
//
// CreateExecution and Apply go through group commit: commits that arrive
// while a transaction is in flight are sent together as one pgx.Batch, which
// PostgreSQL runs as one implicit transaction, one round trip and one WAL
// flush. Up to WithWriters transactions are in flight at once. There is no
// writer goroutine: a caller that finds a free slot writes the pending
// commits itself, so a lone caller pays one round trip and no hand-off.
//
// Each Commit is a single statement whose parts are gated on the lease-epoch
// fence (a row lock or UPDATE WHERE id = $1 AND lease_epoch = $2), so a
// stale Commit writes nothing and fails alone; a Commit that raises an error
// (a NUL byte in a text field, say) is taken out of the batch and the rest is
// sent again.
//
// # Coordination
//
// SendSignal, a Commit that consumes a signal (ConsumeSignal) and one that
// passivates to wait for one (Update.WaitSignal) first lock the
// execution's row in a statement of their own, so that the statement after
// it sees every signal committed before: signals of one execution get seq
// in commit order, and a signal sent while its execution passivates is
// never missed (whichever commits second makes the execution due).
// AcquirePermit runs under a transaction-scoped advisory lock per key,
// deletes the key's expired permits and counts the rest, in one round trip;
// RequestCancel walks the tree with WITH RECURSIVE and updates it, with the
// canceled children's outcomes, in one statement.
//
// # Connection loss
//
// A batch or query that fails because its connection died, the server shut
// down, or a deadlock or serialization failure occurred is retried as a whole
// with backoff, for up to WithRetryTimeout. Retrying writes is safe: the
// epoch fence, upserts and ON CONFLICT make them idempotent. Two effects of
// an ambiguous failure (the server may have committed before the connection
// died) are visible to callers: a retried Commit may see ErrStaleEpoch if
// another owner took the lease in between (its first attempt was then
// written), and a retried CreateExecution reports created true when the row
// it finds matches the request exactly. ClaimDue and ReplayDeadLetter are
// retried only when nothing reached the server.
//
// # Clock
//
// Lease expiry and scheduled run times (Update.RunAfter) are computed with
// the server's now(), never the client's clock. A row inserted leased
// (Execution.LeaseTTL) gets its expiry from clock_timestamp() as the insert
// runs, after any wait for a lock.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stent-go/stent/persistence"
)

var _ persistence.Backend = (*Backend)(nil)

// Defaults of the options.
const (
	// DefaultSchema is the schema used without WithSchema.
	DefaultSchema = "public"
	// DefaultMaxBatch is how many commits one group-commit transaction holds
	// at most. Larger batches amortise the WAL flush further but make each
	// waiting caller wait for more statements.
	DefaultMaxBatch = 256
	// DefaultWriters is how many group-commit transactions may be in
	// flight at once, each on its own connection: while one waits for its
	// WAL flush, the next can be sent.
	DefaultWriters = 2
	// DefaultRetryTimeout bounds how long an operation is retried after a
	// connection loss: long enough to ride out a PostgreSQL restart.
	DefaultRetryTimeout = 30 * time.Second
	// DefaultConnectTimeout applies when the DSN sets no connect_timeout,
	// so an unreachable host fails Open instead of hanging.
	DefaultConnectTimeout = 10 * time.Second
	// DefaultApplicationName is the application_name of the backend's
	// connections when the DSN sets none.
	DefaultApplicationName = "stent"
)

// maxIdentifierLength is PostgreSQL's NAMEDATALEN - 1.
const maxIdentifierLength = 63

// Option configures a Backend.
type Option func(*options)

type options struct {
	schema       string
	pool         *pgxpool.Pool
	maxBatch     int
	writers      int
	retryTimeout time.Duration
	logger       *slog.Logger
}

// WithSchema puts every table in the named schema, which Init creates. The
// name is quoted, so any name of 1 to 63 bytes without NUL is accepted.
// The default is "public".
func WithSchema(name string) Option { return func(o *options) { o.schema = name } }

// WithPool makes the backend use pool instead of opening its own from the
// DSN, which is then ignored. Close does not close a pool passed this way.
// The pool should allow at least WithWriters connections plus one.
func WithPool(pool *pgxpool.Pool) Option { return func(o *options) { o.pool = pool } }

// WithMaxBatch caps how many commits one group-commit transaction holds;
// the default is DefaultMaxBatch. Values below 1 select the default.
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = n } }

// WithWriters sets how many group-commit transactions may be in flight at
// once; the default is DefaultWriters. Values below 1 select the default.
func WithWriters(n int) Option { return func(o *options) { o.writers = n } }

// WithRetryTimeout bounds how long an operation is retried after a
// connection loss; the default is DefaultRetryTimeout. A caller's context
// deadline ends retries sooner.
func WithRetryTimeout(d time.Duration) Option { return func(o *options) { o.retryTimeout = d } }

// WithLogger sets the logger for connection losses and retries; the
// default discards them.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Backend is a persistence.Backend on PostgreSQL. All methods are safe for
// concurrent use. Create it with Open, call Init before the first use, and
// Close it when done.
type Backend struct {
	pool    *pgxpool.Pool
	ownPool bool
	schema  string
	q       queries
	opts    options
	logger  *slog.Logger
	commits *commitCache

	// Lock order: mu before wmu.
	mu     sync.RWMutex // guards closed
	closed bool
	once   sync.Once

	// Group commit (writer.go). wmu guards the fields below it.
	wmu     sync.Mutex
	pending []*writeRequest // waiting for a leader
	leaders int             // goroutines writing batches, at most opts.writers
	idle    chan struct{}   // closed when leaders drops to 0 with nothing pending; nil when none is waited for

	// observer, if set, is told of each batch (SetCommitObserver).
	observer atomic.Pointer[persistence.CommitObserver]
}

// Open connects to the PostgreSQL server named by dsn (a URL or key=value
// string, as pgx accepts) and checks that it answers. It returns an error
// naming the server's host and port, never the password, when the DSN does
// not parse, the server is unreachable or refuses the login. Open does not
// create tables: call Init.
func Open(ctx context.Context, dsn string, opts ...Option) (*Backend, error) {
	o := options{
		schema:       DefaultSchema,
		maxBatch:     DefaultMaxBatch,
		writers:      DefaultWriters,
		retryTimeout: DefaultRetryTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateSchema(o.schema); err != nil {
		return nil, err
	}
	if o.maxBatch < 1 {
		o.maxBatch = DefaultMaxBatch
	}
	if o.writers < 1 {
		o.writers = DefaultWriters
	}
	if o.retryTimeout <= 0 {
		o.retryTimeout = DefaultRetryTimeout
	}
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	q, err := loadQueries(o.schema)
	if err != nil {
		return nil, err
	}

	pool, own := o.pool, false
	if pool == nil && strings.TrimSpace(dsn) == "" {
		// libpq's defaults (PGHOST, the local socket, the user's own
		// database) would put Stent's tables wherever they point.
		return nil, errors.New("opening postgres: no DSN given; pass one such as postgres://user@host:5432/db, or WithPool")
	}
	if pool == nil {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("parsing postgres DSN: %w", err)
		}
		if cfg.ConnConfig.ConnectTimeout == 0 {
			cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
		}
		if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
			cfg.ConnConfig.RuntimeParams["application_name"] = DefaultApplicationName
		}
		if cfg.MaxConns < int32(o.writers)+2 {
			cfg.MaxConns = int32(o.writers) + 2
		}
		pool, err = pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("opening postgres pool for %s: %w", serverAddr(cfg.ConnConfig), err)
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, fmt.Errorf("connecting to postgres at %s as %q: %w",
				serverAddr(cfg.ConnConfig), cfg.ConnConfig.User, err)
		}
		own = true
	}

	b := &Backend{
		pool:    pool,
		ownPool: own,
		schema:  o.schema,
		q:       q,
		opts:    o,
		logger:  logger,
		commits: newCommitCache(q),
	}
	return b, nil
}

// serverAddr names the server of cfg as host:port, for error messages.
func serverAddr(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

func validateSchema(name string) error {
	if name == "" || len(name) > maxIdentifierLength {
		return fmt.Errorf("validating schema name %q: must be 1 to %d bytes", name, maxIdentifierLength)
	}
	for i := range len(name) {
		if name[i] == 0 {
			return fmt.Errorf("validating schema name %q: contains NUL", name)
		}
	}
	return nil
}

// Schema returns the schema the backend's tables live in.
func (b *Backend) Schema() string { return b.schema }

// Pool returns the backend's connection pool, for callers that need to run
// their own statements (tests, administration). Do not close it.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// Close waits for queued writes to finish, then closes the pool unless it
// was passed with WithPool. Calls made after Close return
// persistence.ErrClosed. Close is idempotent and always returns nil.
func (b *Backend) Close() error {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		b.waitWritesDone()
		if b.ownPool {
			b.pool.Close()
		}
	})
	return nil
}

// checkOpen returns persistence.ErrClosed once Close has started.
func (b *Backend) checkOpen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return persistence.ErrClosed
	}
	return nil
}
