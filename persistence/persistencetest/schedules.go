package persistencetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

// testSchedule returns a schedule named name whose first tick is at next.
func testSchedule(name string, next time.Time) *persistence.Schedule {
	return &persistence.Schedule{
		Name: name, Function: testFunction, Queue: testQueue, Input: []byte(`{"n":1}`), Spec: "@every 1s",
		TimeZone: "Europe/Paris", Jitter: 250 * time.Millisecond, Overlap: persistence.OverlapSkip,
		CatchupWindow: time.Minute, CatchupLatest: true, StartAt: next.Add(-time.Hour).Truncate(time.Millisecond),
		EndAt: next.Add(time.Hour).Truncate(time.Millisecond), NextAt: next, WakeAt: next,
	}
}

// testSchedulesCRUD: create, get, list, update under the version, delete.
func (s *suite) testSchedulesCRUD(t *testing.T) {
	b, ctx := s.setup(t)
	now, err := b.Now(ctx)
	require.NoError(t, err)
	next := now.Add(time.Minute).Truncate(time.Millisecond)

	in := testSchedule("nightly", next)
	got, err := b.CreateSchedule(ctx, in)
	require.NoError(t, err)
	require.NotEmpty(t, got.ID)
	require.Equal(t, "nightly", got.Name)
	require.Equal(t, in.Spec, got.Spec)
	require.Equal(t, in.TimeZone, got.TimeZone)
	require.Equal(t, in.Input, got.Input)
	require.Equal(t, in.Jitter, got.Jitter)
	require.Equal(t, in.CatchupWindow, got.CatchupWindow)
	require.True(t, got.CatchupLatest)
	require.Equal(t, persistence.OverlapSkip, got.Overlap)
	require.True(t, next.Equal(got.NextAt), "next %s, got %s", next, got.NextAt)
	require.True(t, in.StartAt.Equal(got.StartAt) && in.EndAt.Equal(got.EndAt))
	require.False(t, got.Paused)

	_, err = b.CreateSchedule(ctx, testSchedule("nightly", next))
	require.ErrorIs(t, err, persistence.ErrExists)
	_, err = b.CreateSchedule(ctx, &persistence.Schedule{Name: "bad", Function: testFunction, Spec: "@every 1s", Overlap: "sometimes"})
	require.ErrorContains(t, err, "overlap")

	_, err = b.CreateSchedule(ctx, testSchedule("another", next))
	require.NoError(t, err)
	all, err := b.ListSchedules(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "another", all[0].Name)

	upd := *got
	upd.Paused, upd.Note, upd.Spec = true, "maintenance", "0 2 * * *"
	after, err := b.UpdateSchedule(ctx, &upd)
	require.NoError(t, err)
	require.True(t, after.Paused)
	require.Equal(t, "maintenance", after.Note)
	require.Equal(t, "0 2 * * *", after.Spec)
	require.Equal(t, got.ID, after.ID)
	require.Greater(t, after.Version, got.Version)
	_, err = b.UpdateSchedule(ctx, &upd) // the version moved on
	require.ErrorIs(t, err, persistence.ErrStaleEpoch)
	missing := upd
	missing.Name = "missing"
	_, err = b.UpdateSchedule(ctx, &missing)
	require.ErrorIs(t, err, persistence.ErrNotFound)

	require.NoError(t, b.DeleteSchedule(ctx, "nightly"))
	_, err = b.GetSchedule(ctx, "nightly")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	require.ErrorIs(t, b.DeleteSchedule(ctx, "nightly"), persistence.ErrNotFound)
}

// testSchedulesClaim: a due schedule is claimed by one owner; its fire is
// fenced by the claim; an expired claim is taken over.
func (s *suite) testSchedulesClaim(t *testing.T) {
	b, ctx := s.setup(t)
	now, err := b.Now(ctx)
	require.NoError(t, err)
	due := now.Add(-time.Second).Truncate(time.Millisecond)
	_, err = b.CreateSchedule(ctx, testSchedule("due", due))
	require.NoError(t, err)
	_, err = b.CreateSchedule(ctx, testSchedule("later", now.Add(time.Hour)))
	require.NoError(t, err)
	paused := testSchedule("paused", due)
	paused.Paused = true
	_, err = b.CreateSchedule(ctx, paused)
	require.NoError(t, err)

	next, err := b.NextScheduleAt(ctx)
	require.NoError(t, err)
	require.True(t, due.Equal(next), "next %s, want %s", next, due)

	claimed, at, err := b.ClaimDueSchedules(ctx, owner, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, "due", claimed[0].Name)
	require.Equal(t, owner, claimed[0].Owner)
	require.WithinDuration(t, time.Now(), at, clockSlack)
	others, _, err := b.ClaimDueSchedules(ctx, otherOwner, time.Minute, 10)
	require.NoError(t, err)
	require.Empty(t, others, "a claimed schedule is claimed once")

	c := claimed[0]
	exec := &persistence.Execution{ID: "sched-exec-1", Function: testFunction, Queue: testQueue, Input: c.Input,
		IdempotencyKey: "schedule:due:1"}
	fire := &persistence.ScheduleFire{Name: "due", Owner: owner, Version: c.Version, Create: []*persistence.Execution{exec},
		Ticks:  []*persistence.ScheduleTick{{At: due, Kind: persistence.TickScheduled, Status: persistence.TickStarted, ExecutionID: exec.ID}},
		NextAt: due.Add(time.Hour), WakeAt: due.Add(time.Hour), LastExecutionID: exec.ID}
	execs, err := b.FireSchedule(ctx, fire)
	require.NoError(t, err)
	require.Len(t, execs, 1)
	require.Equal(t, exec.ID, execs[0].ID)
	require.Equal(t, persistence.StatusPending, execs[0].Status)

	// The same fire again: its claim is spent; nothing is written.
	fire.Create[0] = &persistence.Execution{ID: "sched-exec-2", Function: testFunction, Queue: testQueue, Input: c.Input,
		IdempotencyKey: "schedule:due:2"}
	fire.Ticks[0] = &persistence.ScheduleTick{At: due.Add(time.Second), Kind: persistence.TickScheduled, Status: persistence.TickStarted}
	_, err = b.FireSchedule(ctx, fire)
	require.ErrorIs(t, err, persistence.ErrStaleEpoch)
	_, err = b.GetExecution(ctx, "sched-exec-2")
	require.ErrorIs(t, err, persistence.ErrNotFound)

	got, err := b.GetSchedule(ctx, "due")
	require.NoError(t, err)
	require.Empty(t, got.Owner)
	require.Equal(t, exec.ID, got.LastExecutionID)
	require.True(t, due.Add(time.Hour).Equal(got.NextAt))
	ticks, err := b.ListScheduleTicks(ctx, "due", 0)
	require.NoError(t, err)
	require.Len(t, ticks, 1)
	require.Equal(t, persistence.TickStarted, ticks[0].Status)
	require.Equal(t, exec.ID, ticks[0].ExecutionID)
	require.True(t, due.Equal(ticks[0].At))

	// A claim that runs out is taken over, and the old owner's fire is refused.
	upd := *got
	upd.NextAt, upd.WakeAt = due, due
	_, err = b.UpdateSchedule(ctx, &upd)
	require.NoError(t, err)
	first, _, err := b.ClaimDueSchedules(ctx, owner, shortTTL, 10)
	require.NoError(t, err)
	require.Len(t, first, 1)
	var second []*persistence.Schedule
	testutil.CheckFor(t, waitFor, 10*time.Millisecond, func() error {
		second, _, err = b.ClaimDueSchedules(ctx, otherOwner, time.Minute, 10)
		if err != nil || len(second) == 0 {
			return errors.Join(errors.New("not claimed yet"), err)
		}
		return nil
	})
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "due", Owner: owner, Version: first[0].Version, NextAt: due.Add(time.Hour)})
	require.ErrorIs(t, err, persistence.ErrStaleEpoch)
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "due", Owner: otherOwner, Version: second[0].Version,
		NextAt: due.Add(time.Hour), WakeAt: due.Add(time.Hour)})
	require.NoError(t, err)
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "nope", Owner: owner, Version: 1})
	require.ErrorIs(t, err, persistence.ErrNotFound)
}

// testSchedulesTicks: a tick is recorded once; executions are unique by
// idempotency key; a skipped tick may later start (a backfill); old ticks
// are trimmed to MaxTicksKept.
func (s *suite) testSchedulesTicks(t *testing.T) {
	b, ctx := s.setup(t)
	now, err := b.Now(ctx)
	require.NoError(t, err)
	base := now.Add(-time.Hour).Truncate(time.Second)
	_, err = b.CreateSchedule(ctx, testSchedule("ticks", now.Add(time.Hour)))
	require.NoError(t, err)

	// A range of skipped ticks, then one of them started by a backfill.
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Ticks: []*persistence.ScheduleTick{{
		At: base, LastAt: base.Add(9 * time.Second), Count: 10, Kind: persistence.TickScheduled,
		Status: persistence.TickSkipped, Reason: "outside the catch-up window"}}})
	require.NoError(t, err)
	mk := func(id string) *persistence.Execution {
		return &persistence.Execution{ID: id, Function: testFunction, Queue: testQueue, Input: []byte(`{"n":1}`),
			IdempotencyKey: "schedule:ticks:" + base.Format(time.RFC3339)}
	}
	started := &persistence.ScheduleTick{At: base, Kind: persistence.TickBackfill, Status: persistence.TickStarted, ExecutionID: "tick-a"}
	execs, err := b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Create: []*persistence.Execution{mk("tick-a")},
		Ticks: []*persistence.ScheduleTick{started}, LastExecutionID: "tick-a"})
	require.NoError(t, err)
	require.Equal(t, "tick-a", execs[0].ID)
	// Again, as a retry would: the key returns the same execution and the
	// started tick stays as it was.
	again := *started
	again.ExecutionID = "tick-b"
	execs, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Create: []*persistence.Execution{mk("tick-b")},
		Ticks: []*persistence.ScheduleTick{&again}})
	require.NoError(t, err)
	require.Equal(t, "tick-a", execs[0].ID, "one execution per idempotency key")
	_, err = b.GetExecution(ctx, "tick-b")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	ticks, err := b.ListScheduleTicks(ctx, "ticks", 10)
	require.NoError(t, err)
	require.Len(t, ticks, 1)
	require.Equal(t, persistence.TickStarted, ticks[0].Status)
	require.Equal(t, persistence.TickBackfill, ticks[0].Kind)
	require.Equal(t, "tick-a", ticks[0].ExecutionID)
	got, err := b.GetSchedule(ctx, "ticks")
	require.NoError(t, err)
	require.Equal(t, "tick-a", got.LastExecutionID)

	// A new tick row whose execution's key is taken names the execution
	// that holds the key, and so does LastExecutionID.
	later := base.Add(-time.Second)
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Create: []*persistence.Execution{mk("tick-z")},
		Ticks: []*persistence.ScheduleTick{{At: later, Kind: persistence.TickBackfill, Status: persistence.TickStarted,
			ExecutionID: "tick-z"}}, LastExecutionID: "tick-z"})
	require.NoError(t, err)
	ticks, err = b.ListScheduleTicks(ctx, "ticks", 10)
	require.NoError(t, err)
	require.Len(t, ticks, 2)
	require.True(t, later.Equal(ticks[1].At))
	require.Equal(t, "tick-a", ticks[1].ExecutionID)
	got, err = b.GetSchedule(ctx, "ticks")
	require.NoError(t, err)
	require.Equal(t, "tick-a", got.LastExecutionID)

	// The same key with another input is refused.
	other := mk("tick-c")
	other.Input = []byte(`{"n":2}`)
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Create: []*persistence.Execution{other}})
	require.ErrorIs(t, err, persistence.ErrIdempotencyConflict)

	// Trimming: at most MaxTicksKept rows are kept, the newest.
	batch := make([]*persistence.ScheduleTick, 0, persistence.MaxTicksKept+5)
	for i := range persistence.MaxTicksKept + 5 {
		batch = append(batch, &persistence.ScheduleTick{At: base.Add(time.Duration(i+1) * time.Second),
			Kind: persistence.TickScheduled, Status: persistence.TickSkipped, Reason: fmt.Sprint("overlap ", i)})
	}
	_, err = b.FireSchedule(ctx, &persistence.ScheduleFire{Name: "ticks", Ticks: batch})
	require.NoError(t, err)
	ticks, err = b.ListScheduleTicks(ctx, "ticks", 2*persistence.MaxTicksKept)
	require.NoError(t, err)
	require.Len(t, ticks, persistence.MaxTicksKept)
	require.True(t, batch[len(batch)-1].At.Equal(ticks[0].At))

	require.NoError(t, b.DeleteSchedule(ctx, "ticks"))
	ticks, err = b.ListScheduleTicks(ctx, "ticks", 10)
	require.NoError(t, err)
	require.Empty(t, ticks)
}
