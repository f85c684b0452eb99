package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testutil.WrapTestMain(m,
		// TestRemoteMutualTLS sends from a plain endpoint to a TLS one. The
		// plain endpoint's writer cannot connect, and protoactor's remote
		// retries inside the writer's Receive, sleeping 2 s between its 5
		// tries: nothing interrupts it, so Stop gives up waiting for it
		// (cluster.writersStopWait), and the writer, with its gRPC client
		// connection, outlives the test by up to 10 s.
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// testLogger discards the log unless STENT_DEBUG=1, then writes it to
// stderr at debug level. Not t.Log: memberlist's goroutines may log a moment
// after a test has returned.
func testLogger() *slog.Logger {
	if os.Getenv("STENT_DEBUG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is DefaultLocalConfig for node name, with a made-up remote
// address (nothing listens there: these tests only gossip).
func testConfig(name string, seeds ...string) Config {
	cfg := DefaultLocalConfig()
	cfg.NodeName = name
	cfg.RemoteAddr = "127.0.0.1:" + fmt.Sprint(20000+len(name)*7)
	cfg.Seeds = seeds
	cfg.Logger = testLogger()
	return cfg
}

// join joins cfg and closes the membership when the test ends.
func join(t *testing.T, cfg Config) *Membership {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := Join(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	return m
}

// waitForView waits until m sees exactly the alive members names.
func waitForView(t *testing.T, m *Membership, timeout time.Duration, names ...string) {
	t.Helper()
	slices.Sort(names)
	testutil.CheckFor(t, timeout, 10*time.Millisecond, func() error {
		var got []string
		for _, mem := range m.Members() {
			if mem.State == StateAlive {
				got = append(got, mem.Name)
			}
		}
		if !slices.Equal(got, names) {
			return fmt.Errorf("%s sees %v alive, want %v", m.LocalMember().Name, got, names)
		}
		return nil
	})
}

// threeNodes starts three members, b and c joining through a, with
// different queues, and waits until each sees the three.
func threeNodes(t *testing.T, mutate func(*Config)) (a, b, c *Membership) {
	t.Helper()
	cfgA := testConfig("node-a")
	if mutate != nil {
		mutate(&cfgA)
	}
	a = join(t, cfgA)
	seed := a.LocalMember().GossipAddr

	cfgB := testConfig("node-b", seed)
	cfgB.Queues = []string{"default"}
	cfgC := testConfig("node-c", seed)
	cfgC.Queues = []string{"default", "gpu"}
	if mutate != nil {
		mutate(&cfgB)
		mutate(&cfgC)
	}
	b = join(t, cfgB)
	c = join(t, cfgC)
	for _, m := range []*Membership{a, b, c} {
		waitForView(t, m, 5*time.Second, "node-a", "node-b", "node-c")
	}
	return a, b, c
}

func TestJoin(t *testing.T) {
	t.Parallel()

	t.Run("ThreeMembersSeeEachOthersMetadata", func(t *testing.T) {
		t.Parallel()
		a, b, c := threeNodes(t, nil)
		require.Equal(t, 1, b.SeedsJoined())
		require.Equal(t, 0, a.SeedsJoined())

		want := map[string]Member{}
		for _, m := range []*Membership{a, b, c} {
			local := m.LocalMember()
			require.NotZero(t, m.GossipPort())
			require.Equal(t, fmt.Sprintf("127.0.0.1:%d", m.GossipPort()), local.GossipAddr)
			require.Equal(t, StateAlive, local.State)
			want[local.Name] = local
		}
		require.Nil(t, want["node-a"].Queues)
		require.Equal(t, []string{"default"}, want["node-b"].Queues)
		require.Equal(t, []string{"default", "gpu"}, want["node-c"].Queues)

		for _, m := range []*Membership{a, b, c} {
			members := m.Members()
			require.Len(t, members, 3)
			for _, got := range members {
				w := want[got.Name]
				require.NoError(t, got.MetaErr)
				require.Equal(t, w.GossipAddr, got.GossipAddr, "seen by %s", m.LocalMember().Name)
				require.Equal(t, w.RemoteAddr, got.RemoteAddr, "seen by %s", m.LocalMember().Name)
				require.Equal(t, w.Queues, got.Queues, "seen by %s", m.LocalMember().Name)
			}
		}
	})

	t.Run("NoSeedAnswers", func(t *testing.T) {
		t.Parallel()
		// A member that is gone leaves a port nobody listens on.
		gone := join(t, testConfig("gone"))
		addr := gone.LocalMember().GossipAddr
		require.NoError(t, gone.Close())

		_, err := Join(context.Background(), testConfig("lonely", addr))
		require.ErrorContains(t, err, "joining lonely through seeds")
	})

	t.Run("InvalidConfig", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig("bad")
		cfg.SecretKey = []byte("short")
		_, err := Join(context.Background(), cfg)
		require.ErrorContains(t, err, "SecretKey is 5 bytes")
	})

	t.Run("CanceledContext", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := Join(ctx, testConfig("canceled"))
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestLeave(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nil)
	changed := a.Changes()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Leave(ctx))
	select {
	case <-c.Done():
	default:
		t.Fatal("Done is not closed after Leave")
	}
	require.NoError(t, c.Leave(ctx), "second Leave")
	require.NoError(t, c.Close(), "Close after Leave")
	require.Equal(t, StateLeft, c.LocalMember().State)
	select {
	case <-c.Changes():
	default:
		t.Fatal("Changes is not closed after Leave")
	}

	waitForView(t, a, 5*time.Second, "node-a", "node-b")
	waitForView(t, b, 5*time.Second, "node-a", "node-b")
	select {
	case <-changed:
	default:
		t.Fatal("Changes did not fire when node-c left")
	}
	for _, m := range a.Members() {
		require.NotEqual(t, "node-c", m.Name, "a member that left is not in the view")
	}
}

func TestCrashDetected(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nil)

	start := time.Now()
	require.NoError(t, c.Close()) // memberlist Shutdown: no leave message
	require.Equal(t, StateDead, c.LocalMember().State)
	waitForView(t, a, 10*time.Second, "node-a", "node-b")
	waitForView(t, b, 10*time.Second, "node-a", "node-b")
	detected := time.Since(start)
	t.Logf("a member shut down without leaving was dropped by both survivors after %s", detected)
	require.Less(t, detected, 5*time.Second)

	t.Run("RestartUnderSameName", func(t *testing.T) {
		// DeadNodeReclaimTime lets the restarted process, on a new port,
		// take its name back.
		cfg := testConfig("node-c", a.LocalMember().GossipAddr)
		c2 := join(t, cfg)
		for _, m := range []*Membership{a, b, c2} {
			waitForView(t, m, 5*time.Second, "node-a", "node-b", "node-c")
		}
		for _, m := range a.Members() {
			if m.Name == "node-c" {
				require.Equal(t, c2.LocalMember().GossipAddr, m.GossipAddr)
			}
		}
	})
}

func TestSecurity(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")

	t.Run("NodeWithoutTheKeyCannotJoin", func(t *testing.T) {
		t.Parallel()
		a, b, _ := threeNodes(t, func(c *Config) { c.SecretKey = key })
		seed := a.LocalMember().GossipAddr

		wrong := testConfig("wrong-key", seed)
		wrong.SecretKey = []byte("fedcba9876543210")
		_, err := Join(context.Background(), wrong)
		require.Error(t, err, "a node with another key joined")

		plain := testConfig("no-key", seed)
		_, err = Join(context.Background(), plain)
		require.Error(t, err, "a node without a key joined")

		for _, m := range []*Membership{a, b} {
			for _, mem := range m.Members() {
				require.NotContains(t, []string{"wrong-key", "no-key"}, mem.Name)
			}
		}
	})

	t.Run("NodeWithAnotherLabelCannotJoin", func(t *testing.T) {
		t.Parallel()
		a, b, _ := threeNodes(t, func(c *Config) { c.Label = "cluster-1" })
		seed := a.LocalMember().GossipAddr

		other := testConfig("other-label", seed)
		other.Label = "cluster-2"
		_, err := Join(context.Background(), other)
		require.Error(t, err, "a node with another label joined")

		none := testConfig("no-label", seed)
		_, err = Join(context.Background(), none)
		require.Error(t, err, "a node without a label joined")

		for _, m := range []*Membership{a, b} {
			for _, mem := range m.Members() {
				require.NotContains(t, []string{"other-label", "no-label"}, mem.Name)
			}
		}
	})
}

func TestOwnerAgreesAcrossMembers(t *testing.T) {
	t.Parallel()
	a, b, c := threeNodes(t, nil)

	// A member falsely declared dead on a loaded test machine changes the
	// views for a moment: compare owners over views that did not change
	// while they were computed.
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		nodes := []*Membership{a, b, c}
		changes := make([]<-chan struct{}, len(nodes))
		for i, m := range nodes {
			changes[i] = m.Changes()
			if n := len(m.Members()); n != 3 {
				return fmt.Errorf("%s sees %d members", m.LocalMember().Name, n)
			}
		}
		counts := map[string]int{}
		var disagreement error
		for i := range 1000 {
			id := fmt.Sprintf("exec-%d", i)
			for _, queue := range []string{"default", "gpu", "other"} {
				oa, okA := a.Owner(id, queue)
				ob, okB := b.Owner(id, queue)
				oc, okC := c.Owner(id, queue)
				switch {
				case !okA || !okB || !okC:
					disagreement = fmt.Errorf("no owner for %s in %s", id, queue)
				case oa.Name != ob.Name || oa.Name != oc.Name:
					disagreement = fmt.Errorf("owners of %s in %s: %s, %s, %s", id, queue, oa.Name, ob.Name, oc.Name)
				case !oa.Serves(queue):
					return fmt.Errorf("owner %s of %s does not serve %s", oa.Name, id, queue)
				}
				counts[queue+"/"+oa.Name]++
			}
		}
		for i, ch := range changes {
			select {
			case <-ch:
				return fmt.Errorf("the view of %s changed meanwhile", nodes[i].LocalMember().Name)
			default:
			}
		}
		if disagreement != nil {
			return fmt.Errorf("over unchanged views: %w", disagreement)
		}
		// Only node-c serves gpu; node-a serves every queue, and alone
		// "other".
		if counts["gpu/node-b"] != 0 || counts["other/node-a"] != 1000 || counts["default/node-b"] == 0 {
			return fmt.Errorf("owners per queue: %v", counts)
		}
		return nil
	})

	pid := PID(mustOwner(t, a, "exec-1", "default"))
	require.Equal(t, ExecutionsActor, pid.Id)
}

func mustOwner(t *testing.T, m *Membership, id, queue string) Member {
	t.Helper()
	o, ok := m.Owner(id, queue)
	require.True(t, ok)
	return o
}

func TestBadMetadata(t *testing.T) {
	t.Parallel()
	m := &Membership{
		logger:  testLogger(),
		signal:  make(chan struct{}, 1),
		nodes:   map[string]nodeCopy{},
		changed: make(chan struct{}),
		local:   Member{Name: "node-a"},
	}
	events := eventDelegate{m: m}
	good, err := encodeMeta(nodeMeta{RemoteAddr: "127.0.0.1:8090"})
	require.NoError(t, err)
	events.NotifyJoin(&memberlist.Node{Name: "node-a", Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: good})
	events.NotifyJoin(&memberlist.Node{Name: "node-b", Addr: net.IPv4(127, 0, 0, 1), Port: 7947, Meta: []byte{9, 9}})
	changed := m.Changes()
	m.refresh()
	<-changed

	members := m.Members()
	require.Len(t, members, 2)
	require.NoError(t, members[0].MetaErr)
	require.Equal(t, "127.0.0.1:7946", members[0].GossipAddr)
	require.ErrorContains(t, members[1].MetaErr, "decoding metadata of member node-b")
	require.Empty(t, members[1].RemoteAddr)
	for i := range 100 {
		o, ok := m.Owner(fmt.Sprint(i), "default")
		require.True(t, ok)
		require.Equal(t, "node-a", o.Name, "a member with bad metadata is never an owner")
	}

	events.NotifyLeave(&memberlist.Node{Name: "node-b", State: memberlist.StateDead})
	m.refresh()
	require.Len(t, m.Members(), 1)
}
