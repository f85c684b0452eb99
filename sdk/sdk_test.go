package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

func TestMain(m *testing.M) {
	if os.Getenv(envCrashHelper) != "" {
		os.Exit(crashHelper())
	}
	if os.Getenv(envStartupHelper) != "" {
		os.Exit(startupHelper())
	}
	if os.Getenv(envProgressHelper) != "" {
		os.Exit(progressHelper())
	}
	testutil.WrapTestMain(m)
}

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

var (
	processOrder = sdk.Durable("test_process_order", func(ctx context.Context, id string) (order, error) {
		return order{ID: id, Status: "processed"}, nil
	})
	orderWorkflow = sdk.Durable("test_order_workflow", func(ctx context.Context, ids []string) ([]order, error) {
		out := make([]order, 0, len(ids))
		for _, id := range ids {
			o, err := processOrder.Call(ctx, id)
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	})
)

func TestCallRunsChildrenDurably(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	got, err := orderWorkflow.Call(ctx, []string{"ORD-001", "ORD-002"})
	require.NoError(t, err)
	require.Equal(t, []order{{"ORD-001", "processed"}, {"ORD-002", "processed"}}, got)

	roots, err := ex.List(ctx, sdk.ListFilter{Function: "test_order_workflow"})
	require.NoError(t, err)
	require.Len(t, roots, 1)
	require.Equal(t, sdk.StatusCompleted, roots[0].Status)
	require.Equal(t, 1, roots[0].Attempts)
	children, err := ex.List(ctx, sdk.ListFilter{ParentID: roots[0].ID})
	require.NoError(t, err)
	require.Len(t, children, 2)
	for _, c := range children {
		require.Equal(t, sdk.StatusCompleted, c.Status)
	}
}

// Not parallel: tests that call sdk.Bootstrap make their executor the
// process default while they run, and a call without an executor would go
// to it (and wait on it after it closed). Sequential tests run before the
// parallel ones start.
func TestCallWithoutExecutorRunsDirectly(t *testing.T) {
	got, err := orderWorkflow.Call(context.Background(), []string{"A"})
	require.NoError(t, err)
	require.Equal(t, []order{{"A", "processed"}}, got)
	sq, err := squareDirect.Map(context.Background(), []int{1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, []int{1, 4, 9}, sq)
}

var squareDirect = sdk.Durable("test_square_direct", func(ctx context.Context, x int) (int, error) { return x * x, nil })

func TestDuplicateNamePanics(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() {
		sdk.Durable("test_process_order", func(ctx context.Context, s string) (string, error) { return s, nil })
	})
}

// Retries: the attempt count and the backoff between attempts.

var (
	flakyMu    sync.Mutex
	flakyTimes = map[string][]time.Time{}
	flaky      = sdk.Durable("test_flaky", func(ctx context.Context, key string) (string, error) {
		flakyMu.Lock()
		flakyTimes[key] = append(flakyTimes[key], time.Now())
		n := len(flakyTimes[key])
		flakyMu.Unlock()
		if n < 3 {
			return "", fmt.Errorf("attempt %d failed", n)
		}
		return fmt.Sprintf("ok after %d", n), nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 4, InitialDelay: 100 * time.Millisecond, Multiplier: 2, Jitter: 0.2}))
)

func TestRetryCountsAttemptsAndBacksOff(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := flaky.Start(ctx, "retry")
	require.NoError(t, err)
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "ok after 3", got)
	info, err := ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Equal(t, 3, info.Attempts)

	flakyMu.Lock()
	times := flakyTimes["retry"]
	flakyMu.Unlock()
	require.Len(t, times, 3)
	// Attempt n+1 waits InitialDelay × 2^(n−1) ± 20%; allow scheduling slack above.
	for i, base := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
		gap := times[i+1].Sub(times[i])
		require.GreaterOrEqual(t, gap, time.Duration(float64(base)*0.8), "gap %d", i)
		require.Less(t, gap, time.Duration(float64(base)*1.2)+time.Second, "gap %d", i)
	}
}

var (
	permanentRuns atomic.Int32
	permanent     = sdk.Durable("test_permanent", func(ctx context.Context, x int) (int, error) {
		permanentRuns.Add(1)
		return 0, sdk.NonRetryable(errors.New("card declined"))
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 5, InitialDelay: 10 * time.Millisecond}))
)

func TestNonRetryableFailsAtOnce(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	_, err := permanent.Call(ctx, 1)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "test_permanent", ee.Function)
	require.Equal(t, 1, ee.Attempts)
	require.Contains(t, ee.Message, "card declined")
	require.EqualValues(t, 1, permanentRuns.Load())
	info, err := ex.Execution(ctx, ee.ExecutionID)
	require.NoError(t, err)
	require.Equal(t, sdk.StatusFailed, info.Status)
}

// Exhausted retries land in the dead-letter queue; a replay runs again.

var (
	dlqHeal atomic.Bool
	dlqRuns atomic.Int32
	dlqStep = sdk.Durable("test_dlq_step", func(ctx context.Context, x int) (int, error) {
		dlqRuns.Add(1)
		if !dlqHeal.Load() {
			return 0, errors.New("downstream unavailable")
		}
		return x * 10, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond}))
	dlqParent = sdk.Durable("test_dlq_parent", func(ctx context.Context, x int) (int, error) {
		v, err := dlqStep.Call(ctx, x)
		if err != nil {
			return 0, err
		}
		return v + 1, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))
)

func TestExhaustedRetriesGoToDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := dlqParent.Start(ctx, 4)
	require.NoError(t, err)
	_, err = h.Result(ctx)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Message, "downstream unavailable")
	require.EqualValues(t, 2, dlqRuns.Load(), "the child made its two attempts")

	dls, err := ex.DeadLetters(ctx)
	require.NoError(t, err)
	require.Len(t, dls, 2, "the child and the parent that failed with it")
	var child sdk.DeadLetter
	for _, d := range dls {
		if d.Function == "test_dlq_step" {
			child = d
		}
	}
	require.Equal(t, 2, child.Attempts)
	require.JSONEq(t, "4", string(child.Input))
	require.Contains(t, child.Error, "downstream unavailable")

	// Replaying the child's dead letter re-runs it and resumes the parent.
	dlqHeal.Store(true)
	require.NoError(t, ex.ReplayDeadLetter(ctx, child.ID))
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, h.ID())
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusCompleted || string(info.Output) != "41" {
			return fmt.Errorf("parent status %s output %s", info.Status, info.Output)
		}
		return nil
	})
	dls, err = ex.DeadLetters(ctx)
	require.NoError(t, err)
	require.Empty(t, dls)
	require.ErrorIs(t, ex.ReplayDeadLetter(ctx, "no-such-letter"), sdk.ErrNotFound)
}

// Map: outputs in input order, the first error by index after all finished.

var (
	mapSquare = sdk.Durable("test_map_square", func(ctx context.Context, x int) (int, error) {
		if x < 0 {
			return 0, sdk.NonRetryable(fmt.Errorf("negative input %d", x))
		}
		// Finish out of order: larger inputs first.
		if err := sdk.Sleep(ctx, time.Duration(10-x)*time.Millisecond); err != nil {
			return 0, err
		}
		return x * x, nil
	})
	mapFinished atomic.Int32
	mapWorkflow = sdk.Durable("test_map_workflow", func(ctx context.Context, xs []int) ([]int, error) {
		return mapSquare.Map(ctx, xs)
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))
	mapResultsWorkflow = sdk.Durable("test_map_results_workflow", func(ctx context.Context, xs []int) ([]string, error) {
		rs, err := mapSquare.MapResults(ctx, xs)
		if err != nil {
			return nil, err
		}
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = sdk.MapResult(r, func(v int) string { return fmt.Sprint(v) }).UnwrapOr("error")
		}
		mapFinished.Add(1)
		return out, nil
	})
)

func TestMapKeepsOrderAndReportsFirstError(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	got, err := mapWorkflow.Call(ctx, []int{1, 2, 3, 4, 5, 6, 7, 8, 9})
	require.NoError(t, err)
	require.Equal(t, []int{1, 4, 9, 16, 25, 36, 49, 64, 81}, got)

	_, err = mapWorkflow.Call(ctx, []int{1, -2, 3, -4})
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Message, "negative input -2", "the first failure by index")
	// Every child ran to its end before the parent failed.
	roots, err := ex.List(ctx, sdk.ListFilter{Function: "test_map_workflow", Status: sdk.StatusFailed})
	require.NoError(t, err)
	require.Len(t, roots, 1)
	children, err := ex.List(ctx, sdk.ListFilter{ParentID: roots[0].ID})
	require.NoError(t, err)
	require.Len(t, children, 4)
	for _, c := range children {
		require.True(t, c.Status == sdk.StatusCompleted || c.Status == sdk.StatusFailed, "child %s is %s", c.ID, c.Status)
	}

	strs, err := mapResultsWorkflow.Call(ctx, []int{2, -1, 3})
	require.NoError(t, err)
	require.Equal(t, []string{"4", "error", "9"}, strs)

	// Map outside an execution starts root executions.
	roots2, err := mapSquare.Map(ctx, []int{3, 1, 2})
	require.NoError(t, err)
	require.Equal(t, []int{9, 1, 4}, roots2)
}

// Timeouts: an attempt longer than WithTimeout fails with ErrTimeout and is
// retried; WithMaxDuration ends the execution as timed_out.

var (
	slowAttempts atomic.Int32
	slow         = sdk.Durable("test_slow", func(ctx context.Context, d time.Duration) (string, error) {
		slowAttempts.Add(1)
		select {
		case <-time.After(d):
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, sdk.WithTimeout(50*time.Millisecond), sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond}))
	// stubborn ignores its context: it returns only once the channel
	// stored under its input in stubbornGates is closed.
	stubbornGates sync.Map
	stubborn      = sdk.Durable("test_stubborn", func(ctx context.Context, gate string) (string, error) {
		ch, _ := stubbornGates.Load(gate)
		<-ch.(chan struct{})
		return "late", nil
	}, sdk.WithTimeout(50*time.Millisecond), sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))
	longSleeper = sdk.Durable("test_long_sleeper", func(ctx context.Context, d time.Duration) (string, error) {
		if err := sdk.Sleep(ctx, d); err != nil {
			return "", err
		}
		return "woke", nil
	})
)

func TestTimeouts(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	_, err := slow.Call(ctx, time.Minute)
	require.ErrorIs(t, err, sdk.ErrTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.Attempts)
	require.EqualValues(t, 2, slowAttempts.Load())

	got, err := slow.Call(ctx, time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, "done", got)

	// A body that ignores its context is abandoned at the deadline: the
	// call ends while the body still runs (it returns only after).
	gate := make(chan struct{})
	stubbornGates.Store(t.Name(), gate)
	called := make(chan error, 1)
	go func() {
		_, err := stubborn.Call(ctx, t.Name())
		called <- err
	}()
	select {
	case err = <-called:
	case <-time.After(30 * time.Second):
		t.Fatal("the call waited for a body past its timeout")
	}
	close(gate)
	require.ErrorIs(t, err, sdk.ErrTimeout)

	// The whole execution's deadline.
	h, err := longSleeper.Start(ctx, time.Hour, sdk.WithMaxDuration(200*time.Millisecond))
	require.NoError(t, err)
	_, err = h.Result(ctx)
	require.ErrorIs(t, err, sdk.ErrTimeout)
	info, err := ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Equal(t, sdk.StatusTimedOut, info.Status)
}

// A panic fails the attempt with the panic and its stack; the node lives on.

var (
	panicker = sdk.Durable("test_panicker", func(ctx context.Context, x int) (int, error) {
		var m map[string]int
		m["boom"] = x //lint:ignore SA5000 the test needs a panic from user code
		return x, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 2, InitialDelay: 10 * time.Millisecond}))
)

func TestPanickingBodyFailsTheAttempt(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t)
	_, err := panicker.Call(ctx, 1)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 2, ee.Attempts)
	require.Contains(t, ee.Message, "panic: assignment to entry in nil map")
	require.Contains(t, ee.Stack, "sdk_test.go", "the stack points into the body")
	// The node still works.
	got, err := orderWorkflow.Call(ctx, []string{"after-panic"})
	require.NoError(t, err)
	require.Len(t, got, 1)
}

// A replay that issues a different operation fails with ErrNonDeterministic.

var (
	nondetSwitch sync.Map // execution ID → bool: take the other branch
	nondetA      = sdk.Durable("test_nondet_a", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	nondetB      = sdk.Durable("test_nondet_b", func(ctx context.Context, x int) (int, error) { return x + 2, nil })
	nondet       = sdk.Durable("test_nondet", func(ctx context.Context, x int) (int, error) {
		var v int
		var err error
		if _, other := nondetSwitch.Load(sdk.ExecutionID(ctx)); other {
			v, err = nondetB.Call(ctx, x)
		} else {
			v, err = nondetA.Call(ctx, x)
		}
		if err != nil {
			return 0, err
		}
		nondetSwitch.Store(sdk.ExecutionID(ctx), true) // the "deploy" of changed code
		if err := sdk.Sleep(ctx, time.Second); err != nil {
			return 0, err
		}
		return v, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond}))
)

func TestNonDeterministicReplayFails(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := nondet.Start(ctx, 1)
	require.NoError(t, err)
	_, err = h.Result(ctx)
	require.ErrorIs(t, err, sdk.ErrNonDeterministic)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Attempts, "not retried")
	require.Contains(t, ee.Message, "test_nondet_a")
	info, err := ex.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Equal(t, sdk.StatusFailed, info.Status)
}

// An input that cannot be encoded is refused before anything is written.

var encodeFn = sdk.Durable("test_encode", func(ctx context.Context, in map[string]any) (int, error) { return len(in), nil })

func TestUnencodableInputWritesNothing(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	_, err := encodeFn.Call(ctx, map[string]any{"f": func() {}})
	require.ErrorContains(t, err, `encoding input of "test_encode"`)
	_, err = encodeFn.Call(ctx, map[string]any{"nan": math.NaN()})
	require.ErrorContains(t, err, "unsupported value")
	all, err := ex.List(ctx, sdk.ListFilter{})
	require.NoError(t, err)
	require.Empty(t, all)
}

func TestBadDatabasePath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "stent.db")
	_, err := sqlite.Open(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)
}

// Sleep: a long sleep passivates and a durable timer resumes it; Now is
// recorded once.

var (
	sleeperSteps atomic.Int32
	sleeper      = sdk.Durable("test_sleeper", func(ctx context.Context, x int) (string, error) {
		t0 := sdk.Now(ctx)
		sleeperSteps.Add(1)
		if err := sdk.Sleep(ctx, 1200*time.Millisecond); err != nil {
			return "", err
		}
		t1 := sdk.Now(ctx)
		return fmt.Sprintf("%s %d", sdk.ExecutionID(ctx), t1.Sub(t0).Milliseconds()), nil
	})
)

func TestSleepPassivatesAndResumes(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := sleeper.Start(ctx, 1)
	require.NoError(t, err)
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, h.ID())
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusWaiting || info.Owner != "" {
			return fmt.Errorf("status %s owner %q", info.Status, info.Owner)
		}
		return nil
	})
	got, err := h.Result(ctx)
	require.NoError(t, err)
	var id string
	var ms int64
	_, err = fmt.Sscanf(got, "%s %d", &id, &ms)
	require.NoError(t, err)
	require.Equal(t, h.ID(), id)
	require.GreaterOrEqual(t, ms, int64(1200), "Now before the sleep was replayed, not re-read")
	require.EqualValues(t, 2, sleeperSteps.Load(), "the body replays after the wake-up")
	testutil.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if ids := ex.ActiveExecutions(); len(ids) > 0 {
			return fmt.Errorf("actors left after the execution finished: %v", ids)
		}
		return nil
	})
}

func TestSleepOutsideExecutionHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, sdk.Sleep(ctx, time.Hour), context.DeadlineExceeded)
	require.Equal(t, "", sdk.ExecutionID(ctx))
}

// Many steps: snapshots are taken and a reactivation uses them.

var (
	countStep = sdk.Durable("test_count_step", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	counter   = sdk.Durable("test_counter", func(ctx context.Context, n int) (int, error) {
		x := 0
		for i := 0; i < n; i++ {
			v, err := countStep.Call(ctx, x)
			if err != nil {
				return 0, err
			}
			x = v
		}
		if err := sdk.Sleep(ctx, time.Second); err != nil { // passivate, then replay from the snapshot
			return 0, err
		}
		return x, nil
	})
)

func TestSnapshotsAndReplay(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := counter.Start(ctx, 150)
	require.NoError(t, err)
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, 150, got)
	snap, tail, err := ex.Backend().LoadJournal(ctx, h.ID())
	require.NoError(t, err)
	require.NotNil(t, snap)
	require.GreaterOrEqual(t, snap.Position, 149)
	require.LessOrEqual(t, len(tail), 1)
	children, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID(), Limit: 1000})
	require.NoError(t, err)
	require.Len(t, children, 150, "each step ran as one child, never again on replay")
}

func TestExecutionNotFound(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	_, err := ex.Execution(ctx, "nope")
	require.ErrorIs(t, err, sdk.ErrNotFound)
	_, err = ex.List(ctx, sdk.ListFilter{Status: "bogus"})
	require.ErrorContains(t, err, `unknown status "bogus"`)
}

// A node never claims an execution of a function it does not have: the
// execution stays pending, and Stats names it as waiting for a node.
func TestUnknownFunctionWaitsForANode(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	now := time.Now().UTC()
	_, _, err := ex.Backend().CreateExecution(ctx, &persistence.Execution{
		ID: "unknown-1", RootID: "unknown-1", Function: "no_such_function", Queue: sdk.DefaultQueue,
		Status: persistence.StatusPending, Input: []byte(`{}`), CreatedAt: now.Add(-time.Second), UpdatedAt: now,
	})
	require.NoError(t, err)
	// A younger execution of a function the node has: the claim, oldest
	// first, would have taken the unknown one before it.
	_, _, err = ex.Backend().CreateExecution(ctx, &persistence.Execution{
		ID: "known-1", RootID: "known-1", Function: "test_process_order", Queue: sdk.DefaultQueue,
		Status: persistence.StatusPending, Input: []byte(`"after"`), CreatedAt: now, UpdatedAt: now,
	})
	require.NoError(t, err)
	waitStatus(t, ctx, ex, "known-1", sdk.StatusCompleted)
	info, err := ex.Execution(ctx, "unknown-1")
	require.NoError(t, err)
	require.Equal(t, sdk.StatusPending, info.Status)
	st, err := ex.Stats(ctx)
	require.NoError(t, err)
	require.Len(t, st.Unserved, 1)
	require.Equal(t, "no_such_function", st.Unserved[0].Function)
}

func TestResult(t *testing.T) {
	t.Parallel()
	r := sdk.Ok(42)
	require.True(t, r.IsOk())
	require.Equal(t, 42, r.Unwrap())
	require.Equal(t, 42, r.UnwrapOr(0))
	require.Equal(t, "42", sdk.MapResult(r, func(v int) string { return fmt.Sprint(v) }).Unwrap())
	e := sdk.Err[int](errors.New("oops"))
	require.False(t, e.IsOk())
	require.Equal(t, 0, e.UnwrapOr(0))
	require.EqualError(t, e.Err(), "oops")
	require.Panics(t, func() { e.Unwrap() })
	_, err := sdk.MapResult(e, func(v int) string { return "" }).Value()
	require.EqualError(t, err, "oops")
}

// A corrupt snapshot row quarantines its execution with a clear error and
// leaves the others alone.

var corruptible = sdk.Durable("test_corruptible", func(ctx context.Context, n int) (int, error) {
	x := 0
	for i := 0; i < n; i++ {
		v, err := countStep.Call(ctx, x)
		if err != nil {
			return 0, err
		}
		x = v
	}
	if err := sdk.Sleep(ctx, time.Second); err != nil { // passivate with a snapshot
		return 0, err
	}
	return x, nil
}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))

func TestCorruptSnapshotQuarantinesOnlyItsExecution(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	bad, err := corruptible.Start(ctx, 70)
	require.NoError(t, err)
	good, err := corruptible.Start(ctx, 70)
	require.NoError(t, err)
	var rec *persistence.Execution
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		rec, err = ex.Backend().GetExecution(ctx, bad.ID())
		if err != nil {
			return err
		}
		if rec.Status != persistence.StatusWaiting {
			return fmt.Errorf("status %s", rec.Status)
		}
		return nil
	})
	snap, _, err := ex.Backend().LoadJournal(ctx, bad.ID())
	require.NoError(t, err)
	require.NotNil(t, snap, "the passivation wrote a snapshot")
	flipped := append([]byte(nil), snap.Data...)
	flipped[len(flipped)/2] ^= 0xff
	errs, err := ex.Backend().Apply(ctx, []*persistence.Commit{{ExecutionID: bad.ID(), Epoch: rec.Epoch,
		Snapshot: &persistence.Snapshot{ExecutionID: bad.ID(), Position: snap.Position, Data: flipped[:len(flipped)-3]}}})
	require.NoError(t, err)
	require.NoError(t, errs[0])

	_, err = bad.Result(ctx)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Message, "decoding snapshot of "+bad.ID())
	got, err := good.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, 70, got)
}

// TestResultAfterCloseReturns: waiting on an execution through an executor
// that is closed meanwhile ends with an error naming the closed backend,
// instead of polling it forever.
func TestResultAfterCloseReturns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "closed.db"))
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t))) // not serving: the execution stays pending
	require.NoError(t, err)
	h, err := squareDirect.Start(sdk.WithExecutor(ctx, ex), 3)
	require.NoError(t, err)
	require.NoError(t, ex.Close())
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = h.Result(wctx)
	require.ErrorIs(t, err, persistence.ErrClosed)
}
