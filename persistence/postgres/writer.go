package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/internal/retry"
	"github.com/stent-go/stent/persistence"
)

// writeOp is one statement of a group-commit batch: a Commit or an insert.
type writeOp struct {
	sql    string
	args   []any
	create bool   // an ExecutionInsert, else a Commit
	id     string // the execution, for error messages
	// lock makes the op lock its execution's row (ExecutionLock) in a
	// statement of its own first, so that the op's statement sees every
	// signal committed before it: a Commit that consumes a signal or
	// waits for one.
	lock bool
	// consume marks a Commit with ConsumeSignal, whose result also says
	// whether its epoch held.
	consume bool

	// Outcome, set once the batch holding the op committed or gave up.
	err       error
	fatal     bool    // err is the whole call's: context, connection
	ambiguous bool    // an earlier attempt may have committed
	fenced    bool    // a Commit's fence held
	epochHeld bool    // a consuming Commit's epoch held (so its signal was refused)
	created   bool    // an insert inserted
	found     bool    // an insert returned a row
	row       execRow // the row an insert returned
}

// writeRequest is what one caller hands group commit: its ops, settled
// together when done is closed.
type writeRequest struct {
	ctx  context.Context
	ops  []*writeOp
	done chan struct{}
}

// backoff spaces the retries of an operation after a connection loss.
var backoff = retry.Normalize(retry.Policy{
	InitialDelay: 5 * time.Millisecond,
	MaxDelay:     time.Second,
	Multiplier:   2,
	Jitter:       0.2,
})

// Apply writes each Commit atomically, fenced by its epoch, and returns one
// error per commit: nil, persistence.ErrStaleEpoch (wrapped) when the epoch
// is not the execution's current one, persistence.ErrNotFound (wrapped) when
// the execution does not exist, or a validation or database error. Commits
// from concurrent callers share transactions (group commit); a refused
// commit never affects the others. The returned error is ctx's error,
// persistence.ErrClosed, or a connection failure that outlasted the retries;
// then nothing tells which commits were written.
func (b *Backend) Apply(ctx context.Context, commits []*persistence.Commit) ([]error, error) {
	errs := make([]error, len(commits))
	ops := make([]*writeOp, 0, len(commits))
	index := make([]int, 0, len(commits))
	for i, c := range commits {
		sql, args, err := b.commits.build(c)
		if err != nil {
			errs[i] = err
			continue
		}
		waits := c.Update != nil && c.Update.Status == persistence.StatusWaiting && c.Update.WaitSignal != ""
		ops = append(ops, &writeOp{sql: sql, args: args, id: c.ExecutionID,
			lock: waits || c.ConsumeSignal != "", consume: c.ConsumeSignal != ""})
		index = append(index, i)
	}
	if len(ops) == 0 {
		return errs, b.checkOpen()
	}
	if err := b.write(ctx, ops); err != nil {
		return nil, err
	}
	for _, op := range ops {
		if op.err != nil && op.fatal {
			return nil, op.err
		}
	}
	exists, err := b.existing(ctx, ops)
	if err != nil {
		return nil, err
	}
	for j, op := range ops {
		i := index[j]
		switch {
		case op.err != nil:
			errs[i] = fmt.Errorf("applying commit of %s: %w", op.id, op.err)
		case op.fenced:
		case op.epochHeld:
			errs[i] = fmt.Errorf("applying commit of %s: consuming signal %s at position %d: no such unconsumed signal of %s: %w",
				op.id, commits[i].ConsumeSignal, commits[i].ConsumePos, op.id, persistence.ErrNotFound)
		case exists[op.id]:
			errs[i] = fmt.Errorf("applying commit of %s at epoch %d: %w", op.id, commits[i].Epoch, persistence.ErrStaleEpoch)
		default:
			errs[i] = fmt.Errorf("applying commit of %s: %w", op.id, persistence.ErrNotFound)
		}
	}
	return errs, nil
}

// existing reports which of the executions of the refused commits among ops
// exist, telling a stale epoch from a missing execution.
func (b *Backend) existing(ctx context.Context, ops []*writeOp) (map[string]bool, error) {
	var ids []string
	for _, op := range ops {
		if op.err == nil && !op.fenced && !op.epochHeld {
			ids = append(ids, op.id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	found := make(map[string]bool, len(ids))
	err := b.do(ctx, true, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.q[qExecutionExisting], ids)
		if err != nil {
			return err
		}
		for _, id := range ids {
			found[id] = false
		}
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			found[id] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("checking refused commits: %w", interpretError(err))
	}
	return found, nil
}

// CreateExecution inserts a root execution with status pending (unless
// e.Status is set), RootID its own ID (unless set), CreatedAt the server's
// clock (unless set) and UpdatedAt the server's clock. When its idempotency
// key is taken, the existing execution is returned with created false, or
// persistence.ErrIdempotencyConflict (wrapped) when its function or input
// differ; when its ID is taken, the existing execution is returned with
// created false, whatever its input. The insert shares a group-commit
// transaction with concurrent writes.
func (b *Backend) CreateExecution(ctx context.Context, e *persistence.Execution) (*persistence.Execution, bool, error) {
	if e == nil {
		return nil, false, errors.New("creating execution: nil")
	}
	if err := validateNew(e); err != nil {
		return nil, false, err
	}
	errJSON, err := encodeError(e.Error)
	if err != nil {
		return nil, false, fmt.Errorf("encoding error of %s: %w", e.ID, err)
	}
	op := &writeOp{
		sql:    b.q[qExecutionInsert],
		create: true,
		id:     e.ID,
		args:   executionInsertArgs(e, errJSON),
	}
	for range 3 {
		if err := b.write(ctx, []*writeOp{op}); err != nil {
			return nil, false, err
		}
		if op.err != nil && op.fatal {
			return nil, false, op.err
		}
		if op.err != nil {
			return nil, false, fmt.Errorf("creating execution %s: %w", e.ID, op.err)
		}
		if !op.found {
			// The row that took the ID or key was committed after the
			// insert's snapshot was taken: read it with a fresh one.
			row, ok, err := b.findConflict(ctx, e)
			if err != nil {
				return nil, false, err
			}
			if !ok { // its transaction rolled back: insert again
				continue
			}
			op.row = row
		}
		got, err := op.row.decode()
		if err != nil {
			return nil, false, err
		}
		if op.created {
			return got, true, nil
		}
		if op.ambiguous && sameRequest(got, e) {
			// An earlier attempt, cut off by a connection loss, inserted it.
			return got, true, nil
		}
		byKey := e.IdempotencyKey != "" && got.IdempotencyKey == e.IdempotencyKey
		if byKey && (got.Function != e.Function || !bytes.Equal(got.Input, e.Input)) {
			return got, false, fmt.Errorf("creating execution %s with idempotency key %q: existing execution %s runs %s: %w",
				e.ID, e.IdempotencyKey, got.ID, got.Function, persistence.ErrIdempotencyConflict)
		}
		return got, false, nil
	}
	return nil, false, fmt.Errorf("creating execution %s: the conflicting row keeps disappearing", e.ID)
}

// executionInsertArgs are the arguments of ExecutionInsert for e.
func executionInsertArgs(e *persistence.Execution, errJSON *string) []any {
	return []any{e.ID, e.Function, e.Queue, string(statusOrPending(e.Status)), e.Input, e.ParentID,
		int32(e.ParentPos), rootOf(e), nullString(e.IdempotencyKey), int32(e.Attempts), int32(e.Priority),
		e.Version, e.Owner, e.Epoch, timestamptz(e.LeaseExpiresAt), timestamptz(e.RunAt), timestamptz(e.Deadline),
		e.Output, errJSON, timestamptz(e.CreatedAt), leaseTTL(e), nullString(e.TraceContext)}
}

// sameRequest reports whether got is the row that inserting e makes.
func sameRequest(got, e *persistence.Execution) bool {
	return got.ID == e.ID && got.Function == e.Function && bytes.Equal(got.Input, e.Input) &&
		got.IdempotencyKey == e.IdempotencyKey && got.ParentID == e.ParentID && got.Queue == e.Queue
}

func (b *Backend) findConflict(ctx context.Context, e *persistence.Execution) (execRow, bool, error) {
	var row execRow
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qExecutionFindConflict], e.ID, nullString(e.IdempotencyKey)).Scan(row.dest()...)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("reading execution %s: %w", e.ID, interpretError(err))
	}
	return row, true, nil
}

// write hands ops to group commit and waits until they are settled or ctx
// ends. It returns ctx's error or persistence.ErrClosed; each op carries its
// own outcome.
//
// Group commit uses no goroutine of its own while idle: a caller that finds
// fewer than opts.writers batches in flight becomes a leader and writes the
// pending requests itself, its own among them, so that a lone caller pays no
// hand-off between goroutines. Callers that arrive meanwhile wait; when the
// leader's batch is done and more are pending, it passes leadership to a new
// goroutine, which writes them as the next batch.
func (b *Backend) write(ctx context.Context, ops []*writeOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeRequest{ctx: ctx, ops: ops, done: make(chan struct{})}
	// Enqueuing under mu's read lock means that once Close holds mu, every
	// write that got past the check is pending, and Close waits for it.
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return persistence.ErrClosed
	}
	b.wmu.Lock()
	b.pending = append(b.pending, req)
	lead := b.leaders < b.opts.writers
	if lead {
		b.leaders++
	}
	b.wmu.Unlock()
	b.mu.RUnlock()
	if lead {
		b.lead(req)
	}
	select {
	case <-req.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lead writes pending requests batch by batch. It returns once nothing is
// pending, or once own is settled, handing what is left to a new leader.
// A batch that has to be retried after a connection loss is finished by a
// new goroutine too, so that the caller can stop waiting when its ctx ends.
func (b *Backend) lead(own *writeRequest) {
	for {
		reqs := b.takeBatch()
		if reqs == nil {
			return
		}
		if !b.runBatch(reqs, own) {
			go func() {
				b.runBatch(reqs, nil)
				b.lead(nil)
			}()
			return
		}
		if own != nil && settled(own) {
			if !b.stepDownIfIdle() {
				go b.lead(nil)
			}
			return
		}
	}
}

// stepDownIfIdle ends a leader's turn when nothing is pending, saving the
// goroutine a handover would start, and reports whether it did.
func (b *Backend) stepDownIfIdle() bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if len(b.pending) > 0 {
		return false
	}
	b.stepDown()
	return true
}

// stepDown ends a leader's turn; wmu is held.
func (b *Backend) stepDown() {
	b.leaders--
	if b.leaders == 0 && b.idle != nil {
		close(b.idle)
		b.idle = nil
	}
}

func settled(r *writeRequest) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// takeBatch removes pending requests, up to opts.maxBatch ops (at least one
// request), for a leader to write. When nothing is pending, the leader
// steps down and takeBatch returns nil.
func (b *Backend) takeBatch() []*writeRequest {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if len(b.pending) == 0 {
		b.stepDown()
		return nil
	}
	n, ops := 0, 0
	for n < len(b.pending) && (n == 0 || ops+len(b.pending[n].ops) <= b.opts.maxBatch) {
		ops += len(b.pending[n].ops)
		n++
	}
	reqs := slices.Clone(b.pending[:n])
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	return reqs
}

// waitWritesDone waits until no batch is in flight or pending. Close calls
// it once no new write can start.
func (b *Backend) waitWritesDone() {
	b.wmu.Lock()
	if b.leaders == 0 && len(b.pending) == 0 {
		b.wmu.Unlock()
		return
	}
	if b.idle == nil {
		b.idle = make(chan struct{})
	}
	idle := b.idle
	b.wmu.Unlock()
	<-idle
}

// runBatch writes the ops of reqs in one transaction, retrying after a
// connection loss, and settles every op. Run by the caller of leader, a
// request of reqs, it makes one attempt, bounded by leader's context, and
// returns false, leaving reqs unsettled, when that attempt needs retrying
// or leader's context ended: the caller can then return.
func (b *Backend) runBatch(reqs []*writeRequest, leader *writeRequest) bool {
	start := time.Now()
	var pending []*writeOp
	owner := make(map[*writeOp]*writeRequest)
	for _, r := range reqs {
		for _, op := range r.ops {
			if op.err != nil { // refused by an earlier call's attempt
				continue
			}
			if err := r.ctx.Err(); err != nil {
				op.err, op.fatal = err, true
				continue
			}
			pending = append(pending, op)
			owner[op] = r
		}
	}
	// In execution order, so that concurrent batches lock rows in the same
	// order and rarely deadlock; stable, so that two commits of one
	// execution keep their order. A deadlock is retried all the same.
	slices.SortStableFunc(pending, func(x, y *writeOp) int { return strings.Compare(x.id, y.id) })
	for attempt := 1; len(pending) > 0; {
		parent := context.Background()
		if leader != nil {
			parent = leader.ctx
		}
		ctx, cancel := context.WithTimeout(parent, b.opts.retryTimeout)
		failed, err := b.sendBatch(ctx, pending)
		cancel()
		if err == nil {
			break
		}
		if leader != nil && leader.ctx.Err() != nil {
			for _, op := range pending {
				op.ambiguous = true
			}
			return false
		}
		if failed >= 0 {
			// One statement was refused: it fails alone, the rest go again.
			pending[failed].err = interpretError(err)
			pending = append(pending[:failed], pending[failed+1:]...)
			continue
		}
		if !retryable(err) || time.Since(start) > b.opts.retryTimeout {
			for _, op := range pending {
				op.err, op.fatal = fmt.Errorf("writing to postgres: %w", interpretError(err)), true
			}
			break
		}
		if !notApplied(err) {
			for _, op := range pending {
				op.ambiguous = true
			}
		}
		if leader != nil {
			return false
		}
		b.logger.Warn("postgres write failed, retrying",
			slog.String("schema", b.schema), slog.Int("attempt", attempt),
			slog.Int("ops", len(pending)), slog.String("error", err.Error()))
		time.Sleep(b.retryDelay(attempt, err))
		attempt++
		kept := pending[:0]
		for _, op := range pending {
			if err := owner[op].ctx.Err(); err != nil {
				op.err, op.fatal = err, true
				continue
			}
			kept = append(kept, op)
		}
		pending = kept
	}
	took := time.Since(start)
	o := b.observer.Load()
	failed := false
	if o != nil {
		for _, r := range reqs {
			for _, op := range r.ops {
				failed = failed || op.fatal
			}
		}
	}
	for _, r := range reqs {
		close(r.done)
	}
	if o != nil {
		(*o).ObserveCommit(len(reqs), took, failed) // after the answers: no caller waits for it
	}
	return true
}

// opResult is an op's outcome while its transaction is not yet committed.
type opResult struct {
	fenced, epochHeld, created, found bool
	row                               execRow
}

// sendBatch sends ops as one pipelined batch, which PostgreSQL runs as one
// implicit transaction. When a statement raises an error that is its own
// (not the connection's), it returns that statement's index; else -1.
func (b *Backend) sendBatch(ctx context.Context, ops []*writeOp) (int, error) {
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return -1, err
	}
	defer conn.Release()
	batch := &pgx.Batch{}
	for _, op := range ops {
		if op.lock {
			batch.Queue(b.q[qExecutionLock], op.id)
		}
		batch.Queue(op.sql, op.args...)
	}
	results := make([]opResult, len(ops))
	br := conn.SendBatch(ctx, batch)
	for i, op := range ops {
		r := &results[i]
		if op.lock {
			_, err = br.Exec()
		}
		switch {
		case err != nil:
		case op.create:
			err = br.QueryRow().Scan(append([]any{&r.created}, r.row.dest()...)...)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			} else {
				r.found = err == nil
			}
		default:
			err = br.QueryRow().Scan(&r.fenced, &r.epochHeld)
			r.epochHeld = r.epochHeld && !r.fenced
		}
		if err != nil {
			// Close reports the same error: the batch rolled back.
			if closeErr := br.Close(); closeErr != nil && !statementError(closeErr) {
				return -1, closeErr
			}
			if statementError(err) {
				return i, err
			}
			return -1, err
		}
	}
	if err := br.Close(); err != nil {
		return -1, err
	}
	for i, op := range ops {
		r := &results[i]
		op.fenced, op.epochHeld, op.created, op.found, op.row = r.fenced, r.epochHeld, r.created, r.found, r.row
	}
	return -1, nil
}
