package actors

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
)

// taggedRuntime starts a serving cluster member called name with tags,
// whose one function needs the tag "gpu" and records where it ran.
func taggedRuntime(t *testing.T, b persistence.Backend, name string, tags []string, log *stepLog, seeds ...string) *Runtime {
	t.Helper()
	w := newTestWriter(t)
	fn := &Function{Name: "cluster_gpu", Queue: "default", Tags: []string{"gpu"},
		Run: func(ctx context.Context, _ []byte) ([]byte, error) {
			log.add(name, 0)
			return []byte(`"done"`), nil
		}}
	cc := cluster.DefaultLocalConfig()
	cc.RemoteAddr = "127.0.0.1:0"
	cc.Seeds = seeds
	cc.Label = "actors-tags-test"
	rt, err := New(Config{
		Backend: b, NodeID: name, Tags: tags, LeaseTTL: time.Minute, PollInterval: 50 * time.Millisecond,
		Lookup:  func(n string) (*Function, bool) { return fn, n == fn.Name },
		Cluster: &cc,
		Logger:  slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rt.Serve(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		require.NoError(t, rt.Stop(sctx))
		cancel()
		require.NoError(t, <-served)
	})
	select {
	case <-rt.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not ready", name)
	}
	return rt
}

// TestPlacementRespectsTags starts tagged executions from a member without
// the tag: placement by hash sends about half of them to that member, which
// must leave them (it reads their tags before taking the lease), and the
// member with the tag runs every one.
func TestPlacementRespectsTags(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "tags.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	ctx := context.Background()
	require.NoError(t, b.Init(ctx))

	var log stepLog
	plain := taggedRuntime(t, b, "plain", nil, &log)
	gpu := taggedRuntime(t, b, "gpu", []string{"gpu"}, &log, plain.cl.members.LocalMember().GossipAddr)
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, rt := range []*Runtime{plain, gpu} {
			if n := len(rt.Members()); n != 2 {
				return fmt.Errorf("%s sees %d members", rt.NodeID(), n)
			}
		}
		return nil
	})

	const n = 20
	for range n {
		id := NewID()
		require.NoError(t, plain.TagExecution(ctx, []string{"gpu"}, id))
		now := time.Now().UTC()
		_, created, err := b.CreateExecution(ctx, &persistence.Execution{ID: id, Function: "cluster_gpu", Queue: "default",
			Status: persistence.StatusPending, Input: []byte(`null`), RootID: id, CreatedAt: now, UpdatedAt: now})
		require.NoError(t, err)
		require.True(t, created)
		plain.Dispatch(id, "default", "cluster_gpu", true) // placed by hash: on either member
	}
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if got := len(log.snapshot()); got < n {
			return fmt.Errorf("%d of %d ran", got, n)
		}
		return nil
	})
	for _, r := range log.snapshot() {
		require.Equal(t, "gpu", r.node, "a gpu execution ran on a member without the tag")
	}
	require.Len(t, log.snapshot(), n)
}
