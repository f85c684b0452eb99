package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/stent-go/stent/persistence"
)

const (
	tagInsertSQL = `INSERT INTO stent_execution_tag (execution_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING`
	tagListSQL   = `SELECT tag FROM stent_execution_tag WHERE execution_id = ? ORDER BY tag`
)

// SetExecutionTags records the tags execution id needs, before its row is
// inserted.
func (b *Backend) SetExecutionTags(ctx context.Context, id string, tags []string) error {
	if id == "" {
		return errors.New("setting execution tags: the execution ID is empty")
	}
	if len(tags) == 0 {
		return nil
	}
	err := b.writeFunc(ctx, func(w *writer) error {
		for _, t := range tags {
			if _, err := w.conn.ExecContext(bg, tagInsertSQL, id, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("setting tags of %s: %w", id, interpretError(err))
	}
	return nil
}

// ExecutionTags returns the tags of execution id, sorted.
func (b *Backend) ExecutionTags(ctx context.Context, id string) ([]string, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("reading tags of %s: %w", id, err)
	}
	defer b.endRead()
	var out []string
	err = queryPairs(ctx, rs.db, tagListSQL, id, func(rows *sql.Rows) error {
		var t string
		if err := rows.Scan(&t); err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tags of %s: %w", id, interpretError(err))
	}
	return out, nil
}

var _ persistence.Tagging = (*Backend)(nil)
