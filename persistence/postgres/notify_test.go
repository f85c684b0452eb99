package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

// subscribe subscribes n for the test's duration and returns the channel
// its notifications arrive on.
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

func TestNotifier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("PublishSubscribe", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		pub, sub := b.Notifier(), b.Notifier()
		t.Cleanup(func() { require.NoError(t, pub.Close()); require.NoError(t, sub.Close()) })
		ch1, ch2 := subscribe(t, sub), subscribe(t, sub)
		want := []persistence.Notification{
			{Topic: persistence.TopicQueue, Payload: "default"},
			{Topic: persistence.TopicExecution, Payload: "exec-1"},
			{Topic: persistence.TopicDone, Payload: "with:colon and 'quotes'"},
			{Topic: "empty", Payload: ""},
		}
		for _, n := range want {
			require.NoError(t, pub.Publish(ctx, n))
		}
		for _, ch := range []<-chan persistence.Notification{ch1, ch2} {
			for _, n := range want {
				require.Equal(t, n, receive(t, ch), "in order, to every subscriber")
			}
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		n := b.Notifier()
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		require.ErrorContains(t, n.Publish(ctx, persistence.Notification{Topic: "a:b"}), "contains ':'")
		require.ErrorContains(t, n.Publish(ctx, persistence.Notification{Topic: "a", Payload: string(make([]byte, 8000))}), "exceeds")
	})

	t.Run("SchemasIsolated", func(t *testing.T) {
		t.Parallel()
		a, _ := openTestDB(t)
		b, _ := openTestDB(t)
		na, nb := a.Notifier(), b.Notifier()
		t.Cleanup(func() { require.NoError(t, na.Close()); require.NoError(t, nb.Close()) })
		require.NotEqual(t, na.Channel(), nb.Channel())
		cha, chb := subscribe(t, na), subscribe(t, nb)
		require.NoError(t, nb.Publish(ctx, persistence.Notification{Topic: "x", Payload: "for b"}))
		require.NoError(t, na.Publish(ctx, persistence.Notification{Topic: "x", Payload: "for a"}))
		require.Equal(t, "for a", receive(t, cha).Payload)
		require.Equal(t, "for b", receive(t, chb).Payload)
	})

	t.Run("Reconnects", func(t *testing.T) {
		t.Parallel()
		b, bundle := openTestDB(t)
		n := b.Notifier()
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		ch := subscribe(t, n)
		for round := range 3 {
			require.Positive(t, terminate(t, bundle.dsn, bundle.appName))
			// Notifications sent while the listener reconnects are lost:
			// publish until one arrives.
			payload := fmt.Sprint("after-", round)
			testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
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

	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		n := b.Notifier()
		subCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		require.NoError(t, n.Subscribe(subCtx, func(persistence.Notification) {}))
		require.NoError(t, n.Close())
		require.NoError(t, n.Close())
		require.ErrorIs(t, n.Publish(ctx, persistence.Notification{Topic: "x"}), persistence.ErrClosed)
		require.ErrorIs(t, n.Subscribe(ctx, func(persistence.Notification) {}), persistence.ErrClosed)
	})

	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		cfg, err := pgxpool.ParseConfig("postgres://user:secretpw@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
		require.NoError(t, err)
		pool, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		b, err := Open(ctx, "", WithPool(pool))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		n := b.Notifier()
		t.Cleanup(func() { require.NoError(t, n.Close()) })
		err = n.Subscribe(ctx, func(persistence.Notification) {})
		require.ErrorContains(t, err, "127.0.0.1:1")
		require.NotContains(t, err.Error(), "secretpw")
	})
}

// TestNotifierLatency measures publish-to-receive latency, one notification
// in flight at a time, and logs its percentiles.
func TestNotifierLatency(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t)
	n := b.Notifier()
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	ch := subscribe(t, n)
	logLatency(t, "postgres LISTEN/NOTIFY", func(i int) {
		require.NoError(t, n.Publish(context.Background(), persistence.Notification{Topic: "x", Payload: fmt.Sprint(i)}))
		require.Equal(t, fmt.Sprint(i), receive(t, ch).Payload)
	})
}

func logLatency(t *testing.T, name string, roundTrip func(i int)) {
	t.Helper()
	const rounds = 500
	d := make([]time.Duration, rounds)
	for i := range rounds {
		start := time.Now()
		roundTrip(i)
		d[i] = time.Since(start)
	}
	slices.Sort(d)
	t.Logf("%s publish→receive over %d: p50 %v, p90 %v, p99 %v, max %v",
		name, rounds, d[rounds/2], d[rounds*9/10], d[rounds*99/100], d[rounds-1])
}
