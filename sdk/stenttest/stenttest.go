// Package stenttest helps users test their durable functions: Worker gives a
// test a serving executor on a fresh SQLite database.
package stenttest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// Worker starts a serving executor on a fresh SQLite database in t's
// temporary directory and stops it when the test ends. The returned context
// binds the executor, so calls made with it outside executions run on it.
// Logs go to t.Log: warnings and errors, or everything when STENT_DEBUG=1.
// opts are added after the defaults (Serve, a short lease, a test logger).
func Worker(t testing.TB, opts ...sdk.ExecutorOption) (context.Context, *sdk.Executor) {
	t.Helper()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "stent.db"))
	if err != nil {
		t.Fatalf("stenttest: opening SQLite: %v", err)
	}
	ex := serve(t, b, nil, opts)
	return sdk.WithExecutor(context.Background(), ex), ex
}

// serve starts a serving executor on b with the defaults (Serve, a short
// lease, a short poll interval, a test logger), then extra, then opts, and
// closes it when the test ends.
func serve(t testing.TB, b *sqlite.Backend, extra, opts []sdk.ExecutorOption) *sdk.Executor {
	t.Helper()
	all := []sdk.ExecutorOption{
		sdk.Serve(),
		sdk.WithLeaseDuration(2 * time.Second),
		sdk.WithPollInterval(50 * time.Millisecond),
		sdk.WithLogger(Logger(t)),
	}
	all = append(append(all, extra...), opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := sdk.Bootstrap(ctx, b, all...)
	if err != nil {
		t.Fatalf("stenttest: starting the executor: %v", err)
	}
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Errorf("stenttest: closing the executor: %v", err)
		}
	})
	return ex
}

// Logger returns a logger that writes to t.Log until the test ends: warnings
// and errors, or every level when the environment sets STENT_DEBUG=1.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STENT_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs after the executor's Close
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
