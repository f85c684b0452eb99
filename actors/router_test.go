package actors

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence/sqlite"
)

// TestPermitGoesToTheNewerActivation: a node that claims its own running
// execution again (its lease renewal fell behind) stops the old activation
// and starts a new one, both for the same permit holder. The old one's
// late cancel must not withdraw the new one's request, and its release must
// not give back the permit the new one holds.
func TestPermitGoesToTheNewerActivation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "stent.db"))
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	rt, err := New(Config{Backend: b, NodeID: "n", LeaseTTL: time.Minute,
		Lookup: func(string) (*Function, bool) { return nil, false },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.NoError(t, rt.Stop(sctx))
		require.NoError(t, b.Close())
	})

	const key, queue = "limited", "default"
	// The only permit is taken: both activations queue.
	ok, err := b.AcquirePermit(ctx, key, "blocker", "n", 1, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)

	old, newer := &execution{id: "x", rt: rt}, &execution{id: "x", rt: rt}
	octx, stopOld := context.WithCancel(ctx)
	oldDone := make(chan error, 1)
	go func() { oldDone <- rt.acquirePermit(octx, old, key, queue, 1, 0, time.Now()) }()
	time.Sleep(50 * time.Millisecond)
	newerDone := make(chan error, 1)
	go func() { newerDone <- rt.acquirePermit(ctx, newer, key, queue, 1, 0, time.Now()) }()
	time.Sleep(50 * time.Millisecond)
	rt.mu.Lock()
	rt.active["x"] = newer
	rt.mu.Unlock()
	stopOld()
	require.ErrorIs(t, <-oldDone, context.Canceled)

	require.NoError(t, b.ReleasePermit(ctx, key, "blocker", "n"))
	select {
	case err := <-newerDone:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the newer activation never got the permit: the old one's cancel withdrew its request")
	}

	rt.releasePermit(old, key, queue) // the old activation's deferred release
	time.Sleep(100 * time.Millisecond)
	n, err := b.CountPermits(ctx, key)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the newer activation still holds the permit")

	rt.releasePermit(newer, key, queue)
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		n, err := b.CountPermits(ctx, key)
		if err != nil || n == 0 {
			return err
		}
		return context.DeadlineExceeded
	})
}
