package actors

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stent-go/stent/internal/retry"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
)

// The tests in this file drive one execution actor at a time: the body of
// each function hands its context to the test and parks, so that the test
// speaks to the actor as the body would (its requests and their answers)
// and reads what the actor wrote.

// harness is a serving runtime on a fresh SQLite file, with no other work.
type harness struct {
	t    *testing.T
	rt   *Runtime
	b    *sqlite.Backend
	path string
	fns  map[string]*Function
}

func newHarness(t *testing.T, fns ...*Function) *harness {
	t.Helper()
	return newHarnessWith(t, nil, fns...)
}

// newHarnessWith is newHarness with configure applied to the runtime's
// Config first.
func newHarnessWith(t *testing.T, configure func(*Config), fns ...*Function) *harness {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stent.db")
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	h := &harness{t: t, b: b, path: path, fns: make(map[string]*Function)}
	for _, fn := range fns {
		if fn.Queue == "" {
			fn.Queue = "default"
		}
		if fn.Retry.MaxAttempts == 0 {
			fn.Retry = retry.Policy{MaxAttempts: 1}
		}
		h.fns[fn.Name] = fn
	}
	cfg := Config{Backend: b, NodeID: "n1", LeaseTTL: time.Minute, PassivateAfter: time.Hour,
		PollInterval: 50 * time.Millisecond,
		Lookup:       func(name string) (*Function, bool) { fn, ok := h.fns[name]; return fn, ok },
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil))}
	if configure != nil {
		configure(&cfg)
	}
	h.rt, err = New(cfg)
	require.NoError(t, err)
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- h.rt.Serve(serveCtx) }()
	<-h.rt.Ready()
	t.Cleanup(func() {
		stopServe()
		<-served
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.NoError(t, h.rt.Stop(sctx))
		require.NoError(t, b.Close())
	})
	return h
}

// start creates root execution id of fn here and runs it.
func (h *harness) start(id, fn string, input string) {
	h.t.Helper()
	now := time.Now().UTC()
	_, created, err := h.rt.StartLocal(context.Background(), &persistence.Execution{ID: id, Function: fn, Queue: "default",
		Input: []byte(input), CreatedAt: now, UpdatedAt: now})
	require.NoError(h.t, err)
	require.True(h.t, created)
}

// row reads execution id.
func (h *harness) row(id string) *persistence.Execution {
	h.t.Helper()
	rec, err := h.b.GetExecution(context.Background(), id)
	require.NoError(h.t, err)
	return rec
}

// gone waits until execution id has no actor on the node.
func (h *harness) gone(id string) {
	h.t.Helper()
	testutil.CheckFor(h.t, 10*time.Second, 5*time.Millisecond, func() error {
		if h.rt.pidOf(id) != nil {
			return fmt.Errorf("%s still has an actor", id)
		}
		return nil
	})
}

// active waits until execution id has an actor on the node.
func (h *harness) active(id string) {
	h.t.Helper()
	testutil.CheckFor(h.t, 10*time.Second, 5*time.Millisecond, func() error {
		if h.rt.pidOf(id) == nil {
			return fmt.Errorf("%s has no actor", id)
		}
		return nil
	})
}

// status waits until execution id's row has status want.
func (h *harness) status(id string, want persistence.Status) *persistence.Execution {
	h.t.Helper()
	var rec *persistence.Execution
	testutil.CheckFor(h.t, 10*time.Second, 5*time.Millisecond, func() error {
		var err error
		rec, err = h.b.GetExecution(context.Background(), id)
		if err != nil {
			return err
		}
		if rec.Status != want {
			return fmt.Errorf("%s is %s, want %s", id, rec.Status, want)
		}
		return nil
	})
	return rec
}

// parked is a function whose body hands its context over and waits for
// the test to return a result through release.
type parked struct {
	ctxs    chan context.Context
	release chan result
}

type result struct {
	out []byte
	err error
}

func newParked(name string) (*Function, *parked) {
	p := &parked{ctxs: make(chan context.Context, 16), release: make(chan result, 16)}
	fn := &Function{Name: name, Run: func(ctx context.Context, _ []byte) ([]byte, error) {
		p.ctxs <- ctx
		select {
		case r := <-p.release:
			return r.out, r.err
		case <-ctx.Done():
			return nil, ctxError(ctx)
		}
	}}
	return fn, p
}

// body waits for the next body to park and returns its context.
func (p *parked) body(t *testing.T) context.Context {
	t.Helper()
	select {
	case ctx := <-p.ctxs:
		return ctx
	case <-time.After(10 * time.Second):
		t.Fatal("no body started")
		return nil
	}
}

func TestExecutionActorSettle(t *testing.T) {
	t.Parallel()
	okFn, ok := newParked("ok")
	flakyFn, flaky := newParked("flaky")
	flakyFn.Retry = retry.Policy{MaxAttempts: 2, InitialDelay: time.Hour, MaxDelay: time.Hour, Multiplier: 1}
	h := newHarness(t, okFn, flakyFn)
	ctx := context.Background()

	// A request, its answer and its write: Now at position 0.
	h.start("s1", "ok", `"in"`)
	hd := fromContext(ok.body(t))
	pos, ents, err := hd.begin(persistence.EntryNow, "", 1, false)
	require.NoError(t, err)
	require.Equal(t, 0, pos)
	require.Equal(t, []*persistence.JournalEntry{nil}, ents)
	ent := &persistence.JournalEntry{ExecutionID: "s1", Position: 0, Kind: persistence.EntryNow, Done: true, Output: []byte(`"t"`)}
	require.NoError(t, hd.write(&persistence.Commit{ExecutionID: "s1", Journal: []*persistence.JournalEntry{ent}}, ent))
	journal, err := h.b.JournalEntries(ctx, "s1")
	require.NoError(t, err)
	require.Len(t, journal, 1)
	require.Equal(t, persistence.EntryNow, journal[0].Kind)
	// A replayed kind that differs is refused as non-deterministic.
	_, _, err = hd.begin(persistence.EntrySleep, "", 1, false)
	require.NoError(t, err, "position 1 is new")

	// The body returns: one write settles it, and the actor stops.
	ok.release <- result{out: []byte(`"out"`)}
	rec := h.status("s1", persistence.StatusCompleted)
	require.JSONEq(t, `"out"`, string(rec.Output))
	require.Equal(t, 1, rec.Attempts)
	h.gone("s1")
	_, _, err = hd.begin(persistence.EntryNow, "", 1, false)
	require.Error(t, err, "a request after the end is refused")

	// A failure with attempts left: back to pending with its error and a
	// timer, the lease released, the actor stopped.
	h.start("s2", "flaky", `1`)
	flaky.body(t)
	flaky.release <- result{err: errors.New("boom")}
	rec = h.status("s2", persistence.StatusPending)
	require.Equal(t, 1, rec.Attempts)
	require.NotNil(t, rec.Error)
	require.Contains(t, rec.Error.Message, "boom")
	require.Empty(t, rec.Owner)
	require.True(t, rec.RunAt.After(time.Now().Add(30*time.Minute)), "retried after its backoff, at %s", rec.RunAt)
	h.gone("s2")
}

func TestExecutionActorNonDeterminism(t *testing.T) {
	t.Parallel()
	fn, p := newParked("nd")
	h := newHarness(t, fn)
	ctx := context.Background()
	// A journal that recorded a sleep at position 0, replayed as a Now.
	now := time.Now().UTC()
	_, _, err := h.b.CreateExecution(ctx, &persistence.Execution{ID: "nd1", Function: "nd", Queue: "default", Status: persistence.StatusPending,
		Input: []byte(`1`), CreatedAt: now, UpdatedAt: now})
	require.NoError(t, err)
	rec, err := h.b.AcquireLease(ctx, "nd1", "other", time.Minute)
	require.NoError(t, err)
	errs, err := h.b.Apply(ctx, []*persistence.Commit{{ExecutionID: "nd1", Epoch: rec.Epoch, Journal: []*persistence.JournalEntry{
		{ExecutionID: "nd1", Position: 0, Kind: persistence.EntrySleep, FireAt: now}}, Update: &persistence.Update{Release: true}}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	h.rt.Kick()
	hd := fromContext(p.body(t))
	_, _, err = hd.begin(persistence.EntryNow, "", 1, false)
	require.ErrorIs(t, err, ErrNonDeterministic)
	p.release <- result{out: []byte(`1`)} // the body returns regardless: the attempt fails
	rec = h.status("nd1", persistence.StatusFailed)
	require.Equal(t, persistence.ErrorKindNonDeterministic, rec.Error.Kind)
}

// family is a parent "p" parked in its body, and the step it started in
// memory, parked in its own.
type family struct {
	h          *harness
	stepFn     *Function
	step       *parked
	pctx, cctx context.Context
	futures    []*Future
}

func startFamily(t *testing.T) *family {
	t.Helper()
	parentFn, parent := newParked("parent")
	stepFn, step := newParked("step")
	f := &family{h: newHarness(t, parentFn, stepFn), stepFn: stepFn, step: step}
	f.h.start("p", "parent", `0`)
	f.pctx = parent.body(t)
	var err error
	f.futures, err = StartChildren(f.pctx, stepFn, [][]byte{[]byte(`1`)}, CallOptions{})
	require.NoError(t, err)
	f.cctx = step.body(t)
	return f
}

func TestExecutionActorStartsChildrenAsChildActors(t *testing.T) {
	t.Parallel()
	f := startFamily(t)
	h, step, stepFn, pctx, futures := f.h, f.step, f.stepFn, f.pctx, f.futures
	ctx := context.Background()
	require.Equal(t, "p.0", futures[0].ID())
	require.NotNil(t, h.rt.pidOf("p.0"), "the child runs here")
	// In memory: no row, no journal entry yet.
	_, err := h.b.GetExecution(ctx, "p.0")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	journal, err := h.b.JournalEntries(ctx, "p")
	require.NoError(t, err)
	require.Empty(t, journal)

	// Its outcome: one commit of the parent's, its journal entry.
	step.release <- result{out: []byte(`"one"`)}
	out, err := futures[0].Await(pctx)
	require.NoError(t, err)
	require.JSONEq(t, `"one"`, string(out))
	journal, err = h.b.JournalEntries(ctx, "p")
	require.NoError(t, err)
	require.Len(t, journal, 1)
	require.True(t, journal[0].Done)
	require.Equal(t, "p.0", journal[0].ChildID)
	h.gone("p.0")

	// Stopping the parent (its lease lost) stops its subtree.
	futures, err = StartChildren(pctx, stepFn, [][]byte{[]byte(`2`)}, CallOptions{})
	require.NoError(t, err)
	cctx := step.body(t)
	pid := h.rt.pidOf("p")
	require.NotNil(t, pid)
	h.rt.system.Root.Send(pid, &leaseLost{})
	h.gone("p")
	h.gone(futures[0].ID())
	<-cctx.Done()
	require.ErrorIs(t, context.Cause(cctx), errStopped, "the child stopped with its parent")
	require.ErrorIs(t, context.Cause(pctx), errLeaseLost)
}

func TestExecutionActorPermits(t *testing.T) {
	t.Parallel()
	fn, p := newParked("limited")
	fn.MaxConcurrent = 1
	h := newHarness(t, fn)
	ctx := context.Background()
	permits := func(want int) {
		t.Helper()
		testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
			n, err := h.b.CountPermits(ctx, "limited")
			if err != nil || n == want {
				return err
			}
			return fmt.Errorf("%d permits held, want %d", n, want)
		})
	}

	h.start("a", "limited", `1`)
	actx := p.body(t)
	require.Equal(t, "a", ExecutionID(actx))
	permits(1)
	h.start("b", "limited", `2`)
	h.start("c", "limited", `3`)
	// b and c wait for the permit with their actors up and no body.
	h.active("b")
	h.active("c")
	require.Empty(t, p.ctxs)
	permits(1)

	// c is canceled while it waits: it ends canceled, never runs, and
	// holds no permit.
	require.NoError(t, h.rt.Cancel(ctx, "c"))
	h.status("c", persistence.StatusCanceled)
	h.gone("c")

	// a's end gives its permit to b.
	p.release <- result{out: []byte(`1`)}
	h.status("a", persistence.StatusCompleted)
	bctx := p.body(t)
	require.Equal(t, "b", ExecutionID(bctx))
	permits(1)
	p.release <- result{out: []byte(`2`)}
	h.status("b", persistence.StatusCompleted)
	permits(0)
}

func TestExecutionActorCancel(t *testing.T) {
	t.Parallel()
	f := startFamily(t)
	h, pctx, cctx, futures := f.h, f.pctx, f.cctx, f.futures
	ctx := context.Background()

	require.NoError(t, h.rt.Cancel(ctx, "p"))
	// The parent's body context is canceled by the time Cancel returns;
	// the cancel reaches the child through the actor tree.
	require.ErrorIs(t, context.Cause(pctx), ErrCanceled)
	<-cctx.Done()
	require.ErrorIs(t, context.Cause(cctx), ErrCanceled)
	// Durable operations now fail with ErrCanceled.
	_, _, err := fromContext(pctx).begin(persistence.EntryNow, "", 1, false)
	require.ErrorIs(t, err, ErrCanceled)
	_, err = futures[0].Await(pctx)
	require.Error(t, err)
	rec := h.status("p", persistence.StatusCanceled)
	require.Equal(t, persistence.ErrorKindCanceled, rec.Error.Kind)
	h.gone("p")
	h.gone(futures[0].ID())
}

// TestPermitRunOutBeforeTheBodyIsNotUsed: a process stopped (SIGSTOP)
// between taking a permit and starting the body finds, when it goes on,
// that its permit ran out in the database and was given to another
// execution. The body must not start on it: the permit is confirmed again
// and, being gone, waited for again.
func TestPermitRunOutBeforeTheBodyIsNotUsed(t *testing.T) {
	// Not parallel: the hook is process-wide (it acts only for "s1").
	fn, p := newParked("limited-stop")
	fn.MaxConcurrent = 1
	const ttl = time.Second
	h := newHarnessWith(t, func(c *Config) { c.LeaseTTL = ttl }, fn)
	ctx := context.Background()
	var stopped atomic.Bool
	setHook(t, func(id string, msg any) {
		if _, ok := msg.(*opPermitHeld); !ok || id != "s1" || !stopped.CompareAndSwap(false, true) {
			return
		}
		// The stop: the permit's lease runs out (its row goes) and
		// another execution takes it, while this process stands still
		// for longer than half a lease.
		since := time.Now()
		require.NoError(t, h.b.ReleasePermit(ctx, "limited-stop", "s1", "n1"))
		ok, err := h.b.AcquirePermit(ctx, "limited-stop", "other", "n2", 1, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
		time.Sleep(ttl/2 - time.Since(since))
	})
	h.start("s1", "limited-stop", `1`)
	// s1 asks the router again, and waits, with no body running.
	waitRequests(t, h.rt, "limited-stop", 2)
	require.True(t, stopped.Load())
	require.Empty(t, p.ctxs, "the body started on a permit another execution holds")
	require.NoError(t, h.b.ReleasePermit(ctx, "limited-stop", "other", "n2"))
	require.Equal(t, "s1", ExecutionID(p.body(t)))
	n, err := h.b.CountPermits(ctx, "limited-stop")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	p.release <- result{out: []byte(`1`)}
	h.status("s1", persistence.StatusCompleted)
}

// TestPermitKeptUntilTheBodyReturns: an activation stopped while its body
// runs (its lease lost) keeps the body's permit, renewed, until the body
// returns: a body that does not heed its context still runs, and another
// execution given the permit, or a newer activation of the same one (which
// would share its permit row), would run beside it, over the limit.
func TestPermitKeptUntilTheBodyReturns(t *testing.T) {
	t.Parallel()
	const ttl = time.Second
	var running, most atomic.Int32
	started := make(chan string, 4)
	unblock := make(chan struct{})
	fn := &Function{Name: "deaf", MaxConcurrent: 1, Run: func(ctx context.Context, _ []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		started <- ExecutionID(ctx)
		<-unblock // deaf to ctx
		return []byte(`1`), nil
	}}
	h := newHarnessWith(t, func(c *Config) { c.LeaseTTL = ttl }, fn)
	ctx := context.Background()
	permits := func() int {
		n, err := h.b.CountPermits(ctx, "deaf")
		require.NoError(t, err)
		return n
	}
	h.start("d1", "deaf", `1`)
	require.Equal(t, "d1", <-started)
	pid := h.rt.pidOf("d1")
	require.NotNil(t, pid)
	h.rt.system.Root.Send(pid, &leaseLost{})
	h.start("d2", "deaf", `2`)
	// d2 waits for the permit while d1's body runs, for longer than the
	// permit's lease (its renewals go on), and so does d1's next
	// activation (the lease was not taken: the node claims it again).
	waitRequests(t, h.rt, "deaf", 1)
	deadline := time.Now().Add(2 * ttl)
	for time.Now().Before(deadline) {
		select {
		case id := <-started:
			t.Fatalf("%s started while the body of d1 still runs on the only permit", id)
		case <-time.After(50 * time.Millisecond):
		}
		require.Equal(t, 1, permits())
	}
	close(unblock)
	h.status("d1", persistence.StatusCompleted)
	h.status("d2", persistence.StatusCompleted)
	require.Equal(t, int32(1), most.Load(), "bodies at once")
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := permits(); n != 0 {
			return fmt.Errorf("%d permits held", n)
		}
		return nil
	})
}

// setHook installs a receive hook for the test's duration.
func setHook(t *testing.T, hook func(id string, msg any)) {
	testHookReceive.Store(&hook)
	t.Cleanup(func() { testHookReceive.Store(nil) })
}

func TestExecutionActorRestartsAfterAPanic(t *testing.T) {
	// Not parallel: the hook is process-wide (it only panics for "r1").
	var runs atomic.Int32
	fn := &Function{Name: "resumable", Run: func(ctx context.Context, _ []byte) ([]byte, error) {
		runs.Add(1)
		if _, err := Now(ctx); err != nil {
			return nil, err
		}
		return []byte(`"done"`), nil
	}}
	h := newHarness(t, fn)
	var panics atomic.Int32
	setHook(t, func(id string, msg any) {
		if _, ok := msg.(*opBegin); ok && id == "r1" && panics.Add(1) == 1 {
			panic("a fault in the runtime")
		}
	})
	h.start("r1", "resumable", `1`)
	rec := h.status("r1", persistence.StatusCompleted)
	require.Equal(t, 1, rec.Attempts, "a restart is no new attempt")
	require.Equal(t, int32(2), runs.Load(), "the body ran again, from the journal")
	h.gone("r1")
}

func TestExecutionActorStopsAfterRepeatedPanics(t *testing.T) {
	fn := &Function{Name: "broken", Run: func(ctx context.Context, _ []byte) ([]byte, error) {
		_, err := Now(ctx)
		return []byte(`1`), err
	}}
	h := newHarness(t, fn)
	var panics atomic.Int32
	setHook(t, func(id string, msg any) {
		if _, ok := msg.(*opBegin); ok && id == "r2" {
			panics.Add(1)
			panic("a fault in the runtime")
		}
	})
	h.start("r2", "broken", `1`)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := panics.Load(); n != maxRestarts+1 {
			return fmt.Errorf("%d panics", n)
		}
		return nil
	})
	h.gone("r2")
	require.Equal(t, int32(maxRestarts+1), panics.Load(), "no restart after the last")
	rec := h.row("r2")
	require.Equal(t, persistence.StatusRunning, rec.Status, "nothing recorded")
	require.Equal(t, "n1", rec.Owner, "the lease runs out rather than being given back at once")
}

func TestExecutionActorNestedChildrenInMemory(t *testing.T) {
	t.Parallel()
	var grand *Function
	leaf := &Function{Name: "leaf", Run: func(ctx context.Context, in []byte) ([]byte, error) { return in, nil }}
	mid := &Function{Name: "mid", Run: func(ctx context.Context, in []byte) ([]byte, error) {
		fs, err := StartChildren(ctx, grand, [][]byte{in}, CallOptions{})
		if err != nil {
			return nil, err
		}
		return fs[0].Await(ctx)
	}}
	grand = leaf
	top := &Function{Name: "top", Run: func(ctx context.Context, in []byte) ([]byte, error) {
		fs, err := StartChildren(ctx, mid, [][]byte{in}, CallOptions{})
		if err != nil {
			return nil, err
		}
		return fs[0].Await(ctx)
	}}
	h := newHarness(t, leaf, mid, top)
	h.start("t", "top", `"deep"`)
	rec := h.status("t", persistence.StatusCompleted)
	require.JSONEq(t, `"deep"`, string(rec.Output))
	// The middle child wrote its row before its own child's outcome.
	mrec := h.status("t.0", persistence.StatusCompleted)
	require.Equal(t, "t", mrec.ParentID)
	journal, err := h.b.JournalEntries(context.Background(), "t.0")
	require.NoError(t, err)
	require.Len(t, journal, 1)
	require.Equal(t, "t.0.0", journal[0].ChildID)
}

// TestExecutionActorRefusesAnEarlierIncarnationsMessages: a restart makes a
// new incarnation of the actor under the same PID. A request that the
// earlier incarnation's body sends afterwards reaches the PID, and must be
// refused: taken, it would shift the journal positions of the new body.
func TestExecutionActorRefusesAnEarlierIncarnationsMessages(t *testing.T) {
	// Not parallel: the hook is process-wide (it only panics for "i1").
	fn, p := newParked("twice")
	h := newHarness(t, fn)
	var panics atomic.Int32
	setHook(t, func(id string, msg any) {
		if _, ok := msg.(*messages.Wake); ok && id == "i1" && panics.Add(1) == 1 {
			panic("a fault in the runtime")
		}
	})
	h.start("i1", "twice", `1`)
	old := fromContext(p.body(t))
	require.NotNil(t, old)
	// Restart it: the new incarnation runs the body again.
	h.rt.system.Root.Send(h.rt.pidOf("i1"), &messages.Wake{ExecutionId: "i1"})
	second := fromContext(p.body(t))
	require.NotEqual(t, old.inc, second.inc, "a restart is a new incarnation")

	reply := newReply()
	old.send(&opBegin{kind: persistence.EntryNow, n: 1, reply: reply})
	select {
	case r := <-reply:
		require.ErrorIs(t, r.err, errStopped, "the new incarnation took the earlier one's request (position %d)", r.pos)
	case <-time.After(10 * time.Second):
		t.Fatal("the request of the earlier incarnation was not answered")
	}
	p.release <- result{out: []byte(`"ok"`)}
	rec := h.status("i1", persistence.StatusCompleted)
	require.Equal(t, 1, rec.Attempts)
}

// TestExecutionActorGoesOnUnderItsLeaseTakenAgain: when an activation's
// lease runs out while it runs (renewals failed: the database was out of
// reach) and this node claims the execution again, the activation goes on
// under the new epoch. Stopped and replaced, it would run again whatever
// it started after its last write.
func TestExecutionActorGoesOnUnderItsLeaseTakenAgain(t *testing.T) {
	t.Parallel()
	fn, p := newParked("adopted")
	h := newHarness(t, fn)
	h.start("a1", "adopted", `1`)
	p.body(t)
	epoch := h.row("a1").Epoch

	// The lease runs out, and a claim takes it again.
	db, err := sql.Open("sqlite", "file:"+h.path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`UPDATE stent_execution SET lease_expires_at = 1 WHERE id = 'a1'`)
	require.NoError(t, err)
	h.rt.Kick()
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		h.rt.mu.Lock()
		defer h.rt.mu.Unlock()
		act := h.rt.active["a1"]
		if act == nil || act.epoch != epoch+1 {
			return fmt.Errorf("the activation of a1 does not hold epoch %d", epoch+1)
		}
		return nil
	})

	p.release <- result{out: []byte(`"ok"`)}
	rec := h.status("a1", persistence.StatusCompleted)
	require.Equal(t, epoch+1, rec.Epoch)
	require.Equal(t, 1, rec.Attempts)
	select {
	case <-p.ctxs:
		t.Fatal("the body ran again: the activation was replaced instead of going on")
	default:
	}
}

// TestExecutionActorPassivatesAfterItsChildrenFinish: a parent that
// passivates (a long Sleep) right after a child in memory settled stops
// only once the child has handled the parent's answer (recorded) and
// finished. Stopped first, the child would end without its finish: its
// attempt span "stopped", no completion in its log or metrics, though its
// outcome is written. The child is held on a message queued ahead of the
// answer until the parent has handled its passivating write.
func TestExecutionActorPassivatesAfterItsChildrenFinish(t *testing.T) {
	// Not parallel: the hook is process-wide.
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	parentFn, parent := newParked("sleeper")
	item := &Function{Name: "item", Run: func(ctx context.Context, in []byte) ([]byte, error) { return in, nil }}
	h := newHarnessWith(t, func(c *Config) { c.Tracer = tp.Tracer("test") }, parentFn, item)
	var releaseOnce, parentOnce sync.Once
	release, parentDone := make(chan struct{}), make(chan struct{})
	releaseChild := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseChild)
	// The hook runs on whichever goroutine runs a mailbox, and only on the
	// parent's and child's mailboxes; these flags are theirs.
	var settled, held, passivating atomic.Bool
	setHook(t, func(id string, msg any) {
		switch id {
		case "pz.0":
			if _, ok := msg.(*messages.Wake); ok {
				// A goroutine that runs the child's mailbox (a worker),
				// never the test's: the child's mailbox was idle when
				// the message was sent.
				select {
				case <-release:
				case <-time.After(30 * time.Second):
				}
			}
		case "pz":
			switch m := msg.(type) {
			case *childSettled:
				settled.Store(true)
			case *opWrite:
				if m.passivate {
					passivating.Store(true)
				}
			case *applied:
				if settled.Load() && !held.Swap(true) {
					// The child's outcome is written; the parent is about
					// to answer it (recorded). Queue a message ahead of
					// that answer, and hold the child on it.
					h.rt.system.Root.Send(h.rt.pidOf("pz.0"), &messages.Wake{ExecutionId: "pz.0"})
				}
				if passivating.Load() {
					// Handled after the passivating write's answer (or
					// after the stop, if the write stopped the actor).
					h.rt.system.Root.Send(h.rt.pidOf("pz"), &messages.Wake{ExecutionId: "pz"})
				}
			case *messages.Wake, *actor.Stopping:
				if passivating.Load() {
					parentOnce.Do(func() { close(parentDone) })
				}
			}
		}
	})
	h.start("pz", "sleeper", `0`)
	pctx := parent.body(t)
	futures, err := StartChildren(pctx, item, [][]byte{[]byte(`7`)}, CallOptions{})
	require.NoError(t, err)
	out, err := futures[0].Await(pctx)
	require.NoError(t, err)
	require.JSONEq(t, `7`, string(out))
	go func() { _ = Sleep(pctx, 2*time.Hour) }() // passivates: its goroutine ends
	select {
	case <-parentDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the parent did not handle its passivating write")
	}
	releaseChild()
	h.gone("pz.0")
	h.gone("pz")

	outcomes := map[string]string{}
	for _, s := range exp.GetSpans() {
		id := ""
		o := "completed"
		for _, kv := range s.Attributes {
			switch kv.Key {
			case AttrExecutionID:
				id = kv.Value.AsString()
			case AttrOutcome:
				o = kv.Value.AsString()
			}
		}
		if strings.HasPrefix(s.Name, "run ") {
			outcomes[id] = o
			if o == "completed" {
				require.Equal(t, codes.Ok, s.Status.Code, "%s", s.Name)
			}
		}
	}
	require.Equal(t, map[string]string{"pz": "passivated", "pz.0": "completed"}, outcomes)
}
