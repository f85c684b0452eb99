package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// This file implements persistence.Operations: counts, retention, the node
// registry and the timed journal.

// The names of the queries of persistence.Operations in queries.sql.
const (
	qStatsTerminal  = "StatsTerminal"
	qStatsFold      = "StatsFold"
	qStatsVacuum    = "StatsVacuum"
	qStatsLive      = "StatsLive"
	qQueueDepth     = "QueueDepth"
	qDeadLettersOf  = "DeadLettersOf"
	qJournalEntries = "JournalEntries"
	qCleanup        = "Cleanup"
	qNodeUpsert     = "NodeUpsert"
	qNodeDelete     = "NodeDelete"
	qNodeList       = "NodeList"
	qCacheHits      = "CacheHitsByFunction"
)

func init() {
	queryNames = append(queryNames, qStatsTerminal, qStatsFold, qStatsVacuum, qStatsLive, qQueueDepth, qDeadLettersOf, qJournalEntries,
		qCleanup, qNodeUpsert, qNodeDelete, qNodeList, qCacheHits)
}

// Stats counts the executions by status, function and queue. The terminal
// counts come from stent_stats_finished and the deltas its trigger appends
// (folded first); the live ones, few, from their rows. Both are read in one
// repeatable-read transaction.
func (b *Backend) Stats(ctx context.Context) (*persistence.Stats, error) {
	if err := b.foldStats(ctx); err != nil {
		return nil, fmt.Errorf("counting executions: %w", err)
	}
	var st *persistence.Stats
	err := b.do(ctx, true, func(ctx context.Context) error {
		st = &persistence.Stats{}
		return pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
			func(tx pgx.Tx) error {
				if err := statsRows(ctx, tx, b.q[qStatsTerminal], false, st); err != nil {
					return err
				}
				return statsRows(ctx, tx, b.q[qStatsLive], true, st)
			})
	})
	if err != nil {
		return nil, fmt.Errorf("counting executions: %w", interpretError(err))
	}
	if st.At.IsZero() {
		st.At = time.Now().UTC()
	}
	return st, nil
}

// statsLockKey is the advisory lock of folding the stats deltas of the
// backend's schema.
func (b *Backend) statsLockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("stent stats " + b.schema)) // hash.Hash.Write never fails
	return int64(h.Sum64())
}

// vacuumAfterFold is how many deltas a fold moves before it vacuums their
// table.
const vacuumAfterFold = 10_000

// foldStats folds the finished-count deltas into their counts, unless
// another session is doing it, and vacuums the deltas' table after a large
// fold (a burst of finished executions).
func (b *Backend) foldStats(ctx context.Context) error {
	var moved int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qStatsFold], b.statsLockKey()).Scan(&moved)
	})
	if err == nil && moved >= vacuumAfterFold {
		err = b.do(ctx, true, func(ctx context.Context) error {
			_, err := b.pool.Exec(ctx, b.q[qStatsVacuum])
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("folding finished counts: %w", interpretError(err))
	}
	return nil
}

// statsRows appends the groups of one stats query to st.
func statsRows(ctx context.Context, tx pgx.Tx, q string, live bool, st *persistence.Stats) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var g persistence.StatsGroup
		var status string
		var count, due int64
		var oldest, oldestDue, at *time.Time
		dest := []any{&status, &g.Function, &g.Queue, &count, &oldest}
		if live {
			dest = append(dest, &due, &oldestDue, &at)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		g.Status, g.Count, g.Due = persistence.Status(status), int(count), int(due)
		g.OldestCreatedAt, g.OldestDue = utc(oldest), utc(oldestDue)
		if at != nil {
			st.At = at.UTC()
		}
		st.Groups = append(st.Groups, g)
	}
	return rows.Err()
}

// QueueDepth returns how many executions of queue are due and not leased.
func (b *Backend) QueueDepth(ctx context.Context, queue string) (int, error) {
	var n int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qQueueDepth], queue).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("counting queue %q: %w", queue, interpretError(err))
	}
	return int(n), nil
}

// DeadLettersOf returns the dead letters of executionID, oldest first.
func (b *Backend) DeadLettersOf(ctx context.Context, executionID string) ([]*persistence.DeadLetter, error) {
	out, err := b.queryDeadLetters(ctx, qDeadLettersOf, executionID)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters of %s: %w", executionID, interpretError(err))
	}
	return out, nil
}

// JournalEntries returns every journal entry of executionID with its times.
func (b *Backend) JournalEntries(ctx context.Context, executionID string) ([]*persistence.JournalEntry, error) {
	var out []*persistence.JournalEntry
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, b.q[qJournalEntries], executionID)
		if err != nil {
			return err
		}
		defer rows.Close()
		var row journalRow
		var started, ended *time.Time
		var input []byte
		var attempts *int32
		dest := append(row.dest(), &started, &ended, &input, &attempts)
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			e, err := row.decode(executionID)
			if err != nil {
				return err
			}
			e.StartedAt, e.EndedAt, e.Input = utc(started), utc(ended), input
			if attempts != nil {
				e.Attempts = int(*attempts)
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading journal of %s: %w", executionID, interpretError(err))
	}
	return out, nil
}

// CacheHitsByFunction counts the executions whose result came from the
// cache, by function.
func (b *Backend) CacheHitsByFunction(ctx context.Context) (map[string]int, error) {
	var out map[string]int
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = map[string]int{}
		rows, err := b.pool.Query(ctx, b.q[qCacheHits])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var fn string
			var n int64
			if err := rows.Scan(&fn, &n); err != nil {
				return err
			}
			out[fn] = int(n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("counting cache hits: %w", interpretError(err))
	}
	return out, nil
}

// Cleanup deletes up to limit finished trees (by their roots) updated
// before before, with their journals, snapshots, signals and dead letters,
// in one statement. It returns how many executions it deleted.
func (b *Backend) Cleanup(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		limit = defaultLimit
	}
	var n int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		tag, err := b.pool.Exec(ctx, b.q[qCleanup], before, limit)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("deleting finished executions: %w", interpretError(err))
	}
	return int(n), nil
}

// UpsertNode records n in the registry with the server's clock as its
// heartbeat, and drops nodes not heard from for an hour.
func (b *Backend) UpsertNode(ctx context.Context, n *persistence.Node, ttl time.Duration) error {
	if n == nil || n.ID == "" {
		return errors.New("registering node: an ID is required")
	}
	addrs := n.Addresses
	if addrs == nil {
		addrs = map[string]string{}
	}
	addrJSON, err := json.Marshal(addrs)
	tagsJSON, tagsErr := json.Marshal(nonNil(n.Tags))
	if err = errors.Join(err, tagsErr); err != nil {
		return fmt.Errorf("registering node %s: %w", n.ID, err)
	}
	var started *time.Time
	if !n.StartedAt.IsZero() {
		started = &n.StartedAt
	}
	err = b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.q[qNodeUpsert], n.ID, string(addrJSON), nonNil(n.Functions), nonNil(n.Queues),
			n.Version, started, ttl.Microseconds(), string(tagsJSON))
		return err
	})
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.ID, interpretError(err))
	}
	// The heartbeats keep the deltas few, so that Stats stays fast.
	return b.foldStats(ctx)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteNode removes node id from the registry.
func (b *Backend) DeleteNode(ctx context.Context, id string) error {
	err := b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.q[qNodeDelete], id)
		return err
	})
	if err != nil {
		return fmt.Errorf("removing node %s: %w", id, interpretError(err))
	}
	return nil
}

// ListNodes returns the registry, sorted by ID, with Alive and Owned.
func (b *Backend) ListNodes(ctx context.Context) ([]*persistence.Node, error) {
	var out []*persistence.Node
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, b.q[qNodeList])
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n persistence.Node
			var addrs, tags []byte
			var owned int64
			if err := rows.Scan(&n.ID, &addrs, &n.Functions, &n.Queues, &n.Version, &n.StartedAt,
				&n.HeartbeatAt, &n.ExpiresAt, &n.Alive, &owned, &tags); err != nil {
				return err
			}
			if err := json.Unmarshal(addrs, &n.Addresses); err != nil {
				return fmt.Errorf("decoding addresses of node %s: %w", n.ID, err)
			}
			if err := json.Unmarshal(tags, &n.Tags); err != nil {
				return fmt.Errorf("decoding tags of node %s: %w", n.ID, err)
			}
			n.StartedAt, n.HeartbeatAt, n.ExpiresAt = n.StartedAt.UTC(), n.HeartbeatAt.UTC(), n.ExpiresAt.UTC()
			n.Owned = int(owned)
			out = append(out, &n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", interpretError(err))
	}
	return out, nil
}
