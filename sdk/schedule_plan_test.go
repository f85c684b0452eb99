package sdk

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

func TestPlanTicks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sched := func(next time.Time, latest bool) (*persistence.Schedule, *spec) {
		s := &persistence.Schedule{Name: "p", ID: "id", Spec: "@every 1m", NextAt: next, CatchupLatest: latest}
		p, err := newSpec(s)
		require.NoError(t, err)
		return s, p
	}

	// An interval ticks on a grid from the epoch, or from the start.
	_, grid := sched(now, false)
	require.Equal(t, now.Add(time.Minute), grid.after(now.Add(30*time.Second)))
	require.Equal(t, now, grid.after(now.Add(-time.Millisecond)))
	grid.start = now.Add(20 * time.Second)
	require.Equal(t, grid.start, grid.after(now), "a tick at the start itself")
	require.Equal(t, now.Add(80*time.Second), grid.after(now.Add(30*time.Second)))

	// On time: the one due tick.
	s, p := sched(now, false)
	plan := planTicks(s, p, now.Add(time.Second), 10*time.Minute)
	require.Empty(t, plan.skipped)
	require.Equal(t, []time.Time{now}, plan.due)
	require.Equal(t, now.Add(time.Minute), plan.next)

	// Not due yet: nothing.
	s, p = sched(now.Add(time.Minute), false)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Empty(t, plan.skipped)
	require.Empty(t, plan.due)
	require.Equal(t, now.Add(time.Minute), plan.next)

	// An hour behind, a 10-minute window: 50 skipped as one row, 11 due.
	s, p = sched(now.Add(-time.Hour), false)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Len(t, plan.skipped, 1)
	require.Equal(t, 50, plan.skipped[0].Count)
	require.Equal(t, now.Add(-time.Hour), plan.skipped[0].At)
	require.Equal(t, now.Add(-11*time.Minute), plan.skipped[0].LastAt)
	require.Len(t, plan.due, 11)
	require.Equal(t, now.Add(-10*time.Minute), plan.due[0])
	require.Equal(t, now, plan.due[10])
	require.Equal(t, now.Add(time.Minute), plan.next)

	// The same with only the latest: one due, the other ten skipped.
	s, p = sched(now.Add(-time.Hour), true)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Len(t, plan.skipped, 2)
	require.Equal(t, 10, plan.skipped[1].Count)
	require.Equal(t, reasonLatestOnly, plan.skipped[1].Reason)
	require.Equal(t, []time.Time{now}, plan.due)

	// Years behind an interval: counted exactly, in the interval's phase.
	s, p = sched(now.Add(-maxSkipCount*2*time.Minute), false)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Equal(t, 2*maxSkipCount-10, plan.skipped[0].Count)
	require.Equal(t, reasonMissed, plan.skipped[0].Reason)
	require.Len(t, plan.due, 11)
	require.Equal(t, now.Add(-10*time.Minute), plan.due[0])

	// Years behind a cron expression: the count stops at maxSkipCount and
	// the next tick jumps to the window.
	s = &persistence.Schedule{Name: "c", ID: "id", Spec: "* * * * *", NextAt: now.Add(-maxSkipCount * 2 * time.Minute)}
	p, err := newSpec(s)
	require.NoError(t, err)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Equal(t, maxSkipCount, plan.skipped[0].Count)
	require.True(t, strings.HasPrefix(plan.skipped[0].Reason, reasonMissed))
	require.Contains(t, plan.skipped[0].Reason, "counted up to")
	require.Len(t, plan.due, 11)
	require.Equal(t, now.Add(-10*time.Minute), plan.due[0])

	// An interval that ended during the outage: counted up to its end.
	s, p = sched(now.Add(-time.Hour), false)
	p.end = now.Add(-30 * time.Minute)
	plan = planTicks(s, p, now, 10*time.Minute)
	require.Equal(t, 31, plan.skipped[0].Count)
	require.Equal(t, p.end, plan.skipped[0].LastAt)
	require.Empty(t, plan.due)
	require.True(t, plan.next.IsZero())

	// More due than one pass takes: the rest is due at once.
	s, p = sched(now.Add(-2*maxDuePerPass*time.Minute), false)
	plan = planTicks(s, p, now, 100*maxDuePerPass*time.Minute)
	require.Empty(t, plan.skipped)
	require.Len(t, plan.due, maxDuePerPass)
	require.True(t, plan.next.Before(now))

	// Past the end: no next tick.
	s, p = sched(now, false)
	p.end = now
	plan = planTicks(s, p, now, time.Minute)
	require.Len(t, plan.due, 1)
	require.True(t, plan.next.IsZero())
}

func TestJitterIsStableAndBounded(t *testing.T) {
	t.Parallel()
	s := &persistence.Schedule{ID: "abc", Jitter: 30 * time.Second}
	tick := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	j := jitterOf(s, tick)
	require.Equal(t, j, jitterOf(s, tick), "the same tick, the same delay")
	require.GreaterOrEqual(t, j, time.Duration(0))
	require.Less(t, j, s.Jitter)
	s.Jitter = 0
	require.Zero(t, jitterOf(s, tick))
}
