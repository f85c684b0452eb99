package stenttest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stent-go/stent/internal/clock"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// Env is a test kit: a serving executor on a fresh SQLite file in the
// test's temporary directory, with a test clock (Clock) that durable
// sleeps, signal-wait timeouts, retry backoff, delayed starts and
// deadlines read, stubs for registered functions (Stub), and assertions
// that fail the test. Make one with New. Its methods are safe for
// concurrent use, but the assertions must be called from the test's
// goroutine (they call t.Fatal).
type Env struct {
	// Ctx binds Executor: calls made with it outside executions run on it.
	Ctx context.Context
	// Executor is the serving executor, closed when the test ends.
	Executor *sdk.Executor
	// Clock is the executor's and the database's clock.
	Clock *Clock

	t     testing.TB
	stubs *sdk.Stubs
}

// Clock is a test clock: it runs with real time, and Advance moves it
// forward. Everything the runtime schedules for users reads it; leases keep
// the host's clock (a lease runs out only when its owner stops renewing
// it, whatever the test clock says).
type Clock struct {
	m *clock.Manual
}

// Now returns the time on the clock: the host's time plus every Advance
// so far.
func (c *Clock) Now() time.Time { return c.m.Now() }

// Advance moves the clock forward by d. Timers in memory that become due
// fire at once; executions whose durable timer becomes due are claimed at
// once, as the worker's wait for due work is a timer on this clock too.
func (c *Clock) Advance(d time.Duration) { c.m.Advance(d) }

// Skipped returns how far the clock has been moved forward in all.
func (c *Clock) Skipped() time.Duration { return c.m.Offset() }

// New starts a test kit for t: a serving executor on a fresh SQLite file,
// a test clock, and an empty set of stubs, all stopped when the test ends.
// opts are added after the defaults (Serve, a short lease, a short poll
// interval, passivation after 10ms, a logger writing to t.Log).
func New(t testing.TB, opts ...sdk.ExecutorOption) *Env {
	t.Helper()
	m := clock.NewManual()
	e := &Env{t: t, Clock: &Clock{m: m}, stubs: new(sdk.Stubs)}
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "stent.db"), sqlite.WithClock(m.Now))
	if err != nil {
		t.Fatalf("stenttest: opening SQLite: %v", err)
	}
	ex := serve(t, b, []sdk.ExecutorOption{sdk.WithClock(m), sdk.WithPassivateAfter(10 * time.Millisecond), sdk.WithStubs(e.stubs)}, opts)
	e.Executor = ex
	e.Ctx = sdk.WithExecutor(context.Background(), ex)
	return e
}

// Stub makes executions of f in env run body instead of f's own body until
// the test ends (or restore is called). f keeps its options (queue, retry,
// timeout). Other tests, and other Envs, are not affected.
func Stub[I, O any](env *Env, f *sdk.Func[I, O], body func(context.Context, I) (O, error)) (restore func()) {
	restore = sdk.SetStub(env.stubs, f, body)
	env.t.Cleanup(restore)
	return restore
}

// AutoSkip moves the clock forward, whenever nothing but time can make
// progress, to the next time something is due: when every execution is
// waiting (on a timer, a signal or a child) and none is running or due,
// the clock jumps to the earliest durable timer (a sleep, a signal-wait
// timeout, a retry's backoff, a delayed start, a deadline). It runs until
// the test ends or stop is called. A test that sends signals while AutoSkip
// runs may see a signal wait time out first if the test is slower than the
// skip: send the signal before the wait, or Advance by hand.
func (e *Env) AutoSkip() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.autoSkip(ctx)
	}()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	e.t.Cleanup(stop)
	return stop
}

// autoSkipPoll is how often AutoSkip looks at the executor and the
// database; a skip needs two looks in a row that agree.
const autoSkipPoll = 2 * time.Millisecond

func (e *Env) autoSkip(ctx context.Context) {
	var candidate time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(autoSkipPoll):
		}
		next, ok := e.nextDue(ctx)
		if !ok {
			candidate = time.Time{}
			continue
		}
		if !next.Equal(candidate) {
			candidate = next // settle: look once more before skipping
			continue
		}
		candidate = time.Time{}
		if d := next.Sub(e.Clock.Now()); d > 0 {
			e.Clock.Advance(d)
		}
	}
}

// nextDue returns the earliest time something is due, when nothing can
// make progress before it.
func (e *Env) nextDue(ctx context.Context) (time.Time, bool) {
	quiet, next := e.Executor.Quiescent()
	if !quiet {
		return time.Time{}, false
	}
	now := e.Clock.Now()
	for _, st := range []sdk.Status{sdk.StatusPending, sdk.StatusWaiting} {
		infos, err := e.Executor.List(ctx, sdk.ListFilter{Status: st, Limit: 1000})
		if err != nil {
			return time.Time{}, false
		}
		for _, i := range infos {
			switch {
			case i.RunAt.IsZero() && st == sdk.StatusPending:
				return time.Time{}, false // due now
			case i.RunAt.IsZero():
				continue // waits for a signal or a child, not for time
			case !i.RunAt.After(now):
				return time.Time{}, false // due now: the runtime will claim it
			case next.IsZero() || i.RunAt.Before(next):
				next = i.RunAt
			}
		}
	}
	return next, !next.IsZero()
}

// WaitForStatus waits until execution id has one of statuses and returns
// it; it fails the test when the execution ends in another status, or after
// 10 seconds of real time.
func (e *Env) WaitForStatus(id string, statuses ...sdk.Status) sdk.ExecutionInfo {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last sdk.ExecutionInfo
	for {
		info, err := e.Executor.Execution(e.Ctx, id)
		if err != nil && !errors.Is(err, sdk.ErrNotFound) {
			e.t.Fatalf("stenttest: reading execution %s: %v", id, err)
		}
		if err == nil {
			last = info
			if slices.Contains(statuses, info.Status) {
				return info
			}
			if info.Status.Terminal() {
				e.t.Fatalf("stenttest: execution %s (%s) ended %s (error %v), want %v", id, info.Function, info.Status, info.Error, statuses)
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("stenttest: execution %s still %s after 10s, want %v", id, last.Status, statuses)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RequireStatus fails the test unless execution id has status now, and
// returns it.
func (e *Env) RequireStatus(id string, status sdk.Status) sdk.ExecutionInfo {
	e.t.Helper()
	info, err := e.Executor.Execution(e.Ctx, id)
	if err != nil {
		e.t.Fatalf("stenttest: reading execution %s: %v", id, err)
	}
	if info.Status != status {
		e.t.Fatalf("stenttest: execution %s (%s) is %s, want %s (error %v)", id, info.Function, info.Status, status, info.Error)
	}
	return info
}

// RequireAttempts fails the test unless execution id took n attempts.
func (e *Env) RequireAttempts(id string, n int) {
	e.t.Helper()
	info, err := e.Executor.Execution(e.Ctx, id)
	if err != nil {
		e.t.Fatalf("stenttest: reading execution %s: %v", id, err)
	}
	if info.Attempts != n {
		e.t.Fatalf("stenttest: execution %s (%s) took %d attempts, want %d", id, info.Function, info.Attempts, n)
	}
}

// Journal returns the journal of execution id, failing the test when it
// cannot be read.
func (e *Env) Journal(id string) []sdk.JournalEntry {
	e.t.Helper()
	j, err := e.Executor.Journal(e.Ctx, id)
	if err != nil {
		e.t.Fatalf("stenttest: reading the journal of %s: %v", id, err)
	}
	return j
}

// RequireJournalKinds fails the test unless the journal of execution id
// holds operations of these kinds ("call", "sleep", "signal", "now"), in
// this order.
func (e *Env) RequireJournalKinds(id string, kinds ...string) {
	e.t.Helper()
	j := e.Journal(id)
	got := make([]string, len(j))
	for i, ent := range j {
		got[i] = ent.Kind
	}
	if !slices.Equal(got, kinds) {
		e.t.Fatalf("stenttest: journal of %s holds %v, want %v", id, got, kinds)
	}
}

// RequireSignalReceived fails the test unless execution id consumed a
// signal called name, and returns the journal entry of that wait (its
// Output is the signal's payload).
func (e *Env) RequireSignalReceived(id, name string) sdk.JournalEntry {
	e.t.Helper()
	for _, ent := range e.Journal(id) {
		if ent.Kind == string(persistence.EntrySignal) && ent.Name == name && ent.Done && ent.Output != nil {
			return ent
		}
	}
	e.t.Fatalf("stenttest: execution %s received no signal %q", id, name)
	return sdk.JournalEntry{}
}

// RequireSignalTimedOut fails the test unless a wait of execution id for
// the signal name ran out of time.
func (e *Env) RequireSignalTimedOut(id, name string) {
	e.t.Helper()
	for _, ent := range e.Journal(id) {
		if ent.Kind == string(persistence.EntrySignal) && ent.Name == name && ent.Done && ent.Output == nil {
			return
		}
	}
	e.t.Fatalf("stenttest: no wait of execution %s for signal %q timed out", id, name)
}

// RequireSignalPending fails the test unless a signal called name was sent
// to execution id and not consumed yet.
func (e *Env) RequireSignalPending(id, name string) {
	e.t.Helper()
	_, err := e.Executor.Backend().NextSignal(e.Ctx, id, name)
	if errors.Is(err, persistence.ErrNotFound) {
		e.t.Fatalf("stenttest: execution %s has no pending signal %q", id, name)
	}
	if err != nil {
		e.t.Fatalf("stenttest: reading the signals of %s: %v", id, err)
	}
}

// DeadLetters returns the dead letters of execution id (every one when id
// is ""), failing the test when they cannot be read.
func (e *Env) DeadLetters(id string) []sdk.DeadLetter {
	e.t.Helper()
	all, err := e.Executor.DeadLetters(e.Ctx)
	if err != nil {
		e.t.Fatalf("stenttest: reading dead letters: %v", err)
	}
	if id == "" {
		return all
	}
	var out []sdk.DeadLetter
	for _, d := range all {
		if d.ExecutionID == id {
			out = append(out, d)
		}
	}
	return out
}

// RequireDeadLetters fails the test unless execution id has n dead letters.
func (e *Env) RequireDeadLetters(id string, n int) []sdk.DeadLetter {
	e.t.Helper()
	got := e.DeadLetters(id)
	if len(got) != n {
		e.t.Fatalf("stenttest: execution %s has %d dead letters, want %d: %s", id, len(got), n, fmt.Sprint(got))
	}
	return got
}
