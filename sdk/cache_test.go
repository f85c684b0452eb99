package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
)

// cacheRuns counts the body runs of the cached test functions by input.
var cacheRuns = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

func cacheRan(in string) int {
	cacheRuns.Lock()
	defer cacheRuns.Unlock()
	return cacheRuns.n[in]
}

var (
	cachedUpper = sdk.Durable("test_cached_upper", func(ctx context.Context, in string) (string, error) {
		cacheRuns.Lock()
		cacheRuns.n[in]++
		n := cacheRuns.n[in]
		cacheRuns.Unlock()
		return fmt.Sprintf("%s#%d", in, n), nil
	}, sdk.WithCache(time.Hour))
	cachedShort = sdk.Durable("test_cached_short", func(ctx context.Context, in string) (string, error) {
		cacheRuns.Lock()
		cacheRuns.n["short:"+in]++
		n := cacheRuns.n["short:"+in]
		cacheRuns.Unlock()
		return fmt.Sprintf("%s#%d", in, n), nil
	}, sdk.WithCache(2*time.Second)) // long enough for a loaded machine's next call to find the entry
	cachedFails = sdk.Durable("test_cached_fails", func(ctx context.Context, in string) (string, error) {
		cacheRuns.Lock()
		cacheRuns.n["fails:"+in]++
		cacheRuns.Unlock()
		return "", sdk.NonRetryable(errors.New("no result"))
	}, sdk.WithCache(time.Hour))
	cachedParent = sdk.Durable("test_cached_parent", func(ctx context.Context, in string) ([]string, error) {
		a, err := cachedUpper.Call(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := cachedUpper.Call(ctx, in)
		return []string{a, b}, err
	})
)

// uniqueInput makes the inputs of a test its own: the database is fresh on
// every test, but the run counts are per process.
func uniqueInput(t *testing.T) string { return fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()) }

func TestCacheReusesACompletedResult(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	in := uniqueInput(t)
	h1, err := cachedUpper.Start(ctx, in)
	require.NoError(t, err)
	out1, err := h1.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, in+"#1", out1)

	h2, err := cachedUpper.Start(ctx, in)
	require.NoError(t, err)
	out2, err := h2.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, out1, out2, "the cached result")
	require.Equal(t, 1, cacheRan(in), "the body ran once")
	require.NotEqual(t, h1.ID(), h2.ID(), "every call is an execution")

	info, err := ex.Execution(ctx, h2.ID())
	require.NoError(t, err)
	require.Equal(t, h1.ID(), info.CachedFrom)
	require.Equal(t, sdk.StatusCompleted, info.Status)
	first, err := ex.Execution(ctx, h1.ID())
	require.NoError(t, err)
	require.Empty(t, first.CachedFrom, "the first one ran its body")

	other, err := cachedUpper.Call(ctx, in+"-other")
	require.NoError(t, err)
	require.Equal(t, in+"-other#1", other, "another input runs")
}

func TestCacheExpires(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	in := uniqueInput(t)
	out, err := cachedShort.Call(ctx, in)
	require.NoError(t, err)
	require.Equal(t, in+"#1", out)
	// Within the TTL a call is cached, after it the body runs again: poll
	// until it does (the TTL is 2s on the database's clock).
	var last *sdk.Handle[string]
	testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		h, err := cachedShort.Start(ctx, in)
		if err != nil {
			return err
		}
		got, err := h.Result(ctx)
		if err != nil {
			return err
		}
		if got != in+"#2" {
			return fmt.Errorf("still cached: %s", got)
		}
		last = h
		return nil
	})
	require.Equal(t, 2, cacheRan("short:"+in))
	info, err := ex.Execution(ctx, last.ID())
	require.NoError(t, err)
	require.Empty(t, info.CachedFrom, "it ran after the entry expired")
	again, err := cachedShort.Call(ctx, in)
	require.NoError(t, err)
	require.Equal(t, in+"#2", again, "the new result is cached in turn")
}

func TestCacheKeepsNoFailure(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t)
	in := uniqueInput(t)
	for range 2 {
		_, err := cachedFails.Call(ctx, in)
		require.Error(t, err)
	}
	require.Equal(t, 2, cacheRan("fails:"+in), "a failure is not cached")
}

func TestCacheOfChildCalls(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	in := uniqueInput(t)
	h, err := cachedParent.Start(ctx, in)
	require.NoError(t, err)
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{in + "#1", in + "#1"}, got, "the second child call took the first's result")
	require.Equal(t, 1, cacheRan(in))
	children, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID()})
	require.NoError(t, err)
	require.Len(t, children, 2)
	var marked int
	for _, c := range children {
		info, err := ex.Execution(ctx, c.ID)
		require.NoError(t, err)
		if info.CachedFrom != "" {
			marked++
		}
	}
	require.Equal(t, 1, marked, "one child ran, the other is marked cached")
}

func TestWithCacheNeedsAPositiveTTL(t *testing.T) {
	t.Parallel()
	require.PanicsWithError(t, `sdk: durable function "test_cache_zero" has a cache TTL of 0s; use WithCache with 1ms or more`, func() {
		sdk.Durable("test_cache_zero", func(ctx context.Context, s string) (string, error) { return s, nil }, sdk.WithCache(0))
	})
}
