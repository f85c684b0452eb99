// Package testutil holds helpers for Stent's own tests: the leak check every
// test package runs from TestMain, and CheckFor, which polls a condition
// instead of sleeping. It is imported by _test.go files only.
package testutil

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakOptions is the short list of goroutines that are not leaks.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		// Goroutines alive before the tests ran (started by package
		// initialisers) are not the tests' doing.
		goleak.IgnoreCurrent(),
		// pgxpool's health check goroutine ends shortly after
		// Pool.Close returns, not before (dbos ignores it too).
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		// protoactor throttles its dead-letter log with a goroutine that
		// lives one throttle interval (1s) after a message reaches a
		// stopped actor, as some do while an executor closes.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		// protoactor's remote never closes the gRPC client connections of
		// its endpoint writers when it stops without waiting (a graceful
		// stop waits 10 s for peers): their reconnect loops outlive it.
		// Only the in-process cluster tests start several endpoints.
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc.(*addrConn).resetTransport"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/remote.(*endpointWriter).initialize"),
	}
}

// WrapTestMain runs the package's tests, then checks with goleak that they
// left no goroutine running, and exits: with the tests' code, or 1 if they
// passed but leaked. Use it as
//
//	func TestMain(m *testing.M) { testutil.WrapTestMain(m) }
func WrapTestMain(m *testing.M) {
	opts := leakOptions() // before the tests, for IgnoreCurrent
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// CheckFor calls f every interval until it returns nil, and fails the test
// with f's last error if timeout passes first. f is always called at least
// once. It is the way to wait for something to happen in a test instead of
// sleeping (nats-server's checkFor).
func CheckFor(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
			return
		}
		time.Sleep(interval)
	}
}
