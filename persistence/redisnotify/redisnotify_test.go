package redisnotify

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// testAddr returns the Redis address from STENT_TEST_REDIS. It skips the
// test when the variable is unset, and fails it under CI.
func testAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("STENT_TEST_REDIS")
	if addr == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STENT_TEST_REDIS must be set under CI")
		}
		t.Skip("STENT_TEST_REDIS is not set; set it to a Redis address (host:port) to run the Redis tests")
	}
	return addr
}

func randomPrefix() string {
	var b [6]byte
	rand.Read(b[:])
	return "stent_test_" + hex.EncodeToString(b[:]) + ":"
}

// testBundle is what a test needs beside its notifier.
type testBundle struct {
	addr   string
	name   string // the client name of the notifier's connections
	prefix string
}

// newTestNotifier returns a notifier on a channel of its own, closed when
// the test ends. Its connections carry a client name of their own.
func newTestNotifier(t *testing.T) (*Notifier, *testBundle) {
	t.Helper()
	addr := testAddr(t)
	prefix := randomPrefix()
	name := strings.TrimSuffix(prefix, ":")
	n, err := New(&redis.Options{Addr: addr, ClientName: name}, prefix)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n, &testBundle{addr: addr, name: name, prefix: prefix}
}

func subscribe(t *testing.T, n persistence.Notifier) <-chan persistence.Notification {
	t.Helper()
	ch := make(chan persistence.Notification, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, n.Subscribe(ctx, func(note persistence.Notification) { ch <- note }))
	return ch
}

func receive(t *testing.T, ch <-chan persistence.Notification) persistence.Notification {
	t.Helper()
	select {
	case note := <-ch:
		return note
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5s")
		return persistence.Notification{}
	}
}

// killClients closes the server side of every connection named name and
// returns how many it closed.
func killClients(t *testing.T, addr, name string) int {
	t.Helper()
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { require.NoError(t, admin.Close()) }()
	list, err := admin.ClientList(ctx).Result()
	require.NoError(t, err)
	killed := 0
	sc := bufio.NewScanner(strings.NewReader(list))
	for sc.Scan() {
		var id string
		match := false
		for _, field := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(field, "=")
			switch {
			case k == "id":
				id = v
			case k == "name" && v == name:
				match = true
			}
		}
		if match {
			require.NoError(t, admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err())
			killed++
		}
	}
	return killed
}

func TestNotifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PublishSubscribe", func(t *testing.T) {
		t.Parallel()
		n, _ := newTestNotifier(t)
		ch1, ch2 := subscribe(t, n), subscribe(t, n)
		want := []persistence.Notification{
			{Topic: persistence.TopicQueue, Payload: "default"},
			{Topic: persistence.TopicExecution, Payload: "exec-1"},
			{Topic: persistence.TopicDone, Payload: "with:colon"},
			{Topic: "empty", Payload: ""},
		}
		for _, note := range want {
			require.NoError(t, n.Publish(ctx, note))
		}
		for _, ch := range []<-chan persistence.Notification{ch1, ch2} {
			for _, note := range want {
				require.Equal(t, note, receive(t, ch), "in order, to every subscriber")
			}
		}
	})

	t.Run("PrefixesIsolated", func(t *testing.T) {
		t.Parallel()
		a, _ := newTestNotifier(t)
		b, _ := newTestNotifier(t)
		cha, chb := subscribe(t, a), subscribe(t, b)
		require.NoError(t, b.Publish(ctx, persistence.Notification{Topic: "x", Payload: "for b"}))
		require.NoError(t, a.Publish(ctx, persistence.Notification{Topic: "x", Payload: "for a"}))
		require.Equal(t, "for a", receive(t, cha).Payload)
		require.Equal(t, "for b", receive(t, chb).Payload)
	})

	t.Run("Reconnects", func(t *testing.T) {
		t.Parallel()
		n, bundle := newTestNotifier(t)
		ch := subscribe(t, n)
		for round := range 3 {
			require.Positive(t, killClients(t, bundle.addr, bundle.name))
			// Notifications sent while the subscription reconnects are
			// lost: publish until one arrives.
			payload := fmt.Sprint("after-", round)
			testutil.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
				if err := n.Publish(ctx, persistence.Notification{Topic: "x", Payload: payload}); err != nil {
					return err
				}
				select {
				case got := <-ch:
					if got.Payload == payload {
						return nil
					}
					return fmt.Errorf("got %q", got.Payload)
				case <-time.After(50 * time.Millisecond):
					return errors.New("not received")
				}
			})
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		n, _ := newTestNotifier(t)
		require.ErrorContains(t, n.Publish(ctx, persistence.Notification{Topic: "a:b"}), "contains ':'")
		_, err := New(nil, "p")
		require.Error(t, err)
		_, err = New(&redis.Options{Addr: testAddr(t)}, "")
		require.Error(t, err)
	})

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		testAddr(t)
		n, err := New(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second}, randomPrefix())
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		require.ErrorContains(t, n.Publish(ctx, persistence.Notification{Topic: "x"}), "127.0.0.1:1")
		require.ErrorContains(t, n.Subscribe(ctx, func(persistence.Notification) {}), "127.0.0.1:1")
	})

	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		addr := testAddr(t)
		n, err := New(&redis.Options{Addr: addr}, randomPrefix())
		require.NoError(t, err)
		subCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		require.NoError(t, n.Subscribe(subCtx, func(persistence.Notification) {}))
		require.NoError(t, n.Close())
		require.NoError(t, n.Close())
		require.ErrorIs(t, n.Publish(ctx, persistence.Notification{Topic: "x"}), persistence.ErrClosed)
		require.ErrorIs(t, n.Subscribe(ctx, func(persistence.Notification) {}), persistence.ErrClosed)
	})
}

// TestNotifierLatency measures publish-to-receive latency, one notification
// in flight at a time, and logs its percentiles.
func TestNotifierLatency(t *testing.T) {
	t.Parallel()
	n, _ := newTestNotifier(t)
	ch := subscribe(t, n)
	const rounds = 500
	d := make([]time.Duration, rounds)
	for i := range rounds {
		start := time.Now()
		require.NoError(t, n.Publish(context.Background(), persistence.Notification{Topic: "x", Payload: fmt.Sprint(i)}))
		require.Equal(t, fmt.Sprint(i), receive(t, ch).Payload)
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	t.Logf("redis pub/sub publish→receive over %d: p50 %v, p90 %v, p99 %v, max %v",
		rounds, d[rounds/2], d[rounds*9/10], d[rounds*99/100], d[rounds-1])
}
