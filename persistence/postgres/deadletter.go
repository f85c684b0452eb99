package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// maxReplayDepth bounds the walk up a tree of failed parents, so that a
// corrupt parent cycle cannot loop forever.
const maxReplayDepth = 10_000

// ListDeadLetters returns up to limit dead letters (100 when 0), oldest first.
func (b *Backend) ListDeadLetters(ctx context.Context, limit int) ([]*persistence.DeadLetter, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	out, err := b.queryDeadLetters(ctx, qDeadLetterList, limit)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", interpretError(err))
	}
	return out, nil
}

// queryDeadLetters runs the dead-letter query named q and decodes its rows.
func (b *Backend) queryDeadLetters(ctx context.Context, q string, args ...any) ([]*persistence.DeadLetter, error) {
	var out []*persistence.DeadLetter
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, b.q[q], args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var row deadLetterRow
		dest := row.dest()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			d, err := row.decode()
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

// GetDeadLetter returns the dead letter with the given ID, or
// persistence.ErrNotFound (wrapped).
func (b *Backend) GetDeadLetter(ctx context.Context, id string) (*persistence.DeadLetter, error) {
	var row deadLetterRow
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qDeadLetterGet], id).Scan(row.dest()...)
	})
	if err != nil {
		return nil, fmt.Errorf("getting dead letter %s: %w", id, interpretError(err))
	}
	return row.decode()
}

// DeleteDeadLetter removes a dead letter, leaving its execution failed. It
// returns persistence.ErrNotFound (wrapped) when there is no such dead letter.
func (b *Backend) DeleteDeadLetter(ctx context.Context, id string) error {
	var n int64
	err := b.do(ctx, false, func(ctx context.Context) error {
		tag, err := b.pool.Exec(ctx, b.q[qDeadLetterDelete], id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("deleting dead letter %s: %w", id, interpretError(err))
	}
	if n == 0 {
		return fmt.Errorf("deleting dead letter %s: %w", id, persistence.ErrNotFound)
	}
	return nil
}

// ReplayDeadLetter removes the dead letter and makes its execution run again,
// in one transaction: status pending, attempts 0, error and output cleared,
// lease released (epoch kept), snapshot and failed journal outcomes removed.
// When the execution's parent recorded the failure at ParentPos, that entry
// goes back to an intent; a parent that had failed is replayed the same way
// (its dead letters removed), and so on up the tree. It returns the replayed
// execution, or persistence.ErrNotFound (wrapped) when there is no such dead
// letter.
func (b *Backend) ReplayDeadLetter(ctx context.Context, id string) (*persistence.Execution, error) {
	var replayed *persistence.Execution
	err := b.do(ctx, false, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			var execID string
			if err := tx.QueryRow(ctx, b.q[qDeadLetterTake], id).Scan(&execID); err != nil {
				return err
			}
			var err error
			replayed, err = b.replayExecution(ctx, tx, execID)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("replaying execution %s: %w", execID, persistence.ErrNotFound)
			}
			if err != nil {
				return err
			}
			child := replayed
			for range maxReplayDepth {
				if child.ParentID == "" {
					return nil
				}
				tag, err := tx.Exec(ctx, b.q[qJournalReopen], child.ParentID, int32(child.ParentPos))
				if err != nil {
					return fmt.Errorf("reopening journal entry %d of %s: %w", child.ParentPos, child.ParentID, err)
				}
				if tag.RowsAffected() == 0 {
					return nil
				}
				var parent execRow
				if err := tx.QueryRow(ctx, b.q[qExecutionGet], child.ParentID).Scan(parent.dest()...); err != nil {
					return fmt.Errorf("reading parent %s of %s: %w", child.ParentID, child.ID, err)
				}
				if persistence.Status(parent.status) != persistence.StatusFailed {
					return nil
				}
				if child, err = b.replayExecution(ctx, tx, child.ParentID); err != nil {
					return err
				}
			}
			return fmt.Errorf("replaying execution %s: parents nested deeper than %d", execID, maxReplayDepth)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("replaying dead letter %s: %w", id, interpretError(err))
	}
	return replayed, nil
}

// replayExecution resets execution id to run again and removes its
// snapshot, failed outcomes and dead letters, within tx.
func (b *Backend) replayExecution(ctx context.Context, tx pgx.Tx, id string) (*persistence.Execution, error) {
	var row execRow
	if err := tx.QueryRow(ctx, b.q[qExecutionReplay], id).Scan(row.dest()...); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, b.q[qExecutionReplayCleanup], id); err != nil {
		return nil, fmt.Errorf("cleaning up replayed execution %s: %w", id, err)
	}
	return row.decode()
}
