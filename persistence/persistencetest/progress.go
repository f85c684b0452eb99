package persistencetest

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

// testCache: an entry is found until it expires, a second put replaces
// it, and the hit mark is set and removed.
func (s *suite) testCache(t *testing.T) {
	b, ctx := s.setup(t)
	_, err := b.CacheGet(ctx, "k1")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	require.Error(t, b.CachePut(ctx, &persistence.CacheEntry{Key: "k1", ExecutionID: "e1"}, 0))

	require.NoError(t, b.CachePut(ctx, &persistence.CacheEntry{Key: "k1", Function: testFunction, ExecutionID: "e1", Output: []byte(`1`)}, time.Hour))
	got, err := b.CacheGet(ctx, "k1")
	require.NoError(t, err)
	require.Equal(t, "e1", got.ExecutionID)
	require.Equal(t, testFunction, got.Function)
	require.JSONEq(t, `1`, string(got.Output))
	require.WithinDuration(t, time.Now().Add(time.Hour), got.ExpiresAt, clockSlack)

	require.NoError(t, b.CachePut(ctx, &persistence.CacheEntry{Key: "k1", Function: testFunction, ExecutionID: "e2", Output: []byte(`2`)}, shortTTL))
	testutil.CheckFor(t, waitFor, 10*time.Millisecond, func() error {
		_, err := b.CacheGet(ctx, "k1")
		if err == nil {
			return errors.New("the entry has not expired yet")
		}
		require.ErrorIs(t, err, persistence.ErrNotFound)
		return nil
	})

	p, err := b.ExecutionProgress(ctx, "e3", "e3")
	require.NoError(t, err)
	require.Empty(t, p.CachedFrom)
	require.NoError(t, b.CacheMarkHit(ctx, "e3", "e1"))
	p, err = b.ExecutionProgress(ctx, "e3", "e3")
	require.NoError(t, err)
	require.Equal(t, "e1", p.CachedFrom)
	require.NoError(t, b.CacheMarkHit(ctx, "e3", ""))
	p, err = b.ExecutionProgress(ctx, "e3", "e3")
	require.NoError(t, err)
	require.Empty(t, p.CachedFrom)
}

// testProgress: counters add once per op key and are per tree; state is
// per execution, last value wins.
func (s *suite) testProgress(t *testing.T) {
	b, ctx := s.setup(t)
	add := func(root, name, op string, d float64) bool {
		t.Helper()
		ok, err := b.CounterAdd(ctx, root, name, op, d)
		require.NoError(t, err)
		return ok
	}
	require.True(t, add("r1", "done", "r1/0", 1))
	require.True(t, add("r1", "done", "r1/1", 2.5))
	require.False(t, add("r1", "done", "r1/1", 2.5), "an op key applies once")
	require.True(t, add("r1", "failed", "c1/0", 1))
	require.True(t, add("r2", "done", "r2/0", 10))
	_, err := b.CounterAdd(ctx, "r1", "done", "", 1)
	require.Error(t, err)

	require.NoError(t, b.StateSet(ctx, "c1", "stage", []byte(`"resize"`)))
	require.NoError(t, b.StateSet(ctx, "c1", "stage", []byte(`"upload"`)))
	require.NoError(t, b.StateSet(ctx, "c1", "file", []byte(`{"name":"a.png"}`)))

	p, err := b.ExecutionProgress(ctx, "c1", "r1")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"done": 3.5, "failed": 1}, p.Counters)
	require.Len(t, p.State, 2)
	require.JSONEq(t, `"upload"`, string(p.State["stage"]))
	require.JSONEq(t, `{"name":"a.png"}`, string(p.State["file"]))

	p, err = b.ExecutionProgress(ctx, "r2", "r2")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"done": 10}, p.Counters)
	require.Empty(t, p.State)
}
