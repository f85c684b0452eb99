package persistencetest

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// testTags: a node claims (and counts for its timer) only the executions
// whose every tag it has; a node without tags only untagged ones.
func (s *suite) testTags(t *testing.T) {
	b, ctx := s.setup(t)
	past := time.Now().Add(-time.Minute)
	for _, e := range []struct {
		id   string
		tags []string
	}{
		{"plain", nil},
		{"gpu", []string{"gpu"}},
		{"gpu-eu", []string{"eu", "gpu"}},
	} {
		require.NoError(t, b.SetExecutionTags(ctx, e.id, e.tags))
		require.NoError(t, b.SetExecutionTags(ctx, e.id, e.tags), "again, as a replayed start does")
		x := newExec(e.id)
		x.Status, x.RunAt = persistence.StatusWaiting, past
		create(t, ctx, b, x)
		got, err := b.ExecutionTags(ctx, e.id)
		require.NoError(t, err)
		require.Equal(t, e.tags, got)
	}
	require.Error(t, b.SetExecutionTags(ctx, "", []string{"gpu"}))

	next, err := b.NextRunAtTagged(ctx, nil, []string{"eu"})
	require.NoError(t, err)
	require.WithinDuration(t, past, next, clockSlack, "the untagged one is due for any node")

	claim := func(owner string, tags []string) []string {
		t.Helper()
		got, err := b.ClaimDueTagged(ctx, owner, nil, nil, tags, time.Minute, 100)
		require.NoError(t, err)
		out := ids(got)
		slices.Sort(out)
		return out
	}
	require.Equal(t, []string{"plain"}, claim("node-eu", []string{"eu", "cpu"}), "both tagged ones need gpu")

	got, err := b.ClaimDue(ctx, owner, nil, nil, time.Minute, 100)
	require.NoError(t, err)
	require.Empty(t, got, "a node without tags takes no tagged execution")
	next, err = b.NextRunAt(ctx, nil)
	require.NoError(t, err)
	require.True(t, next.IsZero(), "nor counts it for its timer")
	next, err = b.NextRunAtTagged(ctx, nil, []string{"gpu"})
	require.NoError(t, err)
	require.False(t, next.IsZero(), "a gpu node counts the gpu one")

	require.Equal(t, []string{"gpu"}, claim("node-gpu", []string{"gpu"}), "gpu-eu needs eu too")
	require.Equal(t, []string{"gpu-eu"}, claim("node-both", []string{"gpu", "eu", "x"}))
}
