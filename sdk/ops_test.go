package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

var (
	opsAlpha = sdk.Durable("test_ops_alpha", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	// test_ops_beta is started by name only.
	_       = sdk.Durable("test_ops_beta", func(ctx context.Context, x int) (int, error) { return x * 10, nil })
	opsWait = sdk.Durable("test_ops_wait", func(ctx context.Context, x int) (int, error) {
		if _, err := opsAlpha.Call(ctx, x); err != nil {
			return 0, err
		}
		return sdk.WaitForSignal[int](ctx, "go")
	})
	opsFailing = sdk.Durable("test_ops_failing", func(ctx context.Context, x int) (int, error) {
		if opsHeal.Load() {
			return x, nil
		}
		return 0, errors.New("not yet")
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))
	opsHeal atomic.Bool
)

// node makes an executor with start and closes it when the test ends.
func node(t *testing.T, start func() (*sdk.Executor, error)) *sdk.Executor {
	t.Helper()
	ex, err := start()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ex.Close()) })
	return ex
}

func TestWorkGoesOnlyWhereItsFunctionIs(t *testing.T) {
	t.Parallel()
	_, open := testDatabase(t)
	ctx := t.Context()
	// A client (serving nothing) and nodes that serve with opts.
	starter := func(id string, opts ...sdk.ExecutorOption) func() (*sdk.Executor, error) {
		return func() (*sdk.Executor, error) {
			all := append([]sdk.ExecutorOption{sdk.WithNodeID(id), sdk.WithLeaseDuration(2 * time.Second),
				sdk.WithPollInterval(20 * time.Millisecond), sdk.WithLogger(stenttest.Logger(t))}, opts...)
			bctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ex, err := sdk.New(open(t), all...)
			if err != nil {
				return nil, err
			}
			if err := ex.Backend().Init(bctx); err != nil {
				return nil, errors.Join(err, ex.Close())
			}
			if len(opts) > 0 {
				go func() { _ = ex.Serve(context.Background()) }()
				if err := ex.WaitUntilReady(bctx); err != nil {
					return nil, errors.Join(err, ex.Close())
				}
			}
			return ex, nil
		}
	}
	client := node(t, starter("client"))
	alpha := node(t, starter("node-alpha", sdk.WithFunctions("test_ops_alpha"), sdk.WithNodeAddress("admin", "127.0.0.1:9001")))

	betaID, err := client.StartByName(ctx, "test_ops_beta", json.RawMessage(`4`))
	require.NoError(t, err)
	alphaID, err := client.StartByName(ctx, "test_ops_alpha", json.RawMessage(`4`))
	require.NoError(t, err)
	info := waitStatus(t, ctx, client, alphaID, sdk.StatusCompleted)
	require.JSONEq(t, "5", string(info.Output))
	info, err = client.Execution(ctx, betaID)
	require.NoError(t, err)
	require.Equal(t, sdk.StatusPending, info.Status, "older, but node-alpha does not have test_ops_beta")

	st, err := client.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, []sdk.UnservedFunction{{Function: "test_ops_beta", Queue: "default", Pending: 1,
		OldestPending: info.CreatedAt}}, st.Unserved)
	require.Equal(t, 1, st.ByStatus[sdk.StatusPending])
	require.Equal(t, 1, st.ByStatus[sdk.StatusCompleted])

	members, err := client.Members(ctx)
	require.NoError(t, err)
	require.Len(t, members, 1)
	require.Equal(t, "node-alpha", members[0].ID)
	require.Equal(t, []string{"test_ops_alpha"}, members[0].Functions)
	require.Equal(t, "127.0.0.1:9001", members[0].Addresses["admin"])
	require.True(t, members[0].Alive)

	// A node that has the function joins and picks the execution up.
	node(t, starter("node-beta", sdk.WithFunctions("test_ops_beta"), sdk.WithWorkerTags("gpu", "eu", "gpu")))
	info = waitStatus(t, ctx, client, betaID, sdk.StatusCompleted)
	require.JSONEq(t, "40", string(info.Output))
	st, err = client.Stats(ctx)
	require.NoError(t, err)
	require.Empty(t, st.Unserved)
	members, err = client.Members(ctx)
	require.NoError(t, err)
	require.Len(t, members, 2)
	require.Empty(t, members[0].Tags, "node-alpha has no worker tags")
	require.Equal(t, []string{"eu", "gpu"}, members[1].Tags, "node-beta's worker tags, sorted, once each")

	// A clean stop takes the node out of the registry.
	require.NoError(t, alpha.Drain(ctx))
	members, err = client.Members(ctx)
	require.NoError(t, err)
	require.Len(t, members, 1)
	require.Equal(t, "node-beta", members[0].ID)
}

func TestStartByNameChecksItsInput(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	_, err := ex.StartByName(ctx, "test_ops_alpha", json.RawMessage(`{not json`))
	require.ErrorContains(t, err, "not valid JSON")
	_, err = ex.StartByName(ctx, "", json.RawMessage(`1`))
	require.Error(t, err)
	id, err := ex.StartByName(ctx, "test_ops_alpha", json.RawMessage(`1`), sdk.WithIdempotencyKey("k"))
	require.NoError(t, err)
	again, err := ex.StartByName(ctx, "test_ops_alpha", json.RawMessage(`1`), sdk.WithIdempotencyKey("k"))
	require.NoError(t, err)
	require.Equal(t, id, again)
	info := waitStatus(t, ctx, ex, id, sdk.StatusCompleted)
	require.Equal(t, "k", info.IdempotencyKey)
	require.False(t, info.EndedAt.IsZero())
}

func TestStatsQueueDepthCleanup(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	for i := range 3 {
		_, err := opsAlpha.Call(ctx, i)
		require.NoError(t, err)
	}
	delayed, err := opsAlpha.Start(ctx, 9, sdk.WithDelay(time.Hour), sdk.WithCallQueue("later"))
	require.NoError(t, err)
	st, err := ex.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, st.Total)
	require.Equal(t, 3, st.ByStatus[sdk.StatusCompleted])
	require.Len(t, st.Queues, 1)
	require.Equal(t, sdk.QueueStats{Queue: "later", Pending: 1}, st.Queues[0], "a delayed start is not due")
	depth, err := ex.QueueDepth(ctx, "later")
	require.NoError(t, err)
	require.Zero(t, depth)
	_, err = ex.QueueDepth(ctx, "")
	require.Error(t, err)

	n, err := ex.Cleanup(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "nothing finished an hour ago")
	n, err = ex.Cleanup(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	st, err = ex.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, st.Total)
	_, err = ex.Execution(ctx, delayed.ID())
	require.NoError(t, err, "a pending execution stays")
	_, err = ex.Cleanup(ctx, -time.Second)
	require.Error(t, err)
}

func TestRetentionSweeps(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t, sdk.WithRetention(time.Millisecond))
	h, err := opsAlpha.Start(ctx, 1)
	require.NoError(t, err)
	_, err = h.Result(ctx)
	require.NoError(t, err)
	testutil.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		_, err := ex.Execution(ctx, h.ID())
		if errors.Is(err, sdk.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("execution %s still there (%v)", h.ID(), err)
	})
}

func TestListPages(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	var want []string
	for i := range 7 {
		h, err := opsAlpha.Start(ctx, i, sdk.WithCallQueue("paged"), sdk.WithDelay(time.Hour))
		require.NoError(t, err)
		want = append([]string{h.ID()}, want...)
	}
	var got []string
	f := sdk.ListFilter{Queue: "paged", Limit: 3}
	pages := 0
	for {
		p, err := ex.ListPage(ctx, f)
		require.NoError(t, err)
		pages++
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	require.Equal(t, 3, pages)
	// Executions created in the same millisecond are ordered by ID.
	require.ElementsMatch(t, want, got)
	all, err := ex.List(ctx, sdk.ListFilter{Queue: "paged"})
	require.NoError(t, err)
	ids := make([]string, len(all))
	for i, a := range all {
		ids[i] = a.ID
	}
	require.Equal(t, ids, got, "pages follow List's order")

	none, err := ex.List(ctx, sdk.ListFilter{Queue: "paged", Since: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = ex.ListPage(ctx, sdk.ListFilter{After: "garbage!"})
	require.ErrorContains(t, err, "cursor")
	_, err = ex.List(ctx, sdk.ListFilter{Status: "sleeping"})
	require.ErrorContains(t, err, "unknown status")
}

func TestJournalAndWaitingOn(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := opsWait.Start(ctx, 1)
	require.NoError(t, err)
	var info sdk.ExecutionInfo
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err = ex.Execution(ctx, h.ID())
		if err != nil {
			return err
		}
		if info.WaitingOn != "signal go" {
			return fmt.Errorf("waiting on %q", info.WaitingOn)
		}
		return nil
	})
	require.Equal(t, 1, info.Attempts)
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "go", 7))
	out, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, 7, out)

	entries, err := ex.Journal(ctx, h.ID())
	require.NoError(t, err)
	require.Len(t, entries, 2)
	require.Equal(t, "call", entries[0].Kind)
	require.Equal(t, "test_ops_alpha", entries[0].Name)
	require.True(t, strings.HasPrefix(entries[0].ChildID, h.ID()))
	require.JSONEq(t, "2", string(entries[0].Output))
	require.Equal(t, "signal", entries[1].Kind)
	require.Equal(t, "go", entries[1].Name)
	for _, e := range entries {
		require.True(t, e.Done)
		require.False(t, e.StartedAt.IsZero())
		require.False(t, e.EndedAt.Before(e.StartedAt))
	}
	_, err = ex.Journal(ctx, "no-such-execution")
	require.ErrorIs(t, err, sdk.ErrNotFound)
	info, err = ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Empty(t, info.WaitingOn)
}

func TestReplayDeadLetterByExecutionID(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := opsFailing.Start(ctx, 3)
	require.NoError(t, err)
	_, err = h.Result(ctx)
	require.Error(t, err)
	info, err := ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.NotNil(t, info.Failure)
	require.Equal(t, "not yet", info.Failure.Message)
	require.Equal(t, "error", info.Failure.Kind)

	err = ex.ReplayDeadLetter(ctx, "neither")
	require.ErrorIs(t, err, sdk.ErrNotFound)
	require.ErrorContains(t, err, "neither a dead letter ID nor the ID of an execution")
	done, err := opsAlpha.Start(ctx, 1)
	require.NoError(t, err)
	_, err = done.Result(ctx)
	require.NoError(t, err)
	require.ErrorContains(t, ex.ReplayDeadLetter(ctx, done.ID()), "has no dead letter")

	opsHeal.Store(true)
	require.NoError(t, ex.ReplayDeadLetter(ctx, h.ID()))
	waitStatus(t, ctx, ex, h.ID(), sdk.StatusCompleted)
}
