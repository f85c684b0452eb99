package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// defaultLimit is the row limit of a list call that passes 0.
const defaultLimit = 100

// GetExecution returns the execution with the given ID, or
// persistence.ErrNotFound (wrapped).
func (b *Backend) GetExecution(ctx context.Context, id string) (*persistence.Execution, error) {
	var row execRow
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qExecutionGet], id).Scan(row.dest()...)
	})
	if err != nil {
		return nil, fmt.Errorf("getting execution %s: %w", id, interpretError(err))
	}
	return row.decode()
}

// ListExecutions returns the executions matching f, newest first, at most
// f.Limit (100 when 0).
func (b *Backend) ListExecutions(ctx context.Context, f persistence.ListFilter) ([]*persistence.Execution, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultLimit
	}
	var q strings.Builder
	q.WriteString(b.q[qExecutionList])
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	for _, c := range []struct{ col, val string }{
		{"status", string(f.Status)}, {"function", f.Function}, {"parent_id", f.ParentID}, {"queue", f.Queue},
		{"idempotency_key", f.IdempotencyKey},
	} {
		if c.val != "" {
			q.WriteString(" AND " + c.col + " = " + arg(c.val))
		}
	}
	if !f.Since.IsZero() {
		q.WriteString(" AND created_at >= " + arg(f.Since))
	}
	if !f.Until.IsZero() {
		q.WriteString(" AND created_at < " + arg(f.Until))
	}
	if f.BeforeID != "" {
		q.WriteString(" AND (created_at, id) < (" + arg(f.BeforeCreatedAt) + ", " + arg(f.BeforeID) + ")")
	}
	q.WriteString(" ORDER BY created_at DESC, id DESC LIMIT " + arg(limit))
	var out []*persistence.Execution
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		out, err = collectExecutions(rows, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing executions: %w", interpretError(err))
	}
	return out, nil
}

// collectExecutions scans and decodes every row of rows. A row that does not
// decode fails the call with an error naming its execution, except, for
// claimed or listed rows (tolerant), one whose only fault is its stored
// error.
func collectExecutions(rows pgx.Rows, tolerant bool) ([]*persistence.Execution, error) {
	defer rows.Close()
	var out []*persistence.Execution
	var row execRow
	dest := row.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		e, err := row.decode()
		if tolerant {
			// A claimed row is leased to the caller already: one whose
			// stored error does not decode runs all the same (that error
			// is only the last attempt's), instead of failing the claim of
			// the whole batch, every time, until the row is mended. A
			// listed one is shown, saying so, instead of hiding the rest.
			e, err = persistence.TolerateUndecodableError(e, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LoadJournal returns the execution's snapshot (nil if none) and its journal
// entries after the snapshot's position, in position order, read from one
// consistent snapshot of the database. An execution without a journal gives
// nil, nil.
func (b *Backend) LoadJournal(ctx context.Context, id string) (*persistence.Snapshot, []*persistence.JournalEntry, error) {
	var snap *persistence.Snapshot
	var entries []*persistence.JournalEntry
	err := b.do(ctx, true, func(ctx context.Context) error {
		snap, entries = nil, nil
		batch := &pgx.Batch{}
		batch.Queue(b.q[qJournalLoadBegin])
		batch.Queue(b.q[qSnapshotGet], id)
		batch.Queue(b.q[qJournalList], id)
		batch.Queue(b.q[qJournalLoadEnd])
		br := b.pool.SendBatch(ctx, batch)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		s := &persistence.Snapshot{ExecutionID: id}
		var pos int32
		switch err := br.QueryRow().Scan(&pos, &s.Data); {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			s.Position = int(pos)
			snap = s
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var row journalRow
		dest := row.dest()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			e, err := row.decode(id)
			if err != nil {
				rows.Close()
				return err
			}
			entries = append(entries, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("loading journal of %s: %w", id, interpretError(err))
	}
	return snap, entries, nil
}

// AcquireLease takes the lease of execution id for owner, for ttl from the
// server's clock, when it is free, expired or already owner's and the
// execution is not terminal: the epoch goes up by one, the status becomes
// running and RunAt is cleared. It returns the leased execution,
// persistence.ErrLeaseHeld or persistence.ErrNotFound (wrapped).
func (b *Backend) AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (*persistence.Execution, error) {
	if owner == "" {
		return nil, fmt.Errorf("acquiring lease of %s: empty owner", id)
	}
	var acquired bool
	var row execRow
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qLeaseAcquire], id, owner, ttl.Microseconds()).
			Scan(append([]any{&acquired}, row.dest()...)...)
	})
	if err != nil {
		return nil, fmt.Errorf("acquiring lease of %s: %w", id, interpretError(err))
	}
	e, err := persistence.TolerateUndecodableError(row.decode()) // a claim, as in ClaimDue
	if err != nil {
		return nil, err
	}
	if !acquired {
		return nil, fmt.Errorf("acquiring lease of %s (%s, owner %q): %w", id, e.Status, e.Owner, persistence.ErrLeaseHeld)
	}
	return e, nil
}

// ClaimDue leases up to limit due executions of queues to owner, for ttl
// from the server's clock: pending, running or waiting, RunAt reached (or,
// pending and running, no RunAt), and no owner or an expired lease. Nil or
// empty queues select every queue; nil functions every function, and an
// empty non-nil functions none. Higher priority and older executions
// come first, and are returned in that order. Concurrent claimers skip each
// other's candidates (FOR UPDATE SKIP LOCKED), so they never get the same
// execution. A call cut off by a connection loss after reaching the server
// is not retried: its claims, if made, lapse when ttl runs out.
func (b *Backend) ClaimDue(ctx context.Context, owner string, queues, functions []string, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	return b.ClaimDueTagged(ctx, owner, queues, functions, nil, ttl, limit)
}

// ClaimDueTagged is ClaimDue for a node that has tags: an execution with a
// tag not among them is left to other nodes (tags.go).
func (b *Backend) ClaimDueTagged(ctx context.Context, owner string, queues, functions, tags []string, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	if owner == "" {
		return nil, errors.New("claiming due executions: empty owner")
	}
	if limit <= 0 || (functions != nil && len(functions) == 0) {
		return nil, nil
	}
	var out []*persistence.Execution
	err := b.do(ctx, false, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.q[qLeaseClaimDue], owner, nullQueues(queues), ttl.Microseconds(), limit, functions, nullQueues(tags))
		if err != nil {
			return err
		}
		out, err = collectExecutions(rows, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claiming due executions for %s: %w", owner, interpretError(err))
	}
	slices.SortFunc(out, func(a, b *persistence.Execution) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// nullQueues passes an empty queue list as NULL: every queue.
func nullQueues(queues []string) []string {
	if len(queues) == 0 {
		return nil
	}
	return queues
}

// RenewLeases extends the leases owner holds on the executions ids to ttl
// from the server's clock and returns how many it extended.
func (b *Backend) RenewLeases(ctx context.Context, owner string, ids []string, ttl time.Duration) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		tag, err := b.pool.Exec(ctx, b.q[qLeaseRenew], owner, ttl.Microseconds(), ids)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("renewing leases of %s: %w", owner, interpretError(err))
	}
	return int(n), nil
}

// ReleaseLeases gives up every lease owner holds: the owner is cleared and
// the lease expires now, keeping the epoch.
func (b *Backend) ReleaseLeases(ctx context.Context, owner string) error {
	err := b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.q[qLeaseRelease], owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("releasing leases of %s: %w", owner, interpretError(err))
	}
	return nil
}

// NextRunAt returns the earliest RunAt of the pending or waiting executions
// of queues (every queue when empty) without an unexpired lease, or the zero
// time when there is none.
func (b *Backend) NextRunAt(ctx context.Context, queues []string) (time.Time, error) {
	return b.NextRunAtTagged(ctx, queues, nil)
}

// NextRunAtTagged is NextRunAt for a node that has tags: executions with a
// tag not among them are not counted.
func (b *Backend) NextRunAtTagged(ctx context.Context, queues, tags []string) (time.Time, error) {
	var t *time.Time
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qExecutionNextRunAt], nullQueues(queues), nullQueues(tags)).Scan(&t)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next run time: %w", interpretError(err))
	}
	return utc(t), nil
}
