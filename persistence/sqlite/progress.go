package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// The statements of persistence.Progress. They run seldom (a cached
// function's start and end, a counter's Add), so they are not prepared.
const (
	cacheGetSQL = `SELECT function, execution_id, output, expires_at FROM stent_cache
WHERE key = ? AND expires_at > ?`
	cachePutSQL = `INSERT INTO stent_cache (key, function, execution_id, output, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET function = excluded.function, execution_id = excluded.execution_id,
    output = excluded.output, expires_at = excluded.expires_at`
	cacheHitSetSQL = `INSERT INTO stent_cache_hit (execution_id, source_id) VALUES (?, ?)
ON CONFLICT (execution_id) DO UPDATE SET source_id = excluded.source_id`
	cacheHitDeleteSQL = `DELETE FROM stent_cache_hit WHERE execution_id = ?`
	// cachePurgeSQL deletes a few expired entries: each put pays for some.
	cachePurgeSQL = `DELETE FROM stent_cache WHERE key IN (SELECT key FROM stent_cache WHERE expires_at <= ? LIMIT 100)`
	counterOpSQL  = `INSERT INTO stent_counter_op (op_key, root_id) VALUES (?, ?) ON CONFLICT (op_key) DO NOTHING`
	counterAddSQL = `INSERT INTO stent_counter (root_id, name, value, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (root_id, name) DO UPDATE SET value = value + excluded.value, updated_at = excluded.updated_at`
	stateSetSQL = `INSERT INTO stent_state (execution_id, key, value, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (execution_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`
	countersGetSQL = `SELECT name, value FROM stent_counter WHERE root_id = ? ORDER BY name`
	stateGetSQL    = `SELECT key, value FROM stent_state WHERE execution_id = ? ORDER BY key`
	cacheHitGetSQL = `SELECT source_id FROM stent_cache_hit WHERE execution_id = ?`
)

// CacheGet returns the unexpired entry under key, or an error wrapping
// persistence.ErrNotFound.
func (b *Backend) CacheGet(ctx context.Context, key string) (*persistence.CacheEntry, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("reading cache entry %s: %w", key, err)
	}
	defer b.endRead()
	e := &persistence.CacheEntry{Key: key}
	var expires sql.NullInt64
	err = queryRow(ctx, rs.db, cacheGetSQL, []any{key, nowMillis()}, &e.Function, &e.ExecutionID, &e.Output, &expires)
	if err != nil {
		return nil, fmt.Errorf("reading cache entry %s: %w", key, interpretError(err))
	}
	e.ExpiresAt = fromMillis(expires)
	return e, nil
}

// CachePut stores e until ttl from now, and deletes up to 100 expired
// entries.
func (b *Backend) CachePut(ctx context.Context, e *persistence.CacheEntry, ttl time.Duration) error {
	if e == nil || e.Key == "" || e.ExecutionID == "" || ttl <= 0 {
		return errors.New("storing a cache entry: Key, ExecutionID and a positive ttl are required")
	}
	err := b.writeFunc(ctx, func(w *writer) error {
		now := nowMillis()
		if _, err := w.conn.ExecContext(bg, cachePurgeSQL, now); err != nil {
			return err
		}
		_, err := w.conn.ExecContext(bg, cachePutSQL, e.Key, e.Function, e.ExecutionID, nullBlob(e.Output),
			now+ttl.Milliseconds())
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
	err := b.writeFunc(ctx, func(w *writer) error {
		var err error
		if sourceID == "" {
			_, err = w.conn.ExecContext(bg, cacheHitDeleteSQL, executionID)
		} else {
			_, err = w.conn.ExecContext(bg, cacheHitSetSQL, executionID, sourceID)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("marking %s as cached from %q: %w", executionID, sourceID, interpretError(err))
	}
	return nil
}

// CounterAdd adds delta to counter name of tree rootID once per opKey.
func (b *Backend) CounterAdd(ctx context.Context, rootID, name, opKey string, delta float64) (bool, error) {
	if rootID == "" || name == "" || opKey == "" {
		return false, errors.New("adding to a counter: rootID, name and opKey are required")
	}
	var added bool
	err := b.writeFunc(ctx, func(w *writer) error {
		added = false
		res, err := w.conn.ExecContext(bg, counterOpSQL, opKey, rootID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		if _, err := w.conn.ExecContext(bg, counterAddSQL, rootID, name, delta, nowMillis()); err != nil {
			return err
		}
		added = true
		return nil
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
	err := b.writeFunc(ctx, func(w *writer) error {
		_, err := w.conn.ExecContext(bg, stateSetSQL, executionID, key, nullBlob(value), nowMillis())
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
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("reading progress of %s: %w", executionID, err)
	}
	defer b.endRead()
	p := &persistence.ExecutionProgress{Counters: map[string]float64{}, State: map[string][]byte{}}
	wrap := func(err error) error {
		return fmt.Errorf("reading progress of %s: %w", executionID, interpretError(err))
	}
	if err := queryPairs(ctx, rs.db, countersGetSQL, rootID, func(rows *sql.Rows) error {
		var name string
		var v float64
		if err := rows.Scan(&name, &v); err != nil {
			return err
		}
		p.Counters[name] = v
		return nil
	}); err != nil {
		return nil, wrap(err)
	}
	if err := queryPairs(ctx, rs.db, stateGetSQL, executionID, func(rows *sql.Rows) error {
		var key string
		var v []byte
		if err := rows.Scan(&key, &v); err != nil {
			return err
		}
		p.State[key] = v
		return nil
	}); err != nil {
		return nil, wrap(err)
	}
	err = queryRow(ctx, rs.db, cacheHitGetSQL, []any{executionID}, &p.CachedFrom)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, wrap(err)
	}
	return p, nil
}

// queryPairs runs query with arg and calls each for every row.
func queryPairs(ctx context.Context, db preparerQueryer, query, arg string, each func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, query, arg)
	if err != nil {
		return err
	}
	for rows.Next() {
		if err := each(rows); err != nil {
			return errors.Join(err, rows.Close())
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// queryRow scans the first row of query into dest, or returns
// sql.ErrNoRows.
func queryRow(ctx context.Context, db preparerQueryer, query string, args []any, dest ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if !rows.Next() {
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return errors.Join(rows.Scan(dest...), rows.Close())
}
