package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/stent-go/stent/persistence"
)

// This file implements persistence.Operations: counts, retention, the node
// registry and the timed journal.

// The statements of persistence.Operations. They run rarely (an operator's
// command, a sweep, a heartbeat), so they are not prepared.
const (
	// statsSQL reads the finished counts the triggers of migration 006_stats
	// keep, and counts the live executions (few) from their rows, in one
	// statement: one snapshot of the database.
	statsSQL = `SELECT status, function, queue, count, NULL, 0, NULL FROM stent_stats_finished WHERE count > 0
UNION ALL
SELECT status, function, queue, count(*), min(created_at),
       sum(CASE WHEN status = 'pending' AND (run_at IS NULL OR run_at <= ?1) THEN 1 ELSE 0 END),
       min(CASE WHEN status = 'pending' AND (run_at IS NULL OR run_at <= ?1) THEN created_at END)
FROM stent_execution WHERE status IN ('pending', 'running', 'waiting')
GROUP BY status, function, queue`
	queueDepthSQL = `SELECT count(*) FROM stent_execution
WHERE status IN ('pending', 'running', 'waiting') AND queue = ?1
  AND ((status IN ('pending', 'running') AND (run_at IS NULL OR run_at <= ?3))
       OR (status = 'waiting' AND run_at <= ?3))
  AND (owner IS NULL OR owner = '' OR lease_expires_at < ?2)`
	deadLettersOfSQL = `SELECT id, execution_id, function, input, error, attempts, created_at
FROM stent_dead_letter WHERE execution_id = ?1 ORDER BY created_at, id`
	journalEntriesSQL = `SELECT position, kind, name, child_id, fire_at, done, output, error, started_at, ended_at,
       input, attempts
FROM stent_journal WHERE execution_id = ?1 ORDER BY position`
	// cleanupRootsSQL picks finished roots whose tree holds no live
	// execution (live rows are few, indexed by status, and name their
	// root); cleanupTreeSQL walks their trees by parent_id, leaving out a
	// tree that holds a live execution all the same (a wrong root_id).
	cleanupRootsSQL = `SELECT id FROM stent_execution
WHERE parent_id IS NULL AND status IN ('completed', 'failed', 'canceled', 'timed_out') AND updated_at < ?1
  AND id NOT IN (SELECT root_id FROM stent_execution WHERE status IN ('pending', 'running', 'waiting'))
ORDER BY updated_at LIMIT ?2`
	cleanupTreeSQL = `WITH RECURSIVE walk(root, id, status) AS (
    SELECT id, id, status FROM stent_execution WHERE id IN (SELECT value FROM json_each(?1))
    UNION
    SELECT w.root, e.id, e.status FROM stent_execution e JOIN walk w ON e.parent_id = w.id)
SELECT id FROM walk
WHERE root NOT IN (SELECT root FROM walk WHERE status IN ('pending', 'running', 'waiting'))`
	nodeUpsertSQL = `INSERT INTO stent_node (id, addresses, functions, queues, version, started_at, heartbeat_at, expires_at, tags)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (id) DO UPDATE SET
    addresses = excluded.addresses, functions = excluded.functions, queues = excluded.queues, tags = excluded.tags,
    version = excluded.version, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`
	nodePurgeSQL  = `DELETE FROM stent_node WHERE heartbeat_at < ?1`
	nodeDeleteSQL = `DELETE FROM stent_node WHERE id = ?1`
	nodeListSQL   = `SELECT id, addresses, functions, queues, version, started_at, heartbeat_at, expires_at, tags
FROM stent_node ORDER BY id`
	cacheHitsSQL = `SELECT e.function, count(*) FROM stent_cache_hit h
JOIN stent_execution e ON e.id = h.execution_id
GROUP BY e.function`
	leaseCountSQL = `SELECT owner, count(*) FROM stent_execution
WHERE owner IS NOT NULL AND owner <> '' AND lease_expires_at > ?1
  AND status IN ('pending', 'running', 'waiting')
GROUP BY owner`
)

// cleanupTables are the tables Cleanup deletes a finished tree's rows from,
// each with its execution column; stent_execution last.
var cleanupTables = []string{
	"DELETE FROM stent_journal WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_snapshot WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_signal WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_dead_letter WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_state WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_cache_hit WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_execution_tag WHERE execution_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_counter WHERE root_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_counter_op WHERE root_id IN (SELECT value FROM json_each(?1))",
	"DELETE FROM stent_execution WHERE id IN (SELECT value FROM json_each(?1))",
}

// nodeStale is how old a node's heartbeat gets before UpsertNode drops it.
const nodeStale = time.Hour

// query runs a read on the read pool and calls each for every row.
func (b *Backend) query(ctx context.Context, q string, args []any, each func(*sql.Rows) error) error {
	rs, err := b.read()
	if err != nil {
		return err
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, q, args...)
	if err != nil {
		return interpretError(err)
	}
	for rows.Next() {
		if err := each(rows); err != nil {
			return errors.Join(err, rows.Close())
		}
	}
	return interpretError(errors.Join(rows.Err(), rows.Close()))
}

// Stats counts the executions by status, function and queue. The terminal
// counts come from stent_stats_finished, which triggers keep; the live
// ones, few, from their rows. Both are read in one read transaction.
func (b *Backend) Stats(ctx context.Context) (*persistence.Stats, error) {
	now := nowMillis()
	st := &persistence.Stats{At: time.UnixMilli(now).UTC()}
	err := b.query(ctx, statsSQL, []any{dueNow(b.clock)}, func(rows *sql.Rows) error {
		var g persistence.StatsGroup
		var status string
		var count, due int64
		var oldest, oldestDue sql.NullInt64
		if err := rows.Scan(&status, &g.Function, &g.Queue, &count, &oldest, &due, &oldestDue); err != nil {
			return err
		}
		g.Status, g.Count, g.OldestCreatedAt = persistence.Status(status), int(count), fromMillis(oldest)
		g.Due, g.OldestDue = int(due), fromMillis(oldestDue)
		st.Groups = append(st.Groups, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counting executions: %w", err)
	}
	return st, nil
}

// QueueDepth returns how many executions of queue are due and not leased.
func (b *Backend) QueueDepth(ctx context.Context, queue string) (int, error) {
	var n int64
	err := b.query(ctx, queueDepthSQL, []any{queue, nowMillis(), dueNow(b.clock)}, func(rows *sql.Rows) error { return rows.Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("counting queue %q: %w", queue, err)
	}
	return int(n), nil
}

// DeadLettersOf returns the dead letters of executionID, oldest first.
func (b *Backend) DeadLettersOf(ctx context.Context, executionID string) ([]*persistence.DeadLetter, error) {
	var out []*persistence.DeadLetter
	err := b.query(ctx, deadLettersOfSQL, []any{executionID}, func(rows *sql.Rows) error {
		d, err := scanDeadLetter(rows)
		if err == nil {
			out = append(out, d)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing dead letters of %s: %w", executionID, err)
	}
	return out, nil
}

// JournalEntries returns every journal entry of executionID with its times.
func (b *Backend) JournalEntries(ctx context.Context, executionID string) ([]*persistence.JournalEntry, error) {
	var out []*persistence.JournalEntry
	err := b.query(ctx, journalEntriesSQL, []any{executionID}, func(rows *sql.Rows) error {
		var (
			pos                    int64
			kind, name, child      string
			fireAt, started, ended sql.NullInt64
			done                   bool
			output, input          []byte
			errText                sql.NullString
			attempts               sql.NullInt64
		)
		if err := rows.Scan(&pos, &kind, &name, &child, &fireAt, &done, &output, &errText, &started, &ended,
			&input, &attempts); err != nil {
			return err
		}
		je := &persistence.JournalEntry{ExecutionID: executionID, Position: int(pos), Kind: persistence.EntryKind(kind),
			Name: name, ChildID: child, FireAt: fromMillis(fireAt), Done: done, Output: output,
			StartedAt: fromMillis(started), EndedAt: fromMillis(ended), Input: input, Attempts: int(attempts.Int64)}
		var err error
		if je.Error, err = decodeError(errText); err != nil {
			return fmt.Errorf("decoding error of journal entry %d: %w", pos, err)
		}
		out = append(out, je)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading journal of %s: %w", executionID, err)
	}
	return out, nil
}

// writeFunc runs fn on the writer's connection in a transaction of its own
// batch, as one unit.
func (b *Backend) writeFunc(ctx context.Context, fn func(w *writer) error) error {
	r := newRequest(ctx, opFunc)
	r.fn = fn
	if err := b.write(ctx, r); err != nil {
		return err
	}
	err := r.err
	r.release()
	return err
}

// CacheHitsByFunction counts the executions whose result came from the
// cache, by function.
func (b *Backend) CacheHitsByFunction(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := b.query(ctx, cacheHitsSQL, nil, func(rows *sql.Rows) error {
		var fn string
		var n int64
		if err := rows.Scan(&fn, &n); err != nil {
			return err
		}
		out[fn] = int(n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counting cache hits: %w", err)
	}
	return out, nil
}

// Cleanup deletes up to limit finished trees (by their roots) updated
// before before, with their journals, snapshots, signals and dead letters,
// in one write transaction. It returns how many executions it deleted.
func (b *Backend) Cleanup(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		limit = 100
	}
	var deleted int
	err := b.writeFunc(ctx, func(w *writer) error {
		deleted = 0
		roots, err := w.strings(cleanupRootsSQL, before.UnixMilli(), int64(limit))
		if err != nil || len(roots) == 0 {
			return err
		}
		rootsJSON, err := json.Marshal(roots)
		if err != nil {
			return err
		}
		tree, err := w.strings(cleanupTreeSQL, string(rootsJSON))
		if err != nil {
			return err
		}
		treeJSON, err := json.Marshal(tree)
		if err != nil {
			return err
		}
		for _, q := range cleanupTables {
			if _, err := w.conn.ExecContext(bg, q, string(treeJSON)); err != nil {
				return interpretError(err)
			}
		}
		deleted = len(tree)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("deleting finished executions: %w", err)
	}
	return deleted, nil
}

// strings runs a query of one text column on the writer's connection.
func (w *writer) strings(q string, args ...any) ([]string, error) {
	rows, err := w.conn.QueryContext(bg, q, args...)
	if err != nil {
		return nil, interpretError(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, errors.Join(interpretError(err), rows.Close())
		}
		out = append(out, s)
	}
	return out, interpretError(errors.Join(rows.Err(), rows.Close()))
}

// UpsertNode records n in the registry with the backend's clock as its
// heartbeat, and drops nodes not heard from for an hour.
func (b *Backend) UpsertNode(ctx context.Context, n *persistence.Node, ttl time.Duration) error {
	if n == nil || n.ID == "" {
		return errors.New("registering node: an ID is required")
	}
	addrs, fns, qs, tags, err := encodeNode(n)
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.ID, err)
	}
	err = b.writeFunc(ctx, func(w *writer) error {
		now := nowMillis()
		started := now
		if !n.StartedAt.IsZero() {
			started = n.StartedAt.UnixMilli()
		}
		if _, err := w.conn.ExecContext(bg, nodeUpsertSQL, n.ID, addrs, fns, qs, n.Version, started, now, now+ttl.Milliseconds(), tags); err != nil {
			return interpretError(err)
		}
		_, err := w.conn.ExecContext(bg, nodePurgeSQL, now-nodeStale.Milliseconds())
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.ID, err)
	}
	return nil
}

// encodeNode returns the JSON columns of n.
func encodeNode(n *persistence.Node) (addrs, fns, qs, tags string, err error) {
	enc := func(v any) string {
		b, e := json.Marshal(v)
		err = errors.Join(err, e)
		return string(b)
	}
	addrs = enc(n.Addresses)
	if n.Addresses == nil {
		addrs = "{}"
	}
	fns, qs, tags = enc(nonNil(n.Functions)), enc(nonNil(n.Queues)), enc(nonNil(n.Tags))
	return addrs, fns, qs, tags, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteNode removes node id from the registry.
func (b *Backend) DeleteNode(ctx context.Context, id string) error {
	err := b.writeFunc(ctx, func(w *writer) error {
		_, err := w.conn.ExecContext(bg, nodeDeleteSQL, id)
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("removing node %s: %w", id, err)
	}
	return nil
}

// ListNodes returns the registry, sorted by ID, with Alive and Owned.
func (b *Backend) ListNodes(ctx context.Context) ([]*persistence.Node, error) {
	now := nowMillis()
	var out []*persistence.Node
	err := b.query(ctx, nodeListSQL, nil, func(rows *sql.Rows) error {
		var n persistence.Node
		var addrs, fns, qs, tags string
		var started, beat, expires int64
		if err := rows.Scan(&n.ID, &addrs, &fns, &qs, &n.Version, &started, &beat, &expires, &tags); err != nil {
			return err
		}
		if err := errors.Join(json.Unmarshal([]byte(addrs), &n.Addresses), json.Unmarshal([]byte(fns), &n.Functions),
			json.Unmarshal([]byte(qs), &n.Queues), json.Unmarshal([]byte(tags), &n.Tags)); err != nil {
			return fmt.Errorf("decoding node %s: %w", n.ID, err)
		}
		n.StartedAt, n.HeartbeatAt, n.ExpiresAt = time.UnixMilli(started).UTC(), time.UnixMilli(beat).UTC(), time.UnixMilli(expires).UTC()
		n.Alive = expires > now
		out = append(out, &n)
		return nil
	})
	if err == nil {
		err = b.query(ctx, leaseCountSQL, []any{now}, func(rows *sql.Rows) error {
			var owner string
			var c int64
			if err := rows.Scan(&owner, &c); err != nil {
				return err
			}
			i := sort.Search(len(out), func(i int) bool { return out[i].ID >= owner })
			if i < len(out) && out[i].ID == owner {
				out[i].Owned = int(c)
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	return out, nil
}
