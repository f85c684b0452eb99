package sdk_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/sdk"
)

// stepRecordRun is how long each step of stepRecordFlow runs: longer than
// the write of its outcome, so that times which are the write's rather
// than the step's show.
const stepRecordRun = 30 * time.Millisecond

var (
	stepRecordStep = sdk.Durable("test_step_record_step", func(ctx context.Context, n int) (int, error) {
		time.Sleep(stepRecordRun) // not a durable operation: the child stays a step
		return n * 10, nil
	})
	stepRecordFlow = sdk.Durable("test_step_record_flow", func(ctx context.Context, ns []int) (int, error) {
		sum := 0
		for _, n := range ns {
			v, err := stepRecordStep.Call(ctx, n)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
)

// TestStepRecordedInJournalShowsInputAndTimes: a step recorded only as its
// outcome in its parent's journal shows, through Execution and List, its
// input, times and attempts like any other child, and the parent's journal
// holds them.
func TestStepRecordedInJournalShowsInputAndTimes(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	before := time.Now().Add(-time.Millisecond) // times are stored to the millisecond
	h, err := stepRecordFlow.Start(ctx, []int{1, 2})
	require.NoError(t, err)
	sum, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, 30, sum)
	after := time.Now().Add(time.Millisecond)

	check := func(c sdk.ExecutionInfo, input string) {
		t.Helper()
		require.True(t, c.JournalOnly, "%s is a step recorded only in its parent's journal", c.ID)
		require.Equal(t, sdk.StatusCompleted, c.Status)
		require.Equal(t, h.ID(), c.ParentID)
		require.Equal(t, "test_step_record_step", c.Function)
		require.Equal(t, 1, c.Attempts)
		require.JSONEq(t, input, string(c.Input), "%s: its input", c.ID)
		require.False(t, c.CreatedAt.IsZero(), "%s: its start", c.ID)
		require.False(t, c.EndedAt.IsZero(), "%s: its end", c.ID)
		require.False(t, c.CreatedAt.Before(before), "%s started at %s, before its parent", c.ID, c.CreatedAt)
		require.False(t, c.EndedAt.After(after), "%s ended at %s, after its parent", c.ID, c.EndedAt)
		require.GreaterOrEqual(t, c.EndedAt.Sub(c.CreatedAt), stepRecordRun-time.Millisecond,
			"%s: its own run time, not its write's", c.ID)
	}

	children, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID()})
	require.NoError(t, err)
	require.Len(t, children, 2)
	inputs := map[string]string{}
	for i, c := range children {
		inputs[c.ID] = []string{"1", "2"}[i] // in the order the parent started them
		check(c, inputs[c.ID])
	}
	require.False(t, children[1].CreatedAt.Before(children[0].EndedAt), "the second step started after the first ended")

	later, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID(), Since: after})
	require.NoError(t, err)
	require.Empty(t, later, "Since bounds a step's start like any child's")

	for id, input := range inputs {
		c, err := ex.Execution(ctx, id)
		require.NoError(t, err)
		check(c, input)
	}

	journal, err := ex.Journal(ctx, h.ID())
	require.NoError(t, err)
	require.Len(t, journal, 2)
	for i, e := range journal {
		require.Equal(t, children[i].ID, e.ChildID)
		require.JSONEq(t, inputs[e.ChildID], string(e.Input))
		require.Equal(t, 1, e.Attempts)
		require.Equal(t, children[i].CreatedAt, e.StartedAt)
		require.Equal(t, children[i].EndedAt, e.EndedAt)
	}
}
