package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/persistence"
)

// opKind is the kind of a write request.
type opKind uint8

const (
	opInit opKind = iota
	opCreate
	opApply
	opAcquire
	opClaim
	opRenew
	opRelease
	opReplay
	opDeleteDeadLetter
	opSendSignal
	opRequestCancel
	opAcquirePermit
	opReleasePermit
	opRenewPermits
	opFunc // a typed operation: fn runs on the writer's connection
)

// Spinning, see submit and next. Parking a goroutine and waking it again
// costs 10-20µs on a small virtual machine, about as much as a commit.
const (
	// spinWaiters is how many waiting callers may spin at once.
	spinWaiters = 1
	// callerSpin bounds a caller's spin: a commit or two.
	callerSpin = 200 * time.Microsecond
	// writerSpin bounds the idle writer's spin: long enough to catch the
	// next write of a workflow that runs its steps one after another
	// (about 0.1 ms after the last commit on a 2-core machine; with 50µs
	// the writer had parked, and waking it cost 10% of a step), short
	// enough to cost little CPU when writes are sparse (at most 0.2 ms of
	// yielding spin per commit).
	writerSpin = 200 * time.Microsecond
)

// request is one call queued for the writer. The caller fills the inputs,
// the writer the outputs, then signals done. Requests are pooled: a caller
// that gave up waiting (its context ended) leaves its request to the garbage
// collector instead of putting it back.
type request struct {
	op      opKind
	ctx     context.Context
	exec    *persistence.Execution
	commits []*persistence.Commit
	id      string
	owner   string
	queues  any // a JSON array of queue names, or nil for every queue
	// functions is a JSON array of function names, or nil for every
	// function (ClaimDue).
	functions any
	tags      any // a JSON array of the node's tags, or nil for none
	ttl       time.Duration
	limit     int
	signal    *persistence.Signal
	key       string
	fn        func(w *writer) error

	err     error
	errs    []error
	out     *persistence.Execution
	outs    []*persistence.Execution
	n       int
	seq     int64
	at      int64 // unix milliseconds
	created bool
	ok      bool

	done chan struct{}
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

func newRequest(ctx context.Context, op opKind) *request {
	r := requestPool.Get().(*request)
	r.op, r.ctx = op, ctx
	return r
}

// release clears r and returns it to the pool; r must have been answered.
func (r *request) release() {
	done := r.done
	*r = request{done: done}
	requestPool.Put(r)
}

// units is how many savepoints r takes: one per commit for Apply.
func (r *request) units() int {
	if r.op == opApply {
		return len(r.commits)
	}
	return 1
}

// writer owns the single write connection. One goroutine, loop, takes every
// queued request (up to maxBatch), runs them in one BEGIN IMMEDIATE ...
// COMMIT so that a failing unit of work rolls back only itself (see run),
// and then answers all of them: group commit.
type writer struct {
	conn       *sql.Conn
	mem        *sync.Mutex // the in-memory database's connection lock; nil for a file
	reqs       chan *request
	done       chan struct{}
	maxBatch   int
	migrations []migration
	clock      func() time.Time // WithClock: due times; nil is the host's

	begin, commit, rollback, savepoint, releaseSP, rollbackTo *sql.Stmt
	s                                                         *writeStmts // prepared by Init

	// waiting counts the callers waiting for an answer.
	waiting atomic.Int32
	// batches and requests count the transactions run and the requests
	// they held, for tests and benchmarks.
	batches, requests atomic.Int64
	// observer, if set, is told of each batch (SetCommitObserver).
	observer atomic.Pointer[persistence.CommitObserver]

	batch []*request
	// aborted is set when the transaction of the running batch is lost
	// (a failed savepoint rollback, an I/O error); nothing of the batch is
	// then reported as written.
	aborted error
	// rollbackAll is set when a lone unit failed without a savepoint: the
	// transaction is rolled back instead of committed.
	rollbackAll bool
}

func newWriter(ctx context.Context, conn *sql.Conn, mem *sync.Mutex, maxBatch int, migrations []migration) (*writer, error) {
	w := &writer{
		conn:       conn,
		mem:        mem,
		reqs:       make(chan *request, maxBatch),
		done:       make(chan struct{}),
		maxBatch:   maxBatch,
		migrations: migrations,
		batch:      make([]*request, 0, maxBatch),
	}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.savepoint, "SAVEPOINT unit"},
		{&w.releaseSP, "RELEASE unit"},
		{&w.rollbackTo, "ROLLBACK TO unit"},
	} {
		s, err := conn.PrepareContext(ctx, p.sql)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("preparing %s: %w", p.sql, err), w.close())
		}
		*p.dst = s
	}
	return w, nil
}

// submit queues r and waits for its answer. It returns ctx.Err() if ctx ends
// first; r may then still be written. The caller must hold Backend.enter.
func (w *writer) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	// A lone caller waits for its answer spinning, for a while: parking
	// and waking a goroutine costs more than a whole commit on a small
	// machine. With more callers waiting, spinning would take the CPU from
	// the writer, so they park at once.
	if w.waiting.Add(1) <= spinWaiters {
		var deadline time.Time
		for i := 0; ; i++ {
			select {
			case <-r.done:
				w.waiting.Add(-1)
				return nil
			default:
			}
			if i%16 == 0 {
				now := time.Now()
				if deadline.IsZero() {
					deadline = now.Add(callerSpin)
				} else if now.After(deadline) {
					break
				}
			}
			runtime.Gosched()
		}
	}
	defer w.waiting.Add(-1)
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop closes the queue and waits for the writer to finish what it holds.
// No submit may be running or start (Backend.Close guarantees it).
func (w *writer) stop() {
	close(w.reqs)
	<-w.done
}

// close closes the writer's statements and returns its connection to the
// pool; loop must have ended.
func (w *writer) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.savepoint, w.releaseSP, w.rollbackTo} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if w.s != nil {
		errs = append(errs, w.s.close())
	}
	errs = append(errs, w.conn.Close())
	return errors.Join(errs...)
}

func (w *writer) loop() {
	defer close(w.done)
	for {
		r, ok := w.next()
		if !ok {
			return
		}
		batch := append(w.batch[:0], r)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		start := time.Now()
		failed := w.run(batch)
		took := time.Since(start)
		w.batches.Add(1)
		w.requests.Add(int64(len(batch)))
		n := len(batch)
		for i, r := range batch {
			batch[i] = nil
			r.done <- struct{}{}
		}
		w.batch = batch[:0]
		if o := w.observer.Load(); o != nil {
			(*o).ObserveCommit(n, took, failed) // after the answers: no caller waits for it
		}
	}
}

// next returns the next request, spinning for a while before it parks: a
// caller that writes again right after its answer (a step's intent, then
// its outcome) finds the writer awake. It returns false once the queue is
// closed and empty.
func (w *writer) next() (*request, bool) {
	var deadline time.Time
	for i := 0; ; i++ {
		select {
		case r, ok := <-w.reqs:
			return r, ok
		default:
		}
		if i%16 == 0 {
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(writerSpin)
			} else if now.After(deadline) {
				break
			}
		}
		runtime.Gosched()
	}
	r, ok := <-w.reqs
	return r, ok
}

// run executes one batch in one transaction and fills in every answer. It
// reports whether the batch failed as a whole.
//
// A batch of several units runs first with no savepoints (two statements
// per unit, a good part of a small commit's cost): a unit rarely fails. If
// one does, the transaction is rolled back and the batch runs again, each
// unit inside its own savepoint, so that only the failing one is undone.
func (w *writer) run(batch []*request) (failed bool) {
	if w.mem != nil {
		w.mem.Lock()
		defer w.mem.Unlock()
	}
	// A schema initialisation or a typed operation (whose function may
	// keep what it read) runs once only.
	units, once := 0, false
	for _, r := range batch {
		units += r.units()
		once = once || r.op == opInit || r.op == opFunc
	}
	if units > 1 && !once {
		if failed, final := w.runOnce(batch, false, true); final {
			return failed
		}
		for _, r := range batch {
			r.reset()
		}
	}
	failed, _ = w.runOnce(batch, units > 1, false)
	return failed
}

// runOnce runs batch in one transaction, each unit in a savepoint with
// savepoints. With optimistic, a failing unit rolls the transaction back
// and runOnce returns final false: nothing is answered.
func (w *writer) runOnce(batch []*request, savepoints, optimistic bool) (failed, final bool) {
	ctx := context.Background()
	if _, err := w.begin.ExecContext(ctx); err != nil {
		w.failAll(batch, fmt.Errorf("beginning write transaction: %w", interpretError(err)))
		return true, true
	}
	w.aborted, w.rollbackAll = nil, false
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err // the caller has gone: write nothing for it
			continue
		}
		failedUnit := false
		if r.op == opApply {
			r.errs = make([]error, len(r.commits))
			for i := range r.commits {
				r.errs[i] = w.unit(ctx, savepoints, r, i)
				if r.errs[i] != nil && optimistic {
					failedUnit = true
					break
				}
			}
		} else {
			r.err = w.unit(ctx, savepoints, r, 0)
			failedUnit = r.err != nil
		}
		if failedUnit && optimistic {
			if _, err := w.rollback.ExecContext(ctx); err != nil && !isNoTransaction(err) {
				w.failAll(batch, fmt.Errorf("rolling back write transaction: %w", interpretError(err)))
				return true, true
			}
			return false, false
		}
		if w.aborted != nil {
			break
		}
	}
	end := w.commit
	if w.aborted != nil || w.rollbackAll {
		end = w.rollback
	}
	if _, err := end.ExecContext(ctx); err != nil {
		err = interpretError(err)
		if end == w.commit {
			// SQLite leaves the transaction open when COMMIT fails
			// with SQLITE_BUSY; roll it back so the next batch starts
			// clean.
			if _, rerr := w.rollback.ExecContext(ctx); rerr != nil && !isNoTransaction(rerr) {
				err = errors.Join(err, rerr)
			}
		} else if isNoTransaction(err) {
			err = nil // an error already rolled the transaction back
		}
		if err != nil {
			w.failAll(batch, fmt.Errorf("committing write transaction: %w", err))
			return true, true
		}
	}
	if w.aborted != nil {
		w.failAll(batch, w.aborted)
		return true, true
	}
	return false, true
}

// unit runs unit i of r, inside a savepoint when the batch holds more than
// one unit. A failure rolls back only this unit; without a savepoint (a lone
// unit) it rolls back the transaction.
func (w *writer) unit(ctx context.Context, savepoints bool, r *request, i int) error {
	if savepoints {
		if _, err := w.savepoint.ExecContext(ctx); err != nil {
			w.aborted = fmt.Errorf("opening savepoint: %w", interpretError(err))
			return w.aborted
		}
	}
	err := w.do(r, i)
	switch {
	case err == nil && savepoints:
		if _, rerr := w.releaseSP.ExecContext(ctx); rerr != nil {
			w.aborted = fmt.Errorf("releasing savepoint: %w", interpretError(rerr))
			return w.aborted
		}
	case err != nil && savepoints:
		if _, rerr := w.rollbackTo.ExecContext(ctx); rerr != nil {
			w.aborted = fmt.Errorf("rolling back savepoint after %w: %w", err, interpretError(rerr))
			return w.aborted
		}
		if _, rerr := w.releaseSP.ExecContext(ctx); rerr != nil {
			w.aborted = fmt.Errorf("releasing savepoint after %w: %w", err, interpretError(rerr))
			return w.aborted
		}
	case err != nil:
		w.rollbackAll = true
	}
	return err
}

// do dispatches unit i of r to its operation.
func (w *writer) do(r *request, i int) error {
	if r.op == opInit {
		return w.initSchema()
	}
	if w.s == nil {
		return errNotInitialised
	}
	var err error
	switch r.op {
	case opCreate:
		r.out, r.created, err = w.createExecution(r.exec)
	case opApply:
		err = w.applyCommit(r.commits[i])
	case opAcquire:
		r.out, err = w.acquireLease(r.id, r.owner, r.ttl)
	case opClaim:
		r.outs, err = w.claimDue(r.owner, r.queues, r.functions, r.tags, r.ttl, r.limit)
	case opRenew:
		r.n, err = w.renewLeases(r.owner, r.queues, r.ttl)
	case opRelease:
		err = w.releaseLeases(r.owner)
	case opReplay:
		r.out, err = w.replayDeadLetter(r.id)
	case opDeleteDeadLetter:
		err = w.deleteDeadLetter(r.id)
	case opSendSignal:
		r.out, r.seq, r.at, err = w.sendSignal(r.signal, r.limit)
	case opRequestCancel:
		r.outs, err = w.requestCancel(r.id)
	case opAcquirePermit:
		r.ok, err = w.acquirePermit(r.key, r.id, r.owner, r.limit, r.ttl)
	case opReleasePermit:
		err = w.releasePermit(r.key, r.id, r.owner)
	case opRenewPermits:
		r.n, err = w.renewPermits(r.owner, r.ttl, r.queues)
	case opFunc:
		err = r.fn(w)
	default:
		err = fmt.Errorf("sqlite: unknown write operation %d", r.op)
	}
	return err
}

// failAll reports err for every request of the batch, dropping any result.
// Requests skipped because their caller had gone get it too; nobody reads it.
func (w *writer) failAll(batch []*request, err error) {
	for _, r := range batch {
		r.reset()
		r.err = err
	}
}

// reset clears r's answer.
func (r *request) reset() {
	r.out, r.outs, r.n, r.created, r.errs, r.ok, r.err = nil, nil, 0, false, nil, false, nil
	r.seq, r.at = 0, 0
}

// isNoTransaction reports the error of a COMMIT or ROLLBACK that found no
// transaction open.
func isNoTransaction(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no transaction is active")
}

// initSchema applies the missing migrations and prepares the writer's
// statements. It runs inside the batch's transaction, so two processes that
// initialise one file at once are serialised by BEGIN IMMEDIATE.
// readOnly says what to do about SQLite's "attempt to write a readonly
// database"; other errors are returned as they are.
func readOnly(err error) error {
	if err != nil && strings.Contains(err.Error(), "readonly database") {
		return fmt.Errorf("the database file is read-only for this process (%w): give it write access to the file and its directory", err)
	}
	return err
}

func (w *writer) initSchema() error {
	ctx := context.Background()
	q, err := query("MigrationCreateTable")
	if err != nil {
		return err
	}
	if _, err := w.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("creating migration table: %w", readOnly(interpretError(err)))
	}
	// A write that changes nothing: a file this process cannot write
	// (its mode, an immutable attribute, a read-only mount) fails here,
	// not at the first Start.
	if _, err := w.conn.ExecContext(ctx, "DELETE FROM stent_migration WHERE version < 0"); err != nil {
		return fmt.Errorf("checking that the database can be written: %w", readOnly(interpretError(err)))
	}
	if q, err = query("MigrationVersion"); err != nil {
		return err
	}
	var version int
	if err := w.conn.QueryRowContext(ctx, q).Scan(&version); err != nil {
		return fmt.Errorf("reading schema version: %w", interpretError(err))
	}
	latest := w.migrations[len(w.migrations)-1].version
	if version > latest {
		return fmt.Errorf("database schema version %d is newer than version %d, the newest this build knows: %w",
			version, latest, persistence.ErrSchemaTooNew)
	}
	if q, err = query("MigrationInsert"); err != nil {
		return err
	}
	for _, m := range w.migrations[version:] {
		if _, err := w.conn.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, interpretError(err))
		}
		if _, err := w.conn.ExecContext(ctx, q, int64(m.version), time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("recording migration %s: %w", m.name, interpretError(err))
		}
	}
	if w.s == nil {
		s, err := prepareWrites(ctx, w.conn)
		if err != nil {
			return err
		}
		w.s = s
	}
	return nil
}
