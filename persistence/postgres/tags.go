package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

const (
	tagInsertSQL = `INSERT INTO {{stent_execution_tag}} (execution_id, tag)
SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING`
	tagListSQL = `SELECT tag FROM {{stent_execution_tag}} WHERE execution_id = $1 ORDER BY tag`
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
	err := b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.sql(tagInsertSQL), id, tags)
		return err
	})
	if err != nil {
		return fmt.Errorf("setting tags of %s: %w", id, interpretError(err))
	}
	return nil
}

// ExecutionTags returns the tags of execution id, sorted.
func (b *Backend) ExecutionTags(ctx context.Context, id string) ([]string, error) {
	var out []string
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = nil
		rows, err := b.pool.Query(ctx, b.sql(tagListSQL), id)
		if err != nil {
			return err
		}
		var t string
		_, err = pgx.ForEachRow(rows, []any{&t}, func() error { out = append(out, t); return nil })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading tags of %s: %w", id, interpretError(err))
	}
	return out, nil
}

var _ persistence.Tagging = (*Backend)(nil)
