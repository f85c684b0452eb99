package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// outage moves the stored next tick of a paused schedule an hour back and
// unpauses it, as if every node had been down for an hour, and waits for
// the schedule loop to take the missed ticks, then pauses it again so that
// no tick of the next minute joins them while the test reads them. It
// starts in the first 45 seconds of a minute, so that a minute turns
// during it only on a machine slower by far than any it runs on. It
// returns the first missed tick.
func outage(t *testing.T, ctx context.Context, ex *sdk.Executor, name string) time.Time {
	t.Helper()
	b := ex.Backend()
	s, err := b.GetSchedule(ctx, name)
	require.NoError(t, err)
	var now time.Time
	testutil.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		if now, err = b.Now(ctx); err != nil || now.Second() >= 45 {
			return errors.Join(fmt.Errorf("%s is late in its minute", now), err)
		}
		return nil
	})
	s.NextAt = now.Add(-time.Hour).Truncate(time.Minute) // on the grid of @every 1m
	s.WakeAt, s.Paused = s.NextAt, false
	_, err = b.UpdateSchedule(ctx, s)
	require.NoError(t, err)
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := ex.GetSchedule(ctx, name)
		if err != nil {
			return err
		}
		if !info.NextRunAt.After(now) {
			return fmt.Errorf("next tick %s, not past %s yet", info.NextRunAt, now)
		}
		return nil
	})
	_, err = ex.PauseSchedule(ctx, name, "read its ticks")
	require.NoError(t, err)
	return s.NextAt
}

func TestScheduleCatchupAfterAnHourOutage(t *testing.T) {
	t.Parallel()
	for _, latest := range []bool{false, true} {
		t.Run(fmt.Sprintf("latest=%v", latest), func(t *testing.T) {
			t.Parallel()
			ctx, ex := worker(t)
			name := "outage"
			opts := []sdk.ScheduleOption{sdk.WithCatchupWindow(10 * time.Minute), sdk.WithOverlap(sdk.OverlapAllowAll), sdk.WithPaused()}
			if latest {
				opts = append(opts, sdk.WithCatchupLatest())
			}
			_, err := ex.CreateSchedule(ctx, name, sdk.Every(time.Minute), tickProbe.Name(), 3, opts...)
			require.NoError(t, err)
			first := outage(t, ctx, ex, name)

			ts, err := ex.ScheduleTicks(ctx, name, 1000)
			require.NoError(t, err)
			var started, missed, latestOnly []sdk.ScheduleTick
			for _, tk := range ts {
				switch {
				case tk.Status == "started":
					started = append(started, tk)
				case tk.Reason == "missed: older than the catch-up window":
					missed = append(missed, tk)
				case tk.Reason == "catch-up: only the latest missed tick starts":
					latestOnly = append(latestOnly, tk)
				default:
					t.Fatalf("unexpected tick %+v", tk)
				}
			}
			// The ticks older than the window: one row, from the first
			// missed tick, each minute.
			require.Len(t, missed, 1)
			m := missed[0]
			require.True(t, first.Equal(m.At), "missed from %s, want %s", m.At, first)
			require.Equal(t, int(m.LastAt.Sub(m.At)/time.Minute)+1, m.Count)
			// The first missed tick is 60 to 61 minutes old when the loop
			// runs, so 50 to 52 ticks are older than the window: 52 when
			// a minute turns between the outage and the loop's pass.
			require.Contains(t, []int{50, 51, 52}, m.Count)
			newest := started[0] // ScheduleTicks is newest first
			window := 10
			if latest {
				// Only the newest tick within the window starts; the others
				// in it are recorded as skipped.
				require.Len(t, started, 1)
				require.Len(t, latestOnly, 1)
				require.True(t, m.LastAt.Add(time.Minute).Equal(latestOnly[0].At))
				require.True(t, latestOnly[0].LastAt.Add(time.Minute).Equal(newest.At))
				window = latestOnly[0].Count + 1
			} else {
				require.Empty(t, latestOnly)
				for i := 1; i < len(started); i++ { // oldest first, every minute
					require.Equal(t, time.Minute, started[i-1].At.Sub(started[i].At))
					require.True(t, started[i-1].CreatedAt.Equal(started[i].CreatedAt) || started[i-1].CreatedAt.After(started[i].CreatedAt))
				}
				require.True(t, m.LastAt.Add(time.Minute).Equal(started[len(started)-1].At), "the window starts after the missed ticks")
				window = len(started)
			}
			require.Contains(t, []int{10, 11}, window, "ticks within a 10-minute window")
			total := int(newest.At.Sub(first)/time.Minute) + 1 // 61, or 62 taken just after a minute turned
			require.Contains(t, []int{61, 62}, total)
			require.Equal(t, total, m.Count+window, "every tick of the hour is accounted for, once")
			info, err := ex.GetSchedule(ctx, name)
			require.NoError(t, err)
			require.True(t, newest.At.Add(time.Minute).Equal(info.NextRunAt), "next %s after the newest %s", info.NextRunAt, newest.At)
			checkTicksOnce(t, ctx, ex, started, 0)
		})
	}
}

func TestSchedulePauseResumeBackfillTrigger(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	b := ex.Backend()
	name := "pausable"
	_, err := ex.CreateSchedule(ctx, name, sdk.Every(time.Second), tickProbe.Name(), 5, sdk.WithOverlap(sdk.OverlapAllowAll))
	require.NoError(t, err)
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if started, _ := ticksOf(t, ctx, ex, name); len(started) < 2 {
			return fmt.Errorf("%d started", len(started))
		}
		return nil
	})
	info, err := ex.PauseSchedule(ctx, name, "maintenance")
	require.NoError(t, err)
	require.True(t, info.Paused)
	require.Equal(t, "maintenance", info.Note)
	before, _ := ticksOf(t, ctx, ex, name)
	pausedAt, err := b.Now(ctx)
	require.NoError(t, err)
	testutil.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		now, err := b.Now(ctx)
		if err != nil || now.Sub(pausedAt) < 2500*time.Millisecond {
			return errors.Join(errors.New("not 2.5s since the pause yet"), err)
		}
		return nil
	})
	during, _ := ticksOf(t, ctx, ex, name)
	require.Equal(t, before, during, "no tick while paused")

	info, err = ex.ResumeSchedule(ctx, name)
	require.NoError(t, err)
	require.False(t, info.Paused)
	require.Empty(t, info.Note)
	resumedAt, err := b.Now(ctx)
	require.NoError(t, err)
	require.True(t, info.NextRunAt.After(resumedAt.Add(-time.Second)), "resume takes the next tick after now, not the paused ones")
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if started, _ := ticksOf(t, ctx, ex, name); len(started) <= len(before) {
			return errors.New("no tick since the resume")
		}
		return nil
	})
	after, _ := ticksOf(t, ctx, ex, name)
	for _, tk := range after {
		require.False(t, tk.At.After(before[len(before)-1].At) && tk.At.Before(pausedAt.Add(2*time.Second)),
			"tick %s taken while paused", tk.At)
	}

	// Backfill the paused stretch: its ticks start once each, with the
	// scheduled ticks' keys.
	from, to := before[len(before)-1].At, info.NextRunAt.Add(-time.Second)
	ids, err := ex.BackfillSchedule(ctx, name, from, to)
	require.NoError(t, err)
	want := int(to.Sub(from)/time.Second) + 1
	require.Len(t, ids, want)
	require.Equal(t, before[len(before)-1].ExecutionID, ids[0], "a tick that ran is not started again")
	again, err := ex.BackfillSchedule(ctx, name, from, to)
	require.NoError(t, err)
	require.Equal(t, ids, again, "a second backfill starts nothing new")
	ts, err := ex.ScheduleTicks(ctx, name, 1000)
	require.NoError(t, err)
	byID := map[string]sdk.ScheduleTick{}
	for _, tk := range ts {
		byID[tk.ExecutionID] = tk
	}
	for i, id := range ids[1:] {
		tk, ok := byID[id]
		require.True(t, ok, "backfilled execution %s has its tick", id)
		require.Equal(t, "backfill", tk.Kind)
		require.True(t, from.Add(time.Duration(i+1)*time.Second).Equal(tk.At))
	}
	// An interval's ticks are on a fixed grid: a range around a tick that
	// ran finds that tick, and starts nothing.
	ran := before[0]
	around, err := ex.BackfillSchedule(ctx, name, ran.At.Add(-400*time.Millisecond), ran.At.Add(400*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, []string{ran.ExecutionID}, around)
	_, err = ex.BackfillSchedule(ctx, name, from, time.Now().Add(time.Hour))
	require.ErrorContains(t, err, "after now")
	_, err = ex.BackfillSchedule(ctx, "missing", from, to)
	require.ErrorIs(t, err, sdk.ErrNotFound)

	id, err := ex.TriggerSchedule(ctx, name)
	require.NoError(t, err)
	ts, err = ex.ScheduleTicks(ctx, name, 1000)
	require.NoError(t, err)
	var triggered bool
	for _, tk := range ts {
		triggered = triggered || (tk.ExecutionID == id && tk.Kind == "trigger")
	}
	require.True(t, triggered, "the trigger is recorded")
	_, err = ex.PauseSchedule(ctx, name, "")
	require.NoError(t, err)
	started, _ := ticksOf(t, ctx, ex, name)
	checkTicksOnce(t, ctx, ex, started, 0)

	require.NoError(t, ex.DeleteSchedule(ctx, name))
	list, err := ex.ListSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, list)
}

// TestScheduleDeclared runs alone (not in parallel): a declaration reaches
// every executor that bootstraps while it exists.
func TestScheduleDeclared(t *testing.T) {
	_, open := testDatabase(t)
	decl := sdk.Schedule("test-declared", "@every 1h", tickProbe, 7, sdk.WithJitter(time.Second))
	t.Cleanup(func() { sdk.ForgetSchedule(decl.Name()) })
	require.PanicsWithValue(t, `sdk: schedule "test-declared" declared twice`, func() {
		sdk.Schedule("test-declared", "@every 1h", tickProbe, 7)
	})
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	info, err := ex.GetSchedule(ctx, "test-declared")
	require.NoError(t, err)
	require.Equal(t, "@every 1h", info.Spec)
	require.JSONEq(t, "7", string(info.Input))
	require.Equal(t, time.Second, info.Jitter)
	require.Equal(t, tickProbe.Name(), info.Function)
	require.Equal(t, sdk.DefaultQueue, info.Queue)
	require.Equal(t, sdk.OverlapSkip, info.Overlap)
	require.Equal(t, sdk.DefaultCatchupWindow, info.CatchupWindow)
	_, err = ex.PauseSchedule(ctx, "test-declared", "kept")
	require.NoError(t, err)
	require.NoError(t, ex.Close())

	// A changed declaration updates the stored schedule, keeping it paused.
	sdk.ForgetSchedule("test-declared")
	sdk.Schedule("test-declared", "@every 2h", tickProbe, 8)
	ex, err = sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	info2, err := ex.GetSchedule(ctx, "test-declared")
	require.NoError(t, err)
	require.Equal(t, "@every 2h", info2.Spec)
	require.JSONEq(t, "8", string(info2.Input))
	require.True(t, info2.Paused)
	require.Equal(t, "kept", info2.Note)
	require.NoError(t, ex.Close())

	// A declaration whose spec does not parse fails Bootstrap with the
	// parser's message.
	sdk.Schedule("test-declared-bad", "every tuesday", tickProbe, 1)
	t.Cleanup(func() { sdk.ForgetSchedule("test-declared-bad") })
	_, err = sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.ErrorContains(t, err, `schedule "test-declared-bad"`)
	require.ErrorContains(t, err, "expected 5 to 6 fields, found 2")
}
