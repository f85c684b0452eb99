// Package sqlite is the SQLite implementation of persistence.Backend, on
// modernc.org/sqlite (pure Go, no cgo). It suits one host: one process, or
// several processes sharing one database file.
//
// # Usage
//
//	b, err := sqlite.Open("stent.db")
//	if err != nil { ... }
//	defer b.Close()
//	if err := b.Init(ctx); err != nil { ... }
//
// Init must be called once per Backend before any other method; it creates
// or migrates the schema from the embedded migration/NNN_name.up.sql files,
// recorded in the stent_migration table, and is safe to call again or from
// several processes at once.
//
// # Durability
//
// The database runs in WAL mode. An acknowledged write has been committed
// to the write-ahead log. With the default synchronous mode NORMAL, the log
// is not synced at every commit: a commit survives a crash of the process
// (the operating system holds the written log) but the last commits may be
// lost on power loss or an operating-system crash; the database itself stays
// consistent. WithSynchronous("FULL") syncs the log at every commit and
// survives power loss, at the cost of one fsync per group commit.
// WithSynchronous("OFF") is for tests.
//
// # Writes and reads
//
// Every write goes through one writer goroutine that owns the only write
// connection. It takes every request queued (up to WithMaxBatch), runs them
// in one BEGIN IMMEDIATE ... COMMIT and then answers all callers: group
// commit, so many concurrent writers share one transaction. A refused or
// failing commit or operation rolls back only itself: the batch runs first
// with no savepoints, and if one fails, the transaction is rolled back and
// the batch runs again with each inside its own SAVEPOINT. Reads use a separate pool of connections that WAL lets
// run beside the writer. Several processes may share one file; their
// writers take turns on SQLite's write lock, waiting up to WithBusyTimeout.
//
// The path ":memory:" gives a private in-memory database, gone when the
// Backend is closed. It lives on one connection, which reads and the writer
// share in turn; it is meant for tests and examples.
//
// # Schema
//
// Tables are stent_execution, stent_journal (keyed by execution and
// position), stent_snapshot, stent_dead_letter, stent_signal (signals kept
// until consumed, ordered by an AUTOINCREMENT seq), stent_permit
// (concurrency permits by key and holder) and stent_migration. There
// are no foreign keys: nothing is ever deleted from stent_execution, and a
// child's outcome delivered to a parent row that is missing must not make
// the child's own commit fail.
//
// # Time
//
// Times are stored as INTEGER unix milliseconds, UTC, so they come back
// truncated to the millisecond. The backend's clock is this host's
// (time.Now().UTC()): due times and lease expiry are compared with it, and a
// row inserted leased (Execution.LeaseTTL) gets its expiry from it inside
// the write transaction, after any wait for the write lock.
// The run_at column of stent_execution is the execution's durable timer:
// ClaimDue leases an execution once run_at is reached, and NextRunAt
// reports the earliest one.
// WithClock gives due times a clock of their own (a test's): RunAfter is
// added to it and ClaimDue compares run_at with it, while leases keep the
// host's clock.
//
// # Coordination
//
// Signals, cancellation and permits write through the same writer as
// everything else, so each call is one transaction and the writer's order
// is the order of effects: signals get their seq in the order they commit,
// and permits of one key are granted one acquisition at a time, which is
// what keeps concurrent AcquirePermit calls (also from other processes,
// which take turns on SQLite's write lock) within the limit.
//
// # Fencing
//
// A Commit for an execution is checked first,
// against the row's lease_epoch; a stale one returns an error wrapping
// persistence.ErrStaleEpoch and writes nothing.
package sqlite
