package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// The schedules' queries are few and rare (a claim per poll, a write per
// tick), so they are run as they stand rather than prepared.

// scheduleColumns is the column list scanSchedule reads, in its order.
const scheduleColumns = `name, id, function, queue, input, priority, spec, time_zone, jitter_ms, start_at, end_at,
	overlap, catchup_window_ms, catchup_latest, paused, note, next_at, wake_at, buffered_at, last_execution_id,
	owner, lease_expires_at, version, created_at, updated_at`

func scanSchedule(s scanner) (*persistence.Schedule, error) {
	var (
		sc                                           persistence.Schedule
		overlap                                      string
		priority, jitter, window, created, updated   int64
		latest, paused                               bool
		start, end, next, wake, buffered, leaseUntil sql.NullInt64
	)
	err := s.Scan(&sc.Name, &sc.ID, &sc.Function, &sc.Queue, &sc.Input, &priority, &sc.Spec, &sc.TimeZone, &jitter,
		&start, &end, &overlap, &window, &latest, &paused, &sc.Note, &next, &wake, &buffered, &sc.LastExecutionID,
		&sc.Owner, &leaseUntil, &sc.Version, &created, &updated)
	if err != nil {
		return nil, interpretError(err)
	}
	sc.Priority, sc.Overlap, sc.CatchupLatest, sc.Paused = int(priority), persistence.Overlap(overlap), latest, paused
	sc.Jitter, sc.CatchupWindow = time.Duration(jitter)*time.Millisecond, time.Duration(window)*time.Millisecond
	sc.StartAt, sc.EndAt, sc.NextAt, sc.WakeAt = fromMillis(start), fromMillis(end), fromMillis(next), fromMillis(wake)
	sc.BufferedAt, sc.LeaseExpiresAt = fromMillis(buffered), fromMillis(leaseUntil)
	sc.CreatedAt, sc.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &sc, nil
}

// scheduleArgs are the definition and state columns of s, from input to
// last_execution_id, in the order of scheduleColumns.
func scheduleArgs(s *persistence.Schedule) []any {
	return []any{nullBlob(s.Input), int64(s.Priority), s.Spec, s.TimeZone, s.Jitter.Milliseconds(),
		nullTime(s.StartAt), nullTime(s.EndAt), string(s.Overlap), s.CatchupWindow.Milliseconds(), s.CatchupLatest,
		s.Paused, s.Note, nullTime(s.NextAt), nullTime(s.WakeAt), nullTime(s.BufferedAt), s.LastExecutionID}
}

// CreateSchedule inserts s as documented on persistence.Schedules.
func (b *Backend) CreateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out *persistence.Schedule
	err := b.writeFunc(ctx, func(w *writer) error {
		now := nowMillis()
		args := append([]any{s.Name, rand.Text(), s.Function, s.Queue}, scheduleArgs(s)...)
		args = append(args, now, now)
		res, err := w.conn.ExecContext(bg, `INSERT INTO stent_schedule (name, id, function, queue, input, priority, spec,
			time_zone, jitter_ms, start_at, end_at, overlap, catchup_window_ms, catchup_latest, paused, note, next_at,
			wake_at, buffered_at, last_execution_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`, args...)
		if err != nil {
			return interpretError(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(persistence.ErrExists, err)
		}
		out, err = w.getSchedule(s.Name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating schedule %s: %w", s.Name, err)
	}
	return out, nil
}

func (w *writer) getSchedule(name string) (*persistence.Schedule, error) {
	return scanSchedule(w.conn.QueryRowContext(bg, `SELECT `+scheduleColumns+` FROM stent_schedule WHERE name = ?`, name))
}

// UpdateSchedule replaces schedule s.Name as documented on
// persistence.Schedules.
func (b *Backend) UpdateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var out *persistence.Schedule
	err := b.writeFunc(ctx, func(w *writer) error {
		args := append([]any{s.Function, s.Queue}, scheduleArgs(s)...)
		args = append(args, nowMillis(), s.Name, s.Version)
		res, err := w.conn.ExecContext(bg, `UPDATE stent_schedule SET function = ?, queue = ?, input = ?, priority = ?,
			spec = ?, time_zone = ?, jitter_ms = ?, start_at = ?, end_at = ?, overlap = ?, catchup_window_ms = ?,
			catchup_latest = ?, paused = ?, note = ?, next_at = ?, wake_at = ?, buffered_at = ?, last_execution_id = ?,
			owner = '', lease_expires_at = NULL, version = version + 1, updated_at = ?
			WHERE name = ? AND version = ?`, args...)
		if err != nil {
			return interpretError(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return interpretError(err)
			}
			if _, err := w.getSchedule(s.Name); err != nil {
				return err
			}
			return fmt.Errorf("version %d is not the current one: %w", s.Version, persistence.ErrStaleEpoch)
		}
		out, err = w.getSchedule(s.Name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("updating schedule %s: %w", s.Name, err)
	}
	return out, nil
}

// GetSchedule returns one schedule or an error wrapping
// persistence.ErrNotFound.
func (b *Backend) GetSchedule(ctx context.Context, name string) (*persistence.Schedule, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("getting schedule %s: %w", name, err)
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, `SELECT `+scheduleColumns+` FROM stent_schedule WHERE name = ?`, name)
	if err != nil {
		return nil, fmt.Errorf("getting schedule %s: %w", name, interpretError(err))
	}
	out, err := scanSchedules(rows)
	if err != nil {
		return nil, fmt.Errorf("getting schedule %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("getting schedule %s: %w", name, persistence.ErrNotFound)
	}
	return out[0], nil
}

func scanSchedules(rows *sql.Rows) ([]*persistence.Schedule, error) {
	defer rows.Close()
	var out []*persistence.Schedule
	for rows.Next() {
		s, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, interpretError(rows.Err())
}

// ListSchedules returns every schedule, by name.
func (b *Backend) ListSchedules(ctx context.Context) ([]*persistence.Schedule, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, `SELECT `+scheduleColumns+` FROM stent_schedule ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", interpretError(err))
	}
	out, err := scanSchedules(rows)
	if err != nil {
		return nil, fmt.Errorf("listing schedules: %w", err)
	}
	return out, nil
}

// DeleteSchedule removes a schedule and its ticks, or returns an error
// wrapping persistence.ErrNotFound.
func (b *Backend) DeleteSchedule(ctx context.Context, name string) error {
	err := b.writeFunc(ctx, func(w *writer) error {
		res, err := w.conn.ExecContext(bg, `DELETE FROM stent_schedule WHERE name = ?`, name)
		if err != nil {
			return interpretError(err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(persistence.ErrNotFound, interpretError(err))
		}
		_, err = w.conn.ExecContext(bg, `DELETE FROM stent_schedule_tick WHERE schedule = ?`, name)
		return interpretError(err)
	})
	if err != nil {
		return fmt.Errorf("deleting schedule %s: %w", name, err)
	}
	return nil
}

// ClaimDueSchedules claims due schedules for owner as documented on
// persistence.Schedules.
func (b *Backend) ClaimDueSchedules(ctx context.Context, owner string, ttl time.Duration, limit int) ([]*persistence.Schedule, time.Time, error) {
	if owner == "" || ttl <= 0 || limit <= 0 {
		return nil, time.Time{}, errors.New("claiming schedules: an owner, a positive ttl and a positive limit are required")
	}
	var out []*persistence.Schedule
	var now int64
	err := b.writeFunc(ctx, func(w *writer) error {
		now = nowMillis()
		rows, err := w.conn.QueryContext(bg, `UPDATE stent_schedule SET owner = ?, lease_expires_at = ?,
			version = version + 1, updated_at = ?
			WHERE name IN (SELECT name FROM stent_schedule
				WHERE paused = 0 AND wake_at <= ? AND (owner = '' OR lease_expires_at <= ?)
				ORDER BY wake_at LIMIT ?)
			RETURNING `+scheduleColumns, owner, now+ttl.Milliseconds(), now, now, now, limit)
		if err != nil {
			return interpretError(err)
		}
		out, err = scanSchedules(rows)
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("claiming schedules for %s: %w", owner, err)
	}
	return out, time.UnixMilli(now).UTC(), nil
}

// FireSchedule writes f in one transaction as documented on
// persistence.Schedules.
func (b *Backend) FireSchedule(ctx context.Context, f *persistence.ScheduleFire) ([]*persistence.Execution, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	var out []*persistence.Execution
	err := b.writeFunc(ctx, func(w *writer) error {
		if err := w.fenceSchedule(f); err != nil {
			return err
		}
		out = make([]*persistence.Execution, 0, len(f.Create))
		for _, e := range f.Create {
			got, _, err := w.createExecution(e)
			if err != nil {
				return err
			}
			out = append(out, got)
		}
		f.Resolve(out)
		if f.LastExecutionID != "" {
			if _, err := w.conn.ExecContext(bg, `UPDATE stent_schedule SET last_execution_id = ? WHERE name = ?`,
				f.LastExecutionID, f.Name); err != nil {
				return interpretError(err)
			}
		}
		for _, t := range f.Ticks {
			if err := w.insertTick(f.Name, t); err != nil {
				return err
			}
		}
		_, err := w.conn.ExecContext(bg, `DELETE FROM stent_schedule_tick WHERE schedule = ? AND at < (
			SELECT at FROM stent_schedule_tick WHERE schedule = ? ORDER BY at DESC LIMIT 1 OFFSET ?)`,
			f.Name, f.Name, persistence.MaxTicksKept-1)
		return interpretError(err)
	})
	if err != nil {
		return nil, fmt.Errorf("firing schedule %s: %w", f.Name, err)
	}
	return out, nil
}

// fenceSchedule checks f's claim and writes the schedule's new state.
func (w *writer) fenceSchedule(f *persistence.ScheduleFire) error {
	now := nowMillis()
	var res sql.Result
	var err error
	if f.Owner != "" {
		res, err = w.conn.ExecContext(bg, `UPDATE stent_schedule SET next_at = ?, wake_at = ?, buffered_at = ?,
			owner = '', lease_expires_at = NULL, version = version + 1, updated_at = ?
			WHERE name = ? AND owner = ? AND version = ?`,
			nullTime(f.NextAt), nullTime(f.WakeAt), nullTime(f.BufferedAt), now, f.Name, f.Owner, f.Version)
	} else {
		res, err = w.conn.ExecContext(bg, `UPDATE stent_schedule SET version = version + 1, updated_at = ?
			WHERE name = ?`, now, f.Name)
	}
	if err != nil {
		return interpretError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return interpretError(err)
	}
	if n == 1 {
		return nil
	}
	if _, err := w.getSchedule(f.Name); err != nil {
		return err
	}
	return fmt.Errorf("the claim of %s at version %d is lost: %w", f.Owner, f.Version, persistence.ErrStaleEpoch)
}

func (w *writer) insertTick(name string, t *persistence.ScheduleTick) error {
	last, count := t.LastAt, t.Count
	if last.IsZero() {
		last = t.At
	}
	if count <= 0 {
		count = 1
	}
	_, err := w.conn.ExecContext(bg, `INSERT INTO stent_schedule_tick (schedule, at, last_at, count, kind, status,
		reason, execution_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (schedule, at) DO UPDATE SET status = excluded.status, kind = excluded.kind,
			reason = excluded.reason, execution_id = excluded.execution_id, last_at = excluded.last_at,
			count = excluded.count, created_at = excluded.created_at
		WHERE stent_schedule_tick.status = 'skipped' AND excluded.status = 'started'`,
		name, t.At.UnixMilli(), last.UnixMilli(), int64(count), string(t.Kind), string(t.Status), t.Reason,
		t.ExecutionID, nowMillis())
	if err != nil {
		return fmt.Errorf("recording tick %s: %w", t.At.Format(time.RFC3339Nano), interpretError(err))
	}
	return nil
}

// NextScheduleAt returns when ClaimDueSchedules should next be called, as
// documented on persistence.Schedules.
func (b *Backend) NextScheduleAt(ctx context.Context) (time.Time, error) {
	rs, err := b.read()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next schedule time: %w", err)
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, `SELECT min(CASE WHEN owner <> '' AND lease_expires_at > ?
		THEN max(wake_at, lease_expires_at) ELSE wake_at END) FROM stent_schedule WHERE paused = 0`, nowMillis())
	if err != nil {
		return time.Time{}, fmt.Errorf("reading next schedule time: %w", interpretError(err))
	}
	defer rows.Close()
	var at sql.NullInt64
	if rows.Next() {
		if err := rows.Scan(&at); err != nil {
			return time.Time{}, fmt.Errorf("reading next schedule time: %w", interpretError(err))
		}
	}
	if err := rows.Err(); err != nil {
		return time.Time{}, fmt.Errorf("reading next schedule time: %w", interpretError(err))
	}
	return fromMillis(at), nil
}

// ListScheduleTicks returns the ticks of a schedule, newest first.
func (b *Backend) ListScheduleTicks(ctx context.Context, name string, limit int) ([]*persistence.ScheduleTick, error) {
	if limit <= 0 {
		limit = 100
	}
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("listing ticks of %s: %w", name, err)
	}
	defer b.endRead()
	rows, err := rs.db.QueryContext(ctx, `SELECT at, last_at, count, kind, status, reason, execution_id, created_at
		FROM stent_schedule_tick WHERE schedule = ? ORDER BY at DESC LIMIT ?`, name, limit)
	if err != nil {
		return nil, fmt.Errorf("listing ticks of %s: %w", name, interpretError(err))
	}
	defer rows.Close()
	var out []*persistence.ScheduleTick
	for rows.Next() {
		var at, last, count, created int64
		t := &persistence.ScheduleTick{Schedule: name}
		if err := rows.Scan(&at, &last, &count, &t.Kind, &t.Status, &t.Reason, &t.ExecutionID, &created); err != nil {
			return nil, fmt.Errorf("listing ticks of %s: %w", name, interpretError(err))
		}
		t.At, t.LastAt, t.Count = time.UnixMilli(at).UTC(), time.UnixMilli(last).UTC(), int(count)
		t.CreatedAt = time.UnixMilli(created).UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing ticks of %s: %w", name, interpretError(err))
	}
	return out, nil
}

// Now returns the backend's clock: this host's, to the millisecond.
func (b *Backend) Now(context.Context) (time.Time, error) {
	return time.UnixMilli(nowMillis()).UTC(), nil
}
