package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
)

var (
	tickProbe = sdk.Durable("test_schedule_tick", func(ctx context.Context, n int) (int, error) { return n, nil })
	// gates hold the executions of gatedTick until the test closes the
	// channel stored under their input.
	gates     sync.Map
	gatedTick = sdk.Durable("test_schedule_gated", func(ctx context.Context, gate string) (string, error) {
		ch, ok := gates.Load(gate)
		if !ok {
			return "", sdk.NonRetryable(fmt.Errorf("no gate %q", gate))
		}
		select {
		case <-ch.(chan struct{}):
			return gate, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
)

// ticksOf returns the ticks of a schedule, oldest first, by status.
func ticksOf(t *testing.T, ctx context.Context, ex *sdk.Executor, name string) (started, skipped []sdk.ScheduleTick) {
	t.Helper()
	ts, err := ex.ScheduleTicks(ctx, name, 1000)
	require.NoError(t, err)
	for i := len(ts) - 1; i >= 0; i-- {
		if ts[i].Status == "started" {
			started = append(started, ts[i])
		} else {
			skipped = append(skipped, ts[i])
		}
	}
	return started, skipped
}

func TestScheduleSpecThatDoesNotParse(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	for _, spec := range []string{"61 * * * *", "every day at two", "@every banana", "* * * * * * *"} {
		_, perr := parser.Parse(spec)
		require.Error(t, perr, spec)
		_, err := ex.CreateSchedule(ctx, "bad", spec, tickProbe.Name(), 1)
		require.ErrorContains(t, err, perr.Error(), "the parser's message for %q", spec)
		require.ErrorIs(t, err, sdk.ErrInvalidSchedule)
		require.ErrorContains(t, err, spec)
	}
	_, err := ex.CreateSchedule(ctx, "bad", "61 * * * *", tickProbe.Name(), 1)
	require.EqualError(t, err, `sdk: schedule "bad": spec "61 * * * *" does not parse: end of range (61) above maximum (59): 61`)
	_, err = ex.CreateSchedule(ctx, "bad", "0 0 30 2 *", tickProbe.Name(), 1)
	require.ErrorContains(t, err, "no tick within five years")
	_, err = ex.CreateSchedule(ctx, "bad", "0 2 * * *", tickProbe.Name(), 1, sdk.WithTimeZone("Mars/Olympus"))
	require.ErrorContains(t, err, "Mars/Olympus")
	_, err = ex.CreateSchedule(ctx, "bad", "0 2 * * *", tickProbe.Name(), 1, sdk.WithOverlap("sometimes"))
	require.ErrorContains(t, err, "overlap")
	list, err := ex.ListSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "nothing refused is stored")

	// Well-formed specs: five fields, six with seconds, a time zone.
	info, err := ex.CreateSchedule(ctx, "nightly", "0 2 * * *", tickProbe.Name(), 1, sdk.WithTimeZone("Europe/Paris"))
	require.NoError(t, err)
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	next := info.NextRunAt.In(paris)
	require.Equal(t, 2, next.Hour())
	require.Zero(t, next.Minute())
	require.WithinDuration(t, time.Now(), info.NextRunAt, 25*time.Hour)
	_, err = ex.CreateSchedule(ctx, "nightly", "0 3 * * *", tickProbe.Name(), 1)
	require.ErrorIs(t, err, sdk.ErrExists)
	info, err = ex.CreateSchedule(ctx, "seconds", "CRON_TZ=Asia/Tokyo 30 0 9 * * MON-FRI", tickProbe.Name(), 1)
	require.NoError(t, err)
	require.Equal(t, 30, info.NextRunAt.Second())
	_, err = ex.UpdateSchedule(ctx, "missing", "@daily", tickProbe.Name(), 1)
	require.ErrorIs(t, err, sdk.ErrNotFound)
	require.ErrorIs(t, ex.DeleteSchedule(ctx, "missing"), sdk.ErrNotFound)
}

func TestScheduleEverySecond(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	// Every tick starts, whatever the overlap: on a loaded machine an
	// execution may outlast its second (OverlapSkip would skip the next).
	_, err := ex.CreateSchedule(ctx, "every-second", sdk.Every(time.Second), tickProbe.Name(), 7,
		sdk.WithOverlap(sdk.OverlapAllowAll))
	require.NoError(t, err)
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if started, _ := ticksOf(t, ctx, ex, "every-second"); len(started) < 3 {
			return fmt.Errorf("%d ticks started", len(started))
		}
		return nil
	})
	_, err = ex.PauseSchedule(ctx, "every-second", "")
	require.NoError(t, err)
	started, skipped := ticksOf(t, ctx, ex, "every-second")
	require.Empty(t, skipped)
	checkTicksOnce(t, ctx, ex, started, time.Second)
}

// checkTicksOnce checks that the started ticks are consecutive, every
// interval (when not 0), each with its own execution, and that these are all the
// executions of their function, each completed.
func checkTicksOnce(t *testing.T, ctx context.Context, ex *sdk.Executor, started []sdk.ScheduleTick, interval time.Duration) {
	t.Helper()
	ids := make(map[string]bool)
	for i, tk := range started {
		if i > 0 && interval > 0 {
			require.Equal(t, interval, tk.At.Sub(started[i-1].At), "tick %d follows tick %d", i, i-1)
		}
		require.False(t, ids[tk.ExecutionID], "execution %s started twice", tk.ExecutionID)
		ids[tk.ExecutionID] = true
	}
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		for id := range ids {
			info, err := ex.Execution(ctx, id)
			if err != nil {
				return err
			}
			if info.Status != sdk.StatusCompleted {
				return fmt.Errorf("execution %s is %s", id, info.Status)
			}
		}
		return nil
	})
	all, err := ex.List(ctx, sdk.ListFilter{Function: tickProbe.Name(), Limit: 10_000})
	require.NoError(t, err)
	var n int
	for _, x := range all {
		n++
		require.True(t, ids[x.ID], "execution %s belongs to no tick", x.ID)
	}
	require.Equal(t, len(ids), n, "one execution per tick")
}

func TestScheduleOverlapPolicies(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, p sdk.Overlap, check func(ctx context.Context, ex *sdk.Executor, name string) error,
		after func(ctx context.Context, ex *sdk.Executor, name string) error) {
		t.Parallel()
		ctx, ex := worker(t)
		name := fmt.Sprintf("overlap-%s-%d", p, time.Now().UnixNano())
		gate := make(chan struct{})
		gates.Store(name, gate)
		defer gates.Delete(name)
		_, err := ex.CreateSchedule(ctx, name, sdk.Every(time.Second), gatedTick.Name(), name, sdk.WithOverlap(p))
		require.NoError(t, err)
		testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error { return check(ctx, ex, name) })
		close(gate)
		testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error { return after(ctx, ex, name) })
		_, err = ex.PauseSchedule(ctx, name, "")
		require.NoError(t, err)
	}
	statusOf := func(ctx context.Context, ex *sdk.Executor, id string) sdk.Status {
		info, err := ex.Execution(ctx, id)
		if err != nil {
			return ""
		}
		return info.Status
	}
	skippedFor := func(skipped []sdk.ScheduleTick, reason string) int {
		n := 0
		for _, s := range skipped {
			if strings.HasPrefix(s.Reason, reason) {
				n += s.Count
			}
		}
		return n
	}
	t.Run("Skip", func(t *testing.T) {
		run(t, sdk.OverlapSkip, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, skipped := ticksOf(t, ctx, ex, name)
			if len(started) != 1 || skippedFor(skipped, "overlap: the previous") < 2 {
				return fmt.Errorf("%d started, %d skipped", len(started), len(skipped))
			}
			return nil
		}, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, _ := ticksOf(t, ctx, ex, name)
			if len(started) < 2 {
				return errors.New("no tick started after the first finished")
			}
			return nil
		})
	})
	t.Run("BufferOne", func(t *testing.T) {
		var buffered time.Time
		run(t, sdk.OverlapBufferOne, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, skipped := ticksOf(t, ctx, ex, name)
			info, err := ex.GetSchedule(ctx, name)
			if err != nil {
				return err
			}
			if len(started) != 1 || info.BufferedAt.IsZero() || skippedFor(skipped, "overlap: a tick is buffered") < 1 {
				return fmt.Errorf("%d started, buffered %v, %d skipped", len(started), info.BufferedAt, len(skipped))
			}
			if !info.BufferedAt.After(started[0].At) {
				return fmt.Errorf("buffered %s is not after the first tick %s", info.BufferedAt, started[0].At)
			}
			buffered = info.BufferedAt
			return nil
		}, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, _ := ticksOf(t, ctx, ex, name)
			if len(started) < 2 {
				return errors.New("the buffered tick has not started")
			}
			if !started[1].At.Equal(buffered) {
				return fmt.Errorf("the second started tick is %s, not the buffered %s", started[1].At, buffered)
			}
			return nil
		})
	})
	t.Run("AllowAll", func(t *testing.T) {
		run(t, sdk.OverlapAllowAll, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, skipped := ticksOf(t, ctx, ex, name)
			if len(skipped) > 0 {
				return fmt.Errorf("skipped %+v", skipped)
			}
			if len(started) < 3 {
				return fmt.Errorf("%d started", len(started))
			}
			for _, s := range started {
				if st := statusOf(ctx, ex, s.ExecutionID); st.Terminal() {
					return fmt.Errorf("execution %s is %s while the gate is shut", s.ExecutionID, st)
				}
			}
			return nil
		}, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, _ := ticksOf(t, ctx, ex, name)
			if st := statusOf(ctx, ex, started[0].ExecutionID); st != sdk.StatusCompleted {
				return fmt.Errorf("the first execution is %s", st)
			}
			return nil
		})
	})
	t.Run("CancelPrevious", func(t *testing.T) {
		run(t, sdk.OverlapCancelPrevious, func(ctx context.Context, ex *sdk.Executor, name string) error {
			started, _ := ticksOf(t, ctx, ex, name)
			if len(started) < 2 {
				return fmt.Errorf("%d started", len(started))
			}
			if st := statusOf(ctx, ex, started[0].ExecutionID); st != sdk.StatusCanceled {
				return fmt.Errorf("the first execution is %s", st)
			}
			for _, s := range started[:len(started)-1] {
				if st := statusOf(ctx, ex, s.ExecutionID); !st.Terminal() {
					return fmt.Errorf("an earlier execution is %s beside a later one", st)
				}
			}
			return nil
		}, func(ctx context.Context, ex *sdk.Executor, name string) error {
			// The one running when the gate opened completes, and so do
			// those after it; the first stays canceled.
			started, _ := ticksOf(t, ctx, ex, name)
			if st := statusOf(ctx, ex, started[0].ExecutionID); st != sdk.StatusCanceled {
				return fmt.Errorf("the first execution is %s", st)
			}
			for _, s := range started {
				if statusOf(ctx, ex, s.ExecutionID) == sdk.StatusCompleted {
					return nil
				}
			}
			return errors.New("no execution completed after the gate opened")
		})
	})
}
