package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/sdk"
)

var directWarned = sdk.Durable("test_direct_warned", func(ctx context.Context, x int) (int, error) { return x + 1, nil })

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of Map.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Not parallel: it swaps slog's default logger and RequireExecutor, both
// process-wide (sequential tests run before the parallel ones start).
func TestCallWithoutExecutorWarnsOnceOrFails(t *testing.T) {
	var logs lockedBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })

	ctx := context.Background()
	for i := range 3 {
		got, err := directWarned.Call(ctx, i)
		require.NoError(t, err)
		require.Equal(t, i+1, got)
	}
	got, err := directWarned.Map(ctx, []int{1, 2})
	require.NoError(t, err)
	require.Equal(t, []int{2, 3}, got)
	out := logs.String()
	require.Equal(t, 1, strings.Count(out, "durable function called without an executor"), out)
	require.Contains(t, out, "function=test_direct_warned")
	require.Contains(t, out, "sdk.Bootstrap or sdk.Use")

	sdk.RequireExecutor(true)
	t.Cleanup(func() { sdk.RequireExecutor(false) })
	_, err = directWarned.Call(ctx, 1)
	require.ErrorIs(t, err, sdk.ErrNoExecutor)
	require.Contains(t, err.Error(), `"test_direct_warned"`)
	_, err = directWarned.Map(ctx, []int{1})
	require.ErrorIs(t, err, sdk.ErrNoExecutor)
	_, err = directWarned.Start(ctx, 1)
	require.ErrorIs(t, err, sdk.ErrNoExecutor)
}

func TestExecutionInfoPrintsPayloadsAsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	info := sdk.ExecutionInfo{ID: "ex1", Function: "f", Status: sdk.StatusCompleted, Attempts: 1,
		Input: json.RawMessage(`{"id":"A"}`), Output: json.RawMessage(`[1,2]`), Queue: "default",
		CreatedAt: at, UpdatedAt: at}
	s := fmt.Sprintf("%v", info)
	require.Equal(t, `{ID:ex1 Function:f Status:completed Attempts:1 Input:{"id":"A"} Output:[1,2] Queue:default Priority:0 CreatedAt:2026-01-02T03:04:05.000Z UpdatedAt:2026-01-02T03:04:05.000Z}`, s)
	require.Equal(t, s, fmt.Sprint(info))
}

func TestExecutionInfoPrintsProgress(t *testing.T) {
	t.Parallel()
	info := sdk.ExecutionInfo{ID: "ex2", Function: "g", Status: sdk.StatusRunning, CachedFrom: "ex1",
		Counters: map[string]float64{"done": 3, "bytes": 1.5},
		State:    map[string]json.RawMessage{"stage": json.RawMessage(`"resize"`), "file": json.RawMessage(`{"n":1}`)}}
	s := info.String()
	require.Contains(t, s, ` CachedFrom:ex1 Counters:map[bytes:1.5 done:3] State:map[file:{"n":1} stage:"resize"] `)
}
