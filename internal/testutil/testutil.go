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
		// protoactor logs a dead letter (a message without a sender that
		// reaches a stopped actor) through a throttle whose first use
		// starts a goroutine that sleeps one throttle interval (1 s); the
		// library has no way to stop it. Our own messages that may arrive
		// late skip it (actor.IgnoreDeadLetterLogging), but protoactor's
		// remote sends its own: when cluster.Remote.Stop stops the endpoint
		// writers, their closed streams make the endpoint manager send
		// EndpointTerminatedEvent to those stopped writers.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	}
}

// WrapTestMain runs the package's tests, then checks with goleak that they
// left no goroutine running, and exits: with the tests' code, or 1 if they
// passed but leaked. Use it as
//
//	func TestMain(m *testing.M) { testutil.WrapTestMain(m) }
//
// A package whose tests leave a goroutine that nothing can stop passes an
// ignore for it in ignore, with a comment saying why.
func WrapTestMain(m *testing.M, ignore ...goleak.Option) {
	opts := append(leakOptions(), ignore...) // before the tests, for IgnoreCurrent
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
