package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// The schedules' queries are few and rare (a claim per poll, a write per
// tick): they are built here, with the schema's table names, rather than
// kept in queries.sql with the hot path's.

// scheduleColumns is the column list scheduleRow.dest reads, in its order.
const scheduleColumns = `name, id, function, queue, input, priority, spec, time_zone, jitter_ms, start_at, end_at,
	overlap, catchup_window_ms, catchup_latest, paused, note, next_at, wake_at, buffered_at, last_execution_id,
	owner, lease_expires_at, version, created_at, updated_at`

// scheduleRow holds the columns of scheduleColumns as scanned.
type scheduleRow struct {
	s                                            persistence.Schedule
	overlap                                      string
	priority                                     int32
	jitter, window                               int64
	start, end, next, wake, buffered, leaseUntil *time.Time
}

func (r *scheduleRow) dest() []any {
	s := &r.s
	return []any{&s.Name, &s.ID, &s.Function, &s.Queue, &s.Input, &r.priority, &s.Spec, &s.TimeZone, &r.jitter,
		&r.start, &r.end, &r.overlap, &r.window, &s.CatchupLatest, &s.Paused, &s.Note, &r.next, &r.wake,
		&r.buffered, &s.LastExecutionID, &s.Owner, &r.leaseUntil, &s.Version, &s.CreatedAt, &s.UpdatedAt}
}

func (r *scheduleRow) decode() *persistence.Schedule {
	s := r.s
	s.Priority, s.Overlap = int(r.priority), persistence.Overlap(r.overlap)
	s.Jitter, s.CatchupWindow = time.Duration(r.jitter)*time.Millisecond, time.Duration(r.window)*time.Millisecond
	s.StartAt, s.EndAt, s.NextAt, s.WakeAt = utc(r.start), utc(r.end), utc(r.next), utc(r.wake)
	s.BufferedAt, s.LeaseExpiresAt = utc(r.buffered), utc(r.leaseUntil)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s
}

// scheduleArgs are the columns from input to last_execution_id of s.
func scheduleArgs(s *persistence.Schedule) []any {
	return []any{s.Input, int32(s.Priority), s.Spec, s.TimeZone, s.Jitter.Milliseconds(), timestamptz(s.StartAt),
		timestamptz(s.EndAt), string(s.Overlap), s.CatchupWindow.Milliseconds(), s.CatchupLatest, s.Paused, s.Note,
		timestamptz(s.NextAt), timestamptz(s.WakeAt), timestamptz(s.BufferedAt), s.LastExecutionID}
}

// scheduleTable matches the schedule tables' names in a query.
var scheduleTable = regexp.MustCompile(`\bstent_schedule(_tick)?\b`)

// sq qualifies the schedule tables of query with the backend's schema.
func (b *Backend) sq(query string) string {
	return scheduleTable.ReplaceAllStringFunc(query, func(t string) string { return pgx.Identifier{b.schema, t}.Sanitize() })
}

func collectSchedules(rows pgx.Rows) ([]*persistence.Schedule, error) {
	defer rows.Close()
	var out []*persistence.Schedule
	for rows.Next() {
		var r scheduleRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		out = append(out, r.decode())
	}
	return out, rows.Err()
}

func (b *Backend) getSchedule(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, name string) (*persistence.Schedule, error) {
	rows, err := q.Query(ctx, b.sq(`SELECT `+scheduleColumns+` FROM stent_schedule WHERE name = $1`), name)
	if err != nil {
		return nil, err
	}
	out, err := collectSchedules(rows)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, persistence.ErrNotFound
	}
	return out[0], nil
}

// CreateSchedule inserts s as documented on persistence.Schedules.
func (b *Backend) CreateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out *persistence.Schedule
	id := newID()
	err := b.do(ctx, true, func(ctx context.Context) error {
		args := append([]any{s.Name, id, s.Function, s.Queue}, scheduleArgs(s)...)
		rows, err := b.pool.Query(ctx, b.sq(`INSERT INTO stent_schedule (name, id, function, queue, input, priority,
			spec, time_zone, jitter_ms, start_at, end_at, overlap, catchup_window_ms, catchup_latest, paused, note,
			next_at, wake_at, buffered_at, last_execution_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
			ON CONFLICT (name) DO NOTHING RETURNING `+scheduleColumns), args...)
		if err != nil {
			return err
		}
		got, err := collectSchedules(rows)
		if err != nil {
			return err
		}
		if len(got) == 0 {
			// A retry whose first attempt was applied finds its own row.
			if prev, err := b.getSchedule(ctx, b.pool, s.Name); err == nil && prev.ID == id {
				out = prev
				return nil
			}
			return persistence.ErrExists
		}
		out = got[0]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating schedule %s: %w", s.Name, interpretError(err))
	}
	return out, nil
}

// UpdateSchedule replaces schedule s.Name as documented on
// persistence.Schedules.
func (b *Backend) UpdateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out *persistence.Schedule
	err := b.do(ctx, false, func(ctx context.Context) error {
		args := append([]any{s.Function, s.Queue}, scheduleArgs(s)...)
		args = append(args, s.Name, s.Version)
		rows, err := b.pool.Query(ctx, b.sq(`UPDATE stent_schedule SET function = $1, queue = $2, input = $3,
			priority = $4, spec = $5, time_zone = $6, jitter_ms = $7, start_at = $8, end_at = $9, overlap = $10,
			catchup_window_ms = $11, catchup_latest = $12, paused = $13, note = $14, next_at = $15, wake_at = $16,
			buffered_at = $17, last_execution_id = $18, owner = '', lease_expires_at = NULL, version = version + 1,
			updated_at = now() WHERE name = $19 AND version = $20 RETURNING `+scheduleColumns), args...)
		if err != nil {
			return err
		}
		got, err := collectSchedules(rows)
		if err != nil {
			return err
		}
		if len(got) == 1 {
			out = got[0]
			return nil
		}
		if _, err := b.getSchedule(ctx, b.pool, s.Name); err != nil {
			return err
		}
		return fmt.Errorf("version %d is not the current one: %w", s.Version, persistence.ErrStaleEpoch)
	})
	if err != nil {
		return nil, fmt.Errorf("updating schedule %s: %w", s.Name, interpretError(err))
	}
	return out, nil
}

// GetSchedule returns one schedule or an error wrapping
// persistence.ErrNotFound.
func (b *Backend) GetSchedule(ctx context.Context, name string) (*persistence.Schedule, error) {
	var out *persistence.Schedule
	err := b.do(ctx, true, func(ctx context.Context) error {
		var err error
		out, err = b.getSchedule(ctx, b.pool, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting schedule %s: %w", name, interpretError(err))
	}
	return out, nil
}

// ListSchedules returns every schedule, by name.
func (b *Backend) ListSchedules(ctx context.Context) ([]*persistence.Schedule, error) {
	var out []*persistence.Schedule
	err := b.do(ctx, true, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.sq(`SELECT `+scheduleColumns+` FROM stent_schedule ORDER BY name`))
		if err != nil {
			return err
		}
		out, err = collectSchedules(rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", interpretError(err))
	}
	return out, nil
}

// DeleteSchedule removes a schedule and its ticks, or returns an error
// wrapping persistence.ErrNotFound.
func (b *Backend) DeleteSchedule(ctx context.Context, name string) error {
	err := b.do(ctx, false, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, b.sq(`DELETE FROM stent_schedule WHERE name = $1`), name)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return persistence.ErrNotFound
			}
			_, err = tx.Exec(ctx, b.sq(`DELETE FROM stent_schedule_tick WHERE schedule = $1`), name)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("deleting schedule %s: %w", name, interpretError(err))
	}
	return nil
}

// ClaimDueSchedules claims due schedules for owner as documented on
// persistence.Schedules. Concurrent claimers skip each other's rows.
func (b *Backend) ClaimDueSchedules(ctx context.Context, owner string, ttl time.Duration, limit int) ([]*persistence.Schedule, time.Time, error) {
	if owner == "" || ttl <= 0 || limit <= 0 {
		return nil, time.Time{}, errors.New("claiming schedules: an owner, a positive ttl and a positive limit are required")
	}
	var out []*persistence.Schedule
	var now time.Time
	err := b.do(ctx, false, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, b.sq(`UPDATE stent_schedule SET owner = $1,
				lease_expires_at = $2::timestamptz + make_interval(secs => $3::float8 / 1000),
				version = version + 1, updated_at = $2
				WHERE name IN (SELECT name FROM stent_schedule
					WHERE NOT paused AND wake_at <= $2 AND (owner = '' OR lease_expires_at <= $2)
					ORDER BY wake_at LIMIT $4 FOR UPDATE SKIP LOCKED)
				RETURNING `+scheduleColumns), owner, now, ttl.Milliseconds(), limit)
			if err != nil {
				return err
			}
			out, err = collectSchedules(rows)
			return err
		})
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claiming schedules for %s: %w", owner, interpretError(err))
	}
	return out, now.UTC(), nil
}

// FireSchedule writes f in one transaction as documented on
// persistence.Schedules. The schedule's row is written first, so two
// fires of one schedule are serialised by its lock.
func (b *Backend) FireSchedule(ctx context.Context, f *persistence.ScheduleFire) ([]*persistence.Execution, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []*persistence.Execution
	err := b.do(ctx, true, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := b.fenceSchedule(ctx, tx, f); err != nil {
				return err
			}
			out = make([]*persistence.Execution, 0, len(f.Create))
			for _, e := range f.Create {
				got, err := b.insertScheduled(ctx, tx, e)
				if err != nil {
					return err
				}
				out = append(out, got)
			}
			f.Resolve(out)
			if f.LastExecutionID != "" {
				if _, err := tx.Exec(ctx, b.sq(`UPDATE stent_schedule SET last_execution_id = $1 WHERE name = $2`),
					f.LastExecutionID, f.Name); err != nil {
					return err
				}
			}
			for _, t := range f.Ticks {
				if err := b.insertTick(ctx, tx, f.Name, t); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, b.sq(`DELETE FROM stent_schedule_tick WHERE schedule = $1 AND at < (
				SELECT at FROM stent_schedule_tick WHERE schedule = $1 ORDER BY at DESC LIMIT 1 OFFSET $2)`),
				f.Name, persistence.MaxTicksKept-1)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("firing schedule %s: %w", f.Name, interpretError(err))
	}
	return out, nil
}

// fenceSchedule checks f's claim and writes the schedule's new state.
func (b *Backend) fenceSchedule(ctx context.Context, tx pgx.Tx, f *persistence.ScheduleFire) error {
	var n int64
	if f.Owner != "" {
		tag, err := tx.Exec(ctx, b.sq(`UPDATE stent_schedule SET next_at = $1, wake_at = $2, buffered_at = $3,
			owner = '', lease_expires_at = NULL, version = version + 1, updated_at = now()
			WHERE name = $4 AND owner = $5 AND version = $6`),
			timestamptz(f.NextAt), timestamptz(f.WakeAt), timestamptz(f.BufferedAt), f.Name, f.Owner, f.Version)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
	} else {
		tag, err := tx.Exec(ctx, b.sq(`UPDATE stent_schedule SET version = version + 1, updated_at = now()
			WHERE name = $1`), f.Name)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
	}
	if n == 1 {
		return nil
	}
	if _, err := b.getSchedule(ctx, tx, f.Name); err != nil {
		return err
	}
	return fmt.Errorf("the claim of %s at version %d is lost: %w", f.Owner, f.Version, persistence.ErrStaleEpoch)
}

// insertScheduled inserts e unless its idempotency key is taken, and
// returns the execution that holds the key.
func (b *Backend) insertScheduled(ctx context.Context, tx pgx.Tx, e *persistence.Execution) (*persistence.Execution, error) {
	if err := validateNew(e); err != nil {
		return nil, err
	}
	errJSON, err := encodeError(e.Error)
	if err != nil {
		return nil, fmt.Errorf("encoding error of %s: %w", e.ID, err)
	}
	var created bool
	var row execRow
	dest := append([]any{&created}, row.dest()...)
	if err := tx.QueryRow(ctx, b.q[qExecutionInsert], executionInsertArgs(e, errJSON)...).Scan(dest...); err != nil {
		return nil, fmt.Errorf("inserting execution %s: %w", e.ID, err)
	}
	got, err := row.decode()
	if err != nil {
		return nil, err
	}
	if !created && got.IdempotencyKey == e.IdempotencyKey && (got.Function != e.Function || !bytes.Equal(got.Input, e.Input)) {
		return nil, fmt.Errorf("inserting execution %s with idempotency key %q: existing execution %s runs %s: %w",
			e.ID, e.IdempotencyKey, got.ID, got.Function, persistence.ErrIdempotencyConflict)
	}
	return got, nil
}

func (b *Backend) insertTick(ctx context.Context, tx pgx.Tx, name string, t *persistence.ScheduleTick) error {
	last, count := t.LastAt, t.Count
	if last.IsZero() {
		last = t.At
	}
	if count <= 0 {
		count = 1
	}
	_, err := tx.Exec(ctx, b.sq(`INSERT INTO stent_schedule_tick AS t (schedule, at, last_at, count, kind, status,
		reason, execution_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (schedule, at) DO UPDATE SET status = excluded.status, kind = excluded.kind,
			reason = excluded.reason, execution_id = excluded.execution_id, last_at = excluded.last_at,
			count = excluded.count, created_at = now()
		WHERE t.status = 'skipped' AND excluded.status = 'started'`),
		name, t.At, last, int32(count), string(t.Kind), string(t.Status), t.Reason, t.ExecutionID)
	if err != nil {
		return fmt.Errorf("recording tick %s: %w", t.At.Format(time.RFC3339Nano), err)
	}
	return nil
}

// NextScheduleAt returns when ClaimDueSchedules should next be called, as
// documented on persistence.Schedules.
func (b *Backend) NextScheduleAt(ctx context.Context) (time.Time, error) {
	var at *time.Time
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.sq(`SELECT min(CASE WHEN owner <> '' AND lease_expires_at > now()
			THEN greatest(wake_at, lease_expires_at) ELSE wake_at END) FROM stent_schedule WHERE NOT paused`)).Scan(&at)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next schedule time: %w", interpretError(err))
	}
	return utc(at), nil
}

// ListScheduleTicks returns the ticks of a schedule, newest first.
func (b *Backend) ListScheduleTicks(ctx context.Context, name string, limit int) ([]*persistence.ScheduleTick, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	var out []*persistence.ScheduleTick
	err := b.do(ctx, true, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, b.sq(`SELECT at, last_at, count, kind, status, reason, execution_id, created_at
			FROM stent_schedule_tick WHERE schedule = $1 ORDER BY at DESC LIMIT $2`), name, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var count int32
			t := &persistence.ScheduleTick{Schedule: name}
			if err := rows.Scan(&t.At, &t.LastAt, &count, &t.Kind, &t.Status, &t.Reason, &t.ExecutionID, &t.CreatedAt); err != nil {
				return err
			}
			t.At, t.LastAt, t.CreatedAt, t.Count = t.At.UTC(), t.LastAt.UTC(), t.CreatedAt.UTC(), int(count)
			out = append(out, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("listing ticks of %s: %w", name, interpretError(err))
	}
	return out, nil
}

// Now returns the database server's clock.
func (b *Backend) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the server's clock: %w", interpretError(err))
	}
	return now.UTC(), nil
}
