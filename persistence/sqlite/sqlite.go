package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/stent-go/stent/persistence"
)

//go:embed migration/*.sql
var migrationFS embed.FS

var _ persistence.Backend = (*Backend)(nil)

// Defaults of the options.
const (
	// DefaultSynchronous survives a process crash; see the package doc.
	DefaultSynchronous = "NORMAL"
	// DefaultBusyTimeout is how long a connection waits for a lock held by
	// another process (another node on the same file) before failing.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultMaxBatch is how many queued write requests one transaction
	// takes at most.
	DefaultMaxBatch = 256
)

type config struct {
	synchronous string
	busyTimeout time.Duration
	maxBatch    int
	clock       func() time.Time // WithClock; nil is the host's
}

// validate checks and normalises the options in one place.
func (c *config) validate() error {
	c.synchronous = strings.ToUpper(c.synchronous)
	switch c.synchronous {
	case "NORMAL", "FULL", "OFF":
	default:
		return fmt.Errorf("invalid synchronous mode %q: want NORMAL, FULL or OFF", c.synchronous)
	}
	if c.busyTimeout < 0 {
		return fmt.Errorf("invalid busy timeout %s: must not be negative", c.busyTimeout)
	}
	if c.maxBatch < 1 {
		return fmt.Errorf("invalid max batch %d: must be at least 1", c.maxBatch)
	}
	return nil
}

// Option configures Open.
type Option func(*config)

// WithSynchronous sets SQLite's synchronous mode: "NORMAL" (the default),
// "FULL" or "OFF", case-insensitive. NORMAL survives a process crash but may
// lose the last commits on power loss; FULL survives power loss at the cost
// of an fsync per transaction; OFF may lose commits on an OS crash and is
// for tests. Any other value makes Open fail.
func WithSynchronous(mode string) Option {
	return func(c *config) { c.synchronous = mode }
}

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process before it fails with "database is locked". The default is
// DefaultBusyTimeout; a negative value makes Open fail.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithMaxBatch sets how many queued write requests the writer groups into
// one transaction at most. The default is DefaultMaxBatch; a value below 1
// makes Open fail.
func WithMaxBatch(n int) Option {
	return func(c *config) { c.maxBatch = n }
}

// Backend is the SQLite implementation of persistence.Backend. Create it
// with Open, call Init before anything else, and Close it when done. All
// methods are safe for concurrent use.
type Backend struct {
	path   string
	memory bool

	// mu guards closed. Every method holds it for reading for its whole
	// duration, so Close, which takes it for writing, waits for the calls in
	// flight, including the writes they have queued.
	mu     sync.RWMutex
	closed bool

	writeDB *sql.DB
	w       *writer

	// readDB is the pool of read connections; nil for ":memory:", whose
	// reads use the writer's connection under memMu.
	readDB *sql.DB
	memMu  *sync.Mutex

	initMu sync.Mutex
	reads  atomic.Pointer[readStmts]

	clock func() time.Time // WithClock: due times; nil is the host's
}

// Open opens, or creates with mode 0600, the SQLite database at path, and
// starts its writer goroutine. It checks that the file can be read as a
// SQLite database and puts it in WAL mode; it does not create the schema
// (call Init). The path ":memory:" opens a private in-memory database that
// lives as long as the Backend, on a single connection shared by reads and
// writes. Open fails with an error naming path when the file cannot be
// created or opened, is a directory, or is not a SQLite database.
func Open(path string, opts ...Option) (*Backend, error) {
	cfg := config{synchronous: DefaultSynchronous, busyTimeout: DefaultBusyTimeout, maxBatch: DefaultMaxBatch}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("opening sqlite database %s: %w", path, err)
	}
	if path == "" {
		return nil, errors.New("opening sqlite database: empty path")
	}
	b := &Backend{path: path, memory: path == ":memory:", clock: cfg.clock}
	if err := b.open(cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("opening sqlite database %s: %w", path, err), b.closeDBs())
	}
	go b.w.loop()
	return b, nil
}

func (b *Backend) open(cfg config) error {
	ctx := context.Background()
	params := "_pragma=busy_timeout(" + strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10) + ")"
	writeDSN := ":memory:?" + params
	if !b.memory {
		if err := createFile(b.path); err != nil {
			return err
		}
		uri, err := fileURI(b.path)
		if err != nil {
			return err
		}
		writeDSN = uri + "?" + params + "&_pragma=synchronous(" + cfg.synchronous + ")"
		b.readDB, err = sql.Open("sqlite", uri+"?"+params+"&_pragma=query_only(1)")
		if err != nil {
			return err
		}
		n := max(4, runtime.GOMAXPROCS(0))
		b.readDB.SetMaxOpenConns(n)
		b.readDB.SetMaxIdleConns(n)
	} else {
		b.memMu = new(sync.Mutex)
	}
	var err error
	b.writeDB, err = sql.Open("sqlite", writeDSN)
	if err != nil {
		return err
	}
	b.writeDB.SetMaxOpenConns(1)
	b.writeDB.SetMaxIdleConns(1)
	conn, err := b.writeDB.Conn(ctx)
	if err != nil {
		return interpretError(err)
	}
	if !b.memory {
		if err := enableWAL(ctx, conn, cfg.busyTimeout); err != nil {
			return errors.Join(err, conn.Close())
		}
		// A read connection must open too: this is where a file that
		// is not a database, or that cannot be read, shows.
		if err := b.readDB.PingContext(ctx); err != nil {
			return errors.Join(interpretError(err), conn.Close())
		}
		var n int
		if err := b.readDB.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			return errors.Join(interpretError(err), conn.Close())
		}
	}
	migrations, err := loadMigrations()
	if err != nil {
		return errors.Join(err, conn.Close())
	}
	b.w, err = newWriter(ctx, conn, b.memMu, cfg.maxBatch, migrations)
	if err != nil {
		return errors.Join(err, conn.Close())
	}
	b.w.clock = cfg.clock
	return nil
}

// createFile creates a missing database file with mode 0600, which SQLite
// then also gives its -wal and -shm files, and refuses a directory.
func createFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory")
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process created it first
	}
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}
	return f.Close()
}

// fileURI turns a path into a SQLite URI filename, escaping the characters
// that URIs reserve.
func fileURI(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file://" + r.Replace(filepath.ToSlash(abs)), nil
}

// enableWAL switches the database to WAL mode. The switch needs an exclusive
// lock, and SQLite does not always wait for it under busy_timeout, so it is
// retried until timeout when another process holds the file.
func enableWAL(ctx context.Context, conn *sql.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var mode string
		err := conn.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("enabling WAL: journal mode is %s", mode)
			}
			return nil
		}
		err = interpretError(err)
		if !strings.Contains(err.Error(), "locked") || time.Now().After(deadline) {
			return fmt.Errorf("enabling WAL: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// migration is one embedded migration file.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migration/NNN_name.up.sql in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migration")
	if err != nil {
		return nil, fmt.Errorf("reading migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 || !strings.HasSuffix(e.Name(), ".up.sql") {
			return nil, fmt.Errorf("reading migrations: bad file name %s", e.Name())
		}
		text, err := migrationFS.ReadFile("migration/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(text)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("reading migrations: %s: want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// enter starts a call: it fails with persistence.ErrClosed once Close has
// begun. A nil error must be paired with leave.
func (b *Backend) enter() error {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return persistence.ErrClosed
	}
	return nil
}

func (b *Backend) leave() { b.mu.RUnlock() }

// initBusyWait bounds how long Init waits for another process's write lock.
const initBusyWait = time.Minute

// Init creates the schema or migrates it to the newest embedded version, in
// one transaction, and prepares the backend's statements. It is idempotent,
// also when two processes call it at once on one file. It returns an error
// wrapping persistence.ErrSchemaTooNew, giving both versions, when the
// database was migrated by a newer version of Stent. It waits up to
// initBusyWait for a write lock another process holds.
func (b *Backend) Init(ctx context.Context) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	// Another process may hold the write lock for longer than the busy
	// timeout (a node stopped by SIGSTOP while it writes): a node that
	// starts then waits for it, up to initBusyWait, instead of failing.
	deadline := time.Now().Add(initBusyWait)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		r := newRequest(ctx, opInit)
		if err := b.w.submit(ctx, r); err != nil {
			return fmt.Errorf("initialising schema of %s: %w", b.path, err)
		}
		err := r.err
		r.release()
		if err == nil {
			break
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("initialising schema of %s: %w", b.path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("initialising schema of %s: %w (and the database was locked: %w)", b.path, ctx.Err(), err)
		case <-t.C:
		}
	}
	b.initMu.Lock()
	defer b.initMu.Unlock()
	if b.reads.Load() != nil {
		return nil
	}
	b.lockMem()
	defer b.unlockMem()
	var rs *readStmts
	var err error
	if b.memory {
		rs, err = prepareReads(ctx, b.w.conn)
	} else {
		rs, err = prepareReads(ctx, b.readDB)
	}
	if err != nil {
		return fmt.Errorf("initialising schema of %s: %w", b.path, err)
	}
	b.reads.Store(rs)
	return nil
}

// Close finishes the writes already queued, stops the writer and closes the
// database. Calls made after Close has begun return persistence.ErrClosed; a
// second Close returns nil.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.w.stop()
	var errs []error
	if rs := b.reads.Load(); rs != nil {
		errs = append(errs, rs.close())
	}
	errs = append(errs, b.w.close(), b.closeDBs())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing sqlite database %s: %w", b.path, err)
	}
	return nil
}

// closeDBs closes the connection pools that are open.
func (b *Backend) closeDBs() error {
	var errs []error
	if b.writeDB != nil {
		errs = append(errs, b.writeDB.Close())
	}
	if b.readDB != nil {
		errs = append(errs, b.readDB.Close())
	}
	return errors.Join(errs...)
}

// lockMem serialises a read with the writer on the single connection of an
// in-memory database; it does nothing for a file.
func (b *Backend) lockMem() {
	if b.memMu != nil {
		b.memMu.Lock()
	}
}

func (b *Backend) unlockMem() {
	if b.memMu != nil {
		b.memMu.Unlock()
	}
}
