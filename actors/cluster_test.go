package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
)

// stepLog records which node ran each iteration of a test body.
type stepLog struct {
	mu   sync.Mutex
	runs []stepRun
}

type stepRun struct {
	node string
	i    int
	at   time.Time
}

func (l *stepLog) add(node string, i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs = append(l.runs, stepRun{node: node, i: i, at: time.Now()})
}

func (l *stepLog) snapshot() []stepRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]stepRun(nil), l.runs...)
}

// clusterRuntime starts a serving runtime called name on b, a member of a
// cluster on loopback that it joins through seeds. It polls for due work
// every poll.
func clusterRuntime(t *testing.T, b persistence.Backend, name string, log *stepLog, poll time.Duration, seeds ...string) *Runtime {
	t.Helper()
	w := newTestWriter(t) // registered before the runtime's cleanup: stops logging after it
	loop := &Function{Name: "cluster_loop", Queue: "default", Run: func(ctx context.Context, _ []byte) ([]byte, error) {
		for i := range 30 {
			if err := Sleep(ctx, 100*time.Millisecond); err != nil {
				return nil, err
			}
			log.add(name, i)
		}
		return []byte(`"done"`), nil
	}}
	cc := cluster.DefaultLocalConfig()
	cc.RemoteAddr = "127.0.0.1:0"
	cc.Seeds = seeds
	cc.Label = "actors-test"
	cc.SecretKey = []byte("0123456789abcdef")
	rt, err := New(Config{
		Backend: b, NodeID: name, LeaseTTL: time.Minute, PollInterval: poll,
		Lookup: func(n string) (*Function, bool) {
			switch n {
			case loop.Name:
				return loop, true
			case limitedFn.Name:
				return limitedFn, true
			}
			return nil, false
		},
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
		_ = rt.Stop(sctx) // a member cut off by the test reports its closed gossip
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

// TestClusterTakeover runs an execution on one of three members, cuts that
// member off (its gossip and remote endpoint stop without a goodbye, as in
// a crash, while its runtime goes on), and checks that another member takes
// the execution over long before its one-minute lease would run out, that
// the cut-off member's activation is fenced (it records no step after the
// takeover), and that the execution completes once.
func TestClusterTakeover(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "cluster.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) }) // after the runtimes' cleanups
	ctx := context.Background()
	require.NoError(t, b.Init(ctx))

	var log stepLog
	// member-a goes on running after it is cut off: it must not poll, or
	// it may claim the execution again itself the moment the others
	// release its lease (which is allowed, and fenced, but tests nothing).
	a := clusterRuntime(t, b, "member-a", &log, time.Hour)
	seed := a.cl.members.LocalMember().GossipAddr
	bb := clusterRuntime(t, b, "member-b", &log, 100*time.Millisecond, seed)
	c := clusterRuntime(t, b, "member-c", &log, 100*time.Millisecond, seed)
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, rt := range []*Runtime{a, bb, c} {
			if n := len(rt.Members()); n != 3 {
				return fmt.Errorf("%s sees %d members", rt.NodeID(), n)
			}
		}
		return nil
	})

	id := NewID()
	_, created, err := a.StartLocal(ctx, &persistence.Execution{ID: id, Function: "cluster_loop", Queue: "default",
		Input: []byte(`null`), RootID: id, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()})
	require.NoError(t, err)
	require.True(t, created)
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := len(log.snapshot()); n < 3 {
			return fmt.Errorf("%d steps so far", n)
		}
		return nil
	})

	// Cut member-a off: no leave message, no remote endpoint.
	cut := time.Now()
	require.NoError(t, a.cl.members.Close())
	a.cl.remote.Stop()

	var takeover time.Time
	testutil.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		for _, r := range log.snapshot() {
			if r.node != "member-a" && r.at.After(cut) {
				takeover = r.at
				return nil
			}
		}
		return errors.New("no other member ran a step yet")
	})
	t.Logf("takeover %s after member-a was cut off (lease 1m)", takeover.Sub(cut).Round(time.Millisecond))

	out, err := bb.Await(ctx, id)
	require.NoError(t, err)
	require.Equal(t, persistence.StatusCompleted, out.Status)
	rec, err := b.GetExecution(ctx, id)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rec.Epoch, int64(2), "taken over with a new epoch")

	// member-a's activation went on after the cut until its next write was
	// refused: no step of it after the takeover (allowing the one whose
	// Sleep began before the takeover and recorded its run in memory).
	late := 0
	for _, r := range log.snapshot() {
		if r.node == "member-a" && r.at.After(takeover) {
			late++
		}
	}
	require.LessOrEqual(t, late, 1, "steps member-a ran after the takeover")
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if a.pidOf(id) != nil {
			return errors.New("member-a still runs it")
		}
		return nil
	})
}

// testWriter writes log lines to the test's log until the test ends (the
// gossip of a member that has left may log a moment after that).
type testWriter struct {
	t    *testing.T
	done *atomic.Bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, done: new(atomic.Bool)}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// limited is a function limited to 2 at once across the cluster; it
// records how many of it ran at once.
var (
	limitedNow, limitedMax atomic.Int32
	limitedFn              = &Function{Name: "cluster_limited", Queue: "default", MaxConcurrent: 2,
		Run: func(ctx context.Context, _ []byte) ([]byte, error) {
			n := limitedNow.Add(1)
			defer limitedNow.Add(-1)
			for {
				m := limitedMax.Load()
				if n <= m || limitedMax.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
			return []byte(`1`), nil
		}}
)

// TestClusterPermits starts executions of a function limited to 2 on each
// of three members: their permits are queued by one router in the cluster
// and taken in the database, never more than 2 run at once, and all
// complete.
func TestClusterPermits(t *testing.T) {
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "permits.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	ctx := context.Background()
	require.NoError(t, b.Init(ctx))
	var log stepLog
	a := clusterRuntime(t, b, "permit-a", &log, 100*time.Millisecond)
	seed := a.cl.members.LocalMember().GossipAddr
	rts := []*Runtime{a, clusterRuntime(t, b, "permit-b", &log, 100*time.Millisecond, seed), clusterRuntime(t, b, "permit-c", &log, 100*time.Millisecond, seed)}
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, rt := range rts {
			if n := len(rt.Members()); n != 3 {
				return fmt.Errorf("%s sees %d members", rt.NodeID(), n)
			}
		}
		return nil
	})
	limitedMax.Store(0)
	var ids []string
	for i := range 30 {
		id := NewID()
		_, _, err := rts[i%3].StartLocal(ctx, &persistence.Execution{ID: id, Function: limitedFn.Name, Queue: "default",
			Input: []byte(`null`), RootID: id, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := a.Await(actx, id)
		cancel()
		require.NoError(t, err)
		require.Equal(t, persistence.StatusCompleted, out.Status)
	}
	require.LessOrEqual(t, limitedMax.Load(), int32(2), "most at once")
	require.Equal(t, int32(2), limitedMax.Load(), "the limit was used")
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		// Each permit goes back just after its execution's outcome is
		// recorded.
		n, err := b.CountPermits(ctx, limitedFn.Name)
		if err == nil && n != 0 {
			err = fmt.Errorf("%d permits left", n)
		}
		return err
	})
}
