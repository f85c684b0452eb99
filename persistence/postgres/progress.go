package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// The statements of persistence.Progress, with {{table}} for the schema's
// tables. They run seldom (a cached function's start and end, a counter's
// Add), so they are built per call.
const (
	cacheGetSQL = `SELECT function, execution_id, output, expires_at FROM {{stent_cache}}
WHERE key = $1 AND expires_at > now()`
	cachePutSQL = `INSERT INTO {{stent_cache}} (key, function, execution_id, output, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1e6))
ON CONFLICT (key) DO UPDATE SET function = excluded.function, execution_id = excluded.execution_id,
    output = excluded.output, expires_at = excluded.expires_at`
	cacheHitSetSQL = `INSERT INTO {{stent_cache_hit}} (execution_id, source_id) VALUES ($1, $2)
ON CONFLICT (execution_id) DO UPDATE SET source_id = excluded.source_id`
	cacheHitDeleteSQL = `DELETE FROM {{stent_cache_hit}} WHERE execution_id = $1`
	// cachePurgeSQL deletes a few expired entries: each put pays for some.
	cachePurgeSQL = `DELETE FROM {{stent_cache}} WHERE key IN (SELECT key FROM {{stent_cache}} WHERE expires_at <= now() LIMIT 100)`
	// counterAddSQL adds once per op_key: the counter row is written only
	// when the op row was inserted, in one statement.
	counterAddSQL = `WITH op AS (
    INSERT INTO {{stent_counter_op}} (op_key, root_id) VALUES ($1, $2) ON CONFLICT (op_key) DO NOTHING RETURNING op_key
)
INSERT INTO {{stent_counter}} AS c (root_id, name, value, updated_at)
SELECT $2, $3, $4, now() FROM op
ON CONFLICT (root_id, name) DO UPDATE SET value = c.value + excluded.value, updated_at = excluded.updated_at`
	stateSetSQL = `INSERT INTO {{stent_state}} (execution_id, key, value, updated_at) VALUES ($1, $2, $3, now())
ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	countersGetSQL = `SELECT name, value FROM {{stent_counter}} WHERE root_id = $1 ORDER BY name`
	stateGetSQL    = `SELECT key, value FROM {{stent_state}} WHERE execution_id = $1 ORDER BY key`
	cacheHitGetSQL = `SELECT source_id FROM {{stent_cache_hit}} WHERE execution_id = $1`
)

// progressTables are the tables the statements above name.
var progressTables = []string{"stent_cache_hit", "stent_cache", "stent_counter_op", "stent_counter", "stent_state", "stent_execution_tag"}

// sql qualifies the tables of query with the backend's schema.
func (b *Backend) sql(query string) string {
	pairs := make([]string, 0, 2*len(progressTables))
	for _, t := range progressTables {
		pairs = append(pairs, "{{"+t+"}}", pgx.Identifier{b.schema, t}.Sanitize())
	}
	return strings.NewReplacer(pairs...).Replace(query)
}

// CacheGet returns the entry under key unexpired by the server's clock, or
// an error wrapping persistence.ErrNotFound.
func (b *Backend) CacheGet(ctx context.Context, key string) (*persistence.CacheEntry, error) {
	e := &persistence.CacheEntry{Key: key}
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.sql(cacheGetSQL), key).Scan(&e.Function, &e.ExecutionID, &e.Output, &e.ExpiresAt)
	})
	if err != nil {
		return nil, fmt.Errorf("reading cache entry %s: %w", key, interpretError(err))
	}
	e.ExpiresAt = e.ExpiresAt.UTC()
	return e, nil
}

// CachePut stores e until ttl from the server's clock, and deletes up to
// 100 expired entries.
func (b *Backend) CachePut(ctx context.Context, e *persistence.CacheEntry, ttl time.Duration) error {
	if e == nil || e.Key == "" || e.ExecutionID == "" || ttl <= 0 {
		return errors.New("storing a cache entry: Key, ExecutionID and a positive ttl are required")
	}
	err := b.do(ctx, true, func(ctx context.Context) error {
		if _, err := b.pool.Exec(ctx, b.sql(cachePurgeSQL)); err != nil {
			return err
		}
		_, err := b.pool.Exec(ctx, b.sql(cachePutSQL), e.Key, e.Function, e.ExecutionID, e.Output, ttl.Microseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("storing cache entry %s of %s: %w", e.Key, e.ExecutionID, interpretError(err))
	}
	return nil
}

// CacheMarkHit records (or, with an empty sourceID, removes) the cache mark
// of executionID.
func (b *Backend) CacheMarkHit(ctx context.Context, executionID, sourceID string) error {
	err := b.do(ctx, true, func(ctx context.Context) error {
		var err error
		if sourceID == "" {
			_, err = b.pool.Exec(ctx, b.sql(cacheHitDeleteSQL), executionID)
		} else {
			_, err = b.pool.Exec(ctx, b.sql(cacheHitSetSQL), executionID, sourceID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("marking %s as cached from %q: %w", executionID, sourceID, interpretError(err))
	}
	return nil
}

// CounterAdd adds delta to counter name of tree rootID once per opKey, in
// one statement (so a retry after a lost connection is harmless).
func (b *Backend) CounterAdd(ctx context.Context, rootID, name, opKey string, delta float64) (bool, error) {
	if rootID == "" || name == "" || opKey == "" {
		return false, errors.New("adding to a counter: rootID, name and opKey are required")
	}
	var added bool
	err := b.do(ctx, true, func(ctx context.Context) error {
		tag, err := b.pool.Exec(ctx, b.sql(counterAddSQL), opKey, rootID, name, delta)
		added = tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("adding to counter %q of %s: %w", name, rootID, interpretError(err))
	}
	return added, nil
}

// StateSet sets key of executionID's state to value.
func (b *Backend) StateSet(ctx context.Context, executionID, key string, value []byte) error {
	if executionID == "" || key == "" {
		return errors.New("setting state: executionID and key are required")
	}
	err := b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.sql(stateSetSQL), executionID, key, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("setting state %q of %s: %w", key, executionID, interpretError(err))
	}
	return nil
}

// ExecutionProgress returns tree rootID's counters, executionID's state and
// its cache mark.
func (b *Backend) ExecutionProgress(ctx context.Context, executionID, rootID string) (*persistence.ExecutionProgress, error) {
	var p *persistence.ExecutionProgress
	err := b.do(ctx, true, func(ctx context.Context) error {
		p = &persistence.ExecutionProgress{Counters: map[string]float64{}, State: map[string][]byte{}}
		rows, err := b.pool.Query(ctx, b.sql(countersGetSQL), rootID)
		if err != nil {
			return err
		}
		var name string
		var v float64
		if _, err := pgx.ForEachRow(rows, []any{&name, &v}, func() error { p.Counters[name] = v; return nil }); err != nil {
			return err
		}
		if rows, err = b.pool.Query(ctx, b.sql(stateGetSQL), executionID); err != nil {
			return err
		}
		var key string
		var val []byte
		if _, err := pgx.ForEachRow(rows, []any{&key, &val}, func() error {
			p.State[key] = append([]byte(nil), val...)
			return nil
		}); err != nil {
			return err
		}
		err = b.pool.QueryRow(ctx, b.sql(cacheHitGetSQL), executionID).Scan(&p.CachedFrom)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading progress of %s: %w", executionID, interpretError(err))
	}
	return p, nil
}
