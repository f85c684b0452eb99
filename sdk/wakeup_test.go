package sdk_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/redisnotify"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// BenchmarkWakeup measures the latency from a start made by an executor that
// does not serve (a web handler, the CLI) to the body beginning on a serving
// executor of the same database, with each way of waking it: polling only,
// PostgreSQL LISTEN/NOTIFY, Redis pub/sub. It reports the median and p90.
//
//	STENT_TEST_POSTGRES=... STENT_TEST_REDIS=127.0.0.1:6379 go test -run '^$' -bench Wakeup -benchtime 200x ./sdk/

var (
	wakeMu    sync.Mutex
	wakeSeen  = map[string]chan time.Time{}
	wakeProbe = sdk.Durable("test_wake_probe", func(ctx context.Context, key string) (string, error) {
		now := time.Now()
		wakeMu.Lock()
		ch := wakeSeen[key]
		wakeMu.Unlock()
		if ch != nil {
			ch <- now
		}
		return key, nil
	})
)

type wakeSetup struct {
	name string
	// open returns two backends on one database, and the notifier options
	// of the serving and the starting executor.
	open func(b *testing.B) (serve, start persistence.Backend, serveOpt, startOpt []sdk.ExecutorOption)
}

func wakeSetups() []wakeSetup {
	pgDSN, redisAddr := os.Getenv(envPostgres), os.Getenv("STENT_TEST_REDIS")
	setups := []wakeSetup{{name: "sqlite-poll", open: func(b *testing.B) (persistence.Backend, persistence.Backend, []sdk.ExecutorOption, []sdk.ExecutorOption) {
		path := filepath.Join(b.TempDir(), "wake.db")
		return mustSQLite(b, path), mustSQLite(b, path), nil, nil
	}}}
	if pgDSN != "" {
		pg := func(b *testing.B) (persistence.Backend, persistence.Backend) {
			schema := newSchema(b)
			return mustPostgres(b, pgDSN, schema), mustPostgres(b, pgDSN, schema)
		}
		setups = append(setups,
			wakeSetup{name: "postgres-poll", open: func(b *testing.B) (persistence.Backend, persistence.Backend, []sdk.ExecutorOption, []sdk.ExecutorOption) {
				s, t := pg(b)
				off := []sdk.ExecutorOption{sdk.WithNotifications(nil)}
				return s, t, off, off
			}},
			wakeSetup{name: "postgres-listen", open: func(b *testing.B) (persistence.Backend, persistence.Backend, []sdk.ExecutorOption, []sdk.ExecutorOption) {
				s, t := pg(b)
				return s, t, nil, nil // LISTEN/NOTIFY is the default on PostgreSQL
			}})
		if redisAddr != "" {
			setups = append(setups, wakeSetup{name: "postgres-redis", open: func(b *testing.B) (persistence.Backend, persistence.Backend, []sdk.ExecutorOption, []sdk.ExecutorOption) {
				s, t := pg(b)
				prefix := fmt.Sprintf("stent-bench-%d:", time.Now().UnixNano())
				return s, t, []sdk.ExecutorOption{sdk.WithNotifications(mustRedis(b, redisAddr, prefix))},
					[]sdk.ExecutorOption{sdk.WithNotifications(mustRedis(b, redisAddr, prefix))}
			}})
		}
	}
	return setups
}

func BenchmarkWakeup(b *testing.B) {
	for _, s := range wakeSetups() {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			_, client := s.executors(b)
			cctx := sdk.WithExecutor(ctx, client)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				key := fmt.Sprintf("%s-%d", s.name, i)
				ch := make(chan time.Time, 1)
				wakeMu.Lock()
				wakeSeen[key] = ch
				wakeMu.Unlock()
				t0 := time.Now()
				if _, err := wakeProbe.Start(cctx, key); err != nil {
					b.Fatal(err)
				}
				select {
				case t1 := <-ch:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(10 * time.Second):
					b.Fatal("the body did not start within 10s")
				}
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// BenchmarkWakeupSignal measures SendSignal from an executor that does not
// serve to the waiting body resuming on the serving one, with each notifier.
func BenchmarkWakeupSignal(b *testing.B) {
	for _, s := range wakeSetups() {
		b.Run(s.name, func(b *testing.B) {
			ctx := context.Background()
			server, client := s.executors(b)
			h, err := benchSignaled.Start(sdk.WithExecutor(ctx, server), b.N)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := client.SendSignal(ctx, h.ID(), "ping", i); err != nil {
					b.Fatal(err)
				}
				select {
				case t1 := <-benchPongs:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(10 * time.Second):
					b.Fatal("the body did not resume within 10s")
				}
			}
			b.StopTimer()
			reportLatency(b, lat)
		})
	}
}

// executors opens a serving executor and a non-serving one on the setup's
// database, both closed when the benchmark ends.
func (s wakeSetup) executors(b *testing.B) (server, client *sdk.Executor) {
	serveB, startB, serveOpt, startOpt := s.open(b)
	server, err := sdk.Bootstrap(context.Background(), serveB, append([]sdk.ExecutorOption{sdk.Serve(), sdk.WithLogger(testLogger(b))}, serveOpt...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeOrFail(b, server) })
	client, err = sdk.New(startB, append([]sdk.ExecutorOption{sdk.WithLogger(testLogger(b))}, startOpt...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeOrFail(b, client) })
	return server, client
}

// reportLatency reports the median and 90th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}

func closeOrFail(b *testing.B, e *sdk.Executor) {
	if err := e.Close(); err != nil {
		b.Error(err)
	}
}

func testLogger(b *testing.B) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func mustSQLite(b *testing.B, path string) persistence.Backend {
	be, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	return be
}

func mustPostgres(b *testing.B, dsn, schema string) persistence.Backend {
	be, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Init(context.Background()); err != nil {
		b.Fatal(err)
	}
	return be
}

func mustRedis(b *testing.B, addr, prefix string) persistence.Notifier {
	n, err := redisnotify.New(&redis.Options{Addr: addr}, prefix)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := n.Close(); err != nil {
			b.Error(err)
		}
	})
	return n
}
