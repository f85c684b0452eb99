package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/persistence"
)

// readStmts are the prepared statements of the read pool (of the writer's
// connection for ":memory:").
type readStmts struct {
	db                                 preparerQueryer
	executionGet, journalLoad, nextRun *sql.Stmt
	deadLetterGet, deadLetterList      *sql.Stmt
	signalNext, cancelRequested        *sql.Stmt
	permitCount, lostLeases            *sql.Stmt
}

// preparerQueryer is a *sql.DB or a *sql.Conn.
type preparerQueryer interface {
	preparer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func prepareReads(ctx context.Context, p preparerQueryer) (*readStmts, error) {
	s := &readStmts{db: p}
	err := prepareAll(ctx, p, map[string]**sql.Stmt{
		"ExecutionGet":             &s.executionGet,
		"JournalLoad":              &s.journalLoad,
		"ExecutionNextRunAt":       &s.nextRun,
		"DeadLetterGet":            &s.deadLetterGet,
		"DeadLetterList":           &s.deadLetterList,
		"SignalNext":               &s.signalNext,
		"ExecutionCancelRequested": &s.cancelRequested,
		"PermitCount":              &s.permitCount,
		"ExecutionLostLeases":      &s.lostLeases,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *readStmts) close() error {
	return closeAll(s.executionGet, s.journalLoad, s.nextRun, s.deadLetterGet, s.deadLetterList,
		s.signalNext, s.cancelRequested, s.permitCount, s.lostLeases)
}

// read starts a read: it fails once Close has begun or before Init. A nil
// error must be paired with endRead.
func (b *Backend) read() (*readStmts, error) {
	if err := b.enter(); err != nil {
		return nil, err
	}
	rs := b.reads.Load()
	if rs == nil {
		b.leave()
		return nil, errNotInitialised
	}
	b.lockMem()
	return rs, nil
}

func (b *Backend) endRead() {
	b.unlockMem()
	b.leave()
}

// GetExecution returns execution id, or an error wrapping
// persistence.ErrNotFound. A row that does not decode gives an error naming
// the execution.
func (b *Backend) GetExecution(ctx context.Context, id string) (*persistence.Execution, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("getting execution %s: %w", id, err)
	}
	defer b.endRead()
	ex, err := scanExecution(rs.executionGet.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("getting execution %s: %w", id, err)
	}
	return ex, nil
}

// ListExecutions returns the executions matching f, newest first (by
// CreatedAt, then ID descending), at most f.Limit of them (100 when 0).
func (b *Backend) ListExecutions(ctx context.Context, f persistence.ListFilter) ([]*persistence.Execution, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT id, function, queue, status, input, output, error, parent_id, parent_pos, root_id,
       idempotency_key, attempts, priority, version, owner, lease_epoch, lease_expires_at,
       run_at, deadline, created_at, updated_at, cancel_requested, trace_context FROM stent_execution WHERE 1`)
	for _, c := range []struct{ col, val string }{
		{"status", string(f.Status)}, {"function", f.Function}, {"parent_id", f.ParentID}, {"queue", f.Queue},
		{"idempotency_key", f.IdempotencyKey},
	} {
		if c.val != "" {
			args = append(args, c.val)
			q.WriteString(" AND " + c.col + " = ?" + strconv.Itoa(len(args)))
		}
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since.UnixMilli())
		q.WriteString(" AND created_at >= ?" + strconv.Itoa(len(args)))
	}
	if !f.Until.IsZero() {
		args = append(args, f.Until.UnixMilli())
		q.WriteString(" AND created_at < ?" + strconv.Itoa(len(args)))
	}
	if f.BeforeID != "" {
		args = append(args, f.BeforeCreatedAt.UnixMilli(), f.BeforeID)
		n := len(args)
		q.WriteString(" AND (created_at, id) < (?" + strconv.Itoa(n-1) + ", ?" + strconv.Itoa(n) + ")")
	}
	args = append(args, int64(limit))
	q.WriteString(" ORDER BY created_at DESC, id DESC LIMIT ?" + strconv.Itoa(len(args)))

	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", err)
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", interpretError(err))
	}
	var out []*persistence.Execution
	for rows.Next() {
		// A row whose stored error does not decode is listed, its Error
		// saying so, instead of hiding every other row.
		ex, err := persistence.TolerateUndecodableError(scanExecution(rows))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("listing executions: %w", err), rows.Close())
		}
		out = append(out, ex)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("listing executions: %w", interpretError(err))
	}
	return out, nil
}

// LoadJournal returns the snapshot of execution id (nil if none) and its
// journal entries after the snapshot's position, in position order, both
// read from one consistent state of the database. An execution without a
// journal, or one that does not exist, gives nil, nil, nil.
func (b *Backend) LoadJournal(ctx context.Context, id string) (*persistence.Snapshot, []*persistence.JournalEntry, error) {
	rs, err := b.read()
	if err != nil {
		return nil, nil, fmt.Errorf("loading journal of %s: %w", id, err)
	}
	defer b.endRead()
	rows, err := rs.journalLoad.QueryContext(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("loading journal of %s: %w", id, interpretError(err))
	}
	var (
		snap    *persistence.Snapshot
		entries []*persistence.JournalEntry
	)
	for rows.Next() {
		s, je, err := scanJournalRow(rows, id)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("loading journal of %s: %w", id, err), rows.Close())
		}
		if s != nil {
			snap = s
		} else {
			entries = append(entries, je)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, fmt.Errorf("loading journal of %s: %w", id, interpretError(err))
	}
	return snap, entries, nil
}

// NextRunAt returns the earliest RunAt among the pending or waiting
// executions of queues (every queue when queues is empty) that hold no
// unexpired lease, or the zero time if there is none. The time returned may
// be in the past: such an execution is due now.
func (b *Backend) NextRunAt(ctx context.Context, queues []string) (time.Time, error) {
	return b.NextRunAtTagged(ctx, queues, nil)
}

// NextRunAtTagged is NextRunAt for a node that has tags: executions with a
// tag not among them are not counted.
func (b *Backend) NextRunAtTagged(ctx context.Context, queues, tags []string) (time.Time, error) {
	qs, err := queueFilter(queues)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next run time: %w", err)
	}
	ts, err := queueFilter(tags)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next run time: %w", err)
	}
	rs, err := b.read()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next run time: %w", err)
	}
	defer b.endRead()
	var at sql.NullInt64
	if err := rs.nextRun.QueryRowContext(ctx, nowMillis(), qs, ts).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("reading next run time: %w", interpretError(err))
	}
	return fromMillis(at), nil
}

// ListDeadLetters returns dead letters, oldest first, at most limit of them
// (100 when limit is 0 or less).
func (b *Backend) ListDeadLetters(ctx context.Context, limit int) ([]*persistence.DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	defer b.endRead()
	rows, err := rs.deadLetterList.QueryContext(ctx, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", interpretError(err))
	}
	var out []*persistence.DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("listing dead letters: %w", err), rows.Close())
		}
		out = append(out, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", interpretError(err))
	}
	return out, nil
}

// GetDeadLetter returns dead letter id, or an error wrapping
// persistence.ErrNotFound.
func (b *Backend) GetDeadLetter(ctx context.Context, id string) (*persistence.DeadLetter, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("getting dead letter %s: %w", id, err)
	}
	defer b.endRead()
	d, err := scanDeadLetter(rs.deadLetterGet.QueryRowContext(ctx, id))
	if err != nil {
		return nil, fmt.Errorf("getting dead letter %s: %w", id, err)
	}
	return d, nil
}
