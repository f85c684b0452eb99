package actors

import (
	"context"
	"fmt"
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

	old, newer := &activation{}, &activation{}
	octx, stopOld := context.WithCancel(ctx)
	oldDone := make(chan error, 1)
	go func() { _, err := rt.acquirePermit(octx, "x", old, key, queue, 1, 0, time.Now()); oldDone <- err }()
	waitRequests(t, rt, key, 1)
	newerDone := make(chan error, 1)
	go func() { _, err := rt.acquirePermit(ctx, "x", newer, key, queue, 1, 0, time.Now()); newerDone <- err }()
	waitRequests(t, rt, key, 2)
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

	rt.releasePermit("x", old, key, queue) // the old activation's deferred release
	time.Sleep(100 * time.Millisecond)
	n, err := b.CountPermits(ctx, key)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the newer activation still holds the permit")

	rt.releasePermit("x", newer, key, queue)
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		n, err := b.CountPermits(ctx, key)
		if err != nil || n == 0 {
			return err
		}
		return context.DeadlineExceeded
	})
}

// waitRequests polls the router of key until it has received n permit
// requests, and checks that it queues them as one holder's.
func waitRequests(t *testing.T, rt *Runtime, key string, n int) {
	t.Helper()
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		q := &permitQueueQuery{reply: make(chan permitQueueState, 1)}
		rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: q})
		st := <-q.reply
		if st.requests < n {
			return fmt.Errorf("the router has %d requests, want %d", st.requests, n)
		}
		if len(st.holders) != 1 {
			return fmt.Errorf("the router queues %v", st.holders)
		}
		return nil
	})
}
