package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// Signals.

type approval struct {
	By       string `json:"by"`
	Approved bool   `json:"approved"`
}

var (
	signalSeq = sdk.Durable("test_signal_seq", func(ctx context.Context, n int) ([]string, error) {
		var got []string
		for range n {
			a, err := sdk.WaitForSignal[approval](ctx, "approval")
			if err != nil {
				return nil, err
			}
			got = append(got, a.By)
		}
		return got, nil
	})
	signalTwoNames = sdk.Durable("test_signal_two_names", func(ctx context.Context, _ int) (string, error) {
		a, err := sdk.WaitForSignal[string](ctx, "first")
		if err != nil {
			return "", err
		}
		b, err := sdk.WaitForSignal[string](ctx, "second")
		if err != nil {
			return "", err
		}
		return a + "+" + b, nil
	})
	signalTimeout = sdk.Durable("test_signal_timeout", func(ctx context.Context, d time.Duration) (string, error) {
		v, ok, err := sdk.WaitForSignalTimeout[int](ctx, "late", d)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%v %d", ok, v), nil
	})
	signalTyped = sdk.Durable("test_signal_typed", func(ctx context.Context, _ int) (int, error) {
		return sdk.WaitForSignal[int](ctx, "number")
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 1}))
)

func waitStatus(t *testing.T, ctx context.Context, ex *sdk.Executor, id string, want sdk.Status) sdk.ExecutionInfo {
	t.Helper()
	var info sdk.ExecutionInfo
	testutil.CheckFor(t, 15*time.Second, 10*time.Millisecond, func() error {
		var err error
		if info, err = ex.Execution(ctx, id); err != nil {
			return err
		}
		if info.Status != want {
			return fmt.Errorf("%s is %s, want %s", id, info.Status, want)
		}
		return nil
	})
	return info
}

func TestSignalsAreQueuedInOrderAndConsumedOnce(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := signalSeq.Start(ctx, 3)
	require.NoError(t, err)
	for _, by := range []string{"ann", "bob", "cid"} {
		require.NoError(t, ex.SendSignal(ctx, h.ID(), "approval", approval{By: by, Approved: true}))
	}
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"ann", "bob", "cid"}, got)
	require.ErrorIs(t, ex.SendSignal(ctx, h.ID(), "approval", approval{}), sdk.ErrFinished)
	require.ErrorIs(t, ex.SendSignal(ctx, "no-such-execution", "approval", approval{}), sdk.ErrNotFound)
}

func TestSignalSentBeforeTheWaitIsKept(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := signalTwoNames.Start(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "second", "b")) // before its wait
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "first", "a"))
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "a+b", got)
}

func TestSignalWaitPassivatesAndResumes(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := signalSeq.Start(ctx, 1)
	require.NoError(t, err)
	info := waitStatus(t, ctx, ex, h.ID(), sdk.StatusWaiting)
	require.Empty(t, info.Owner, "a passivated wait holds no lease")
	testutil.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for _, id := range ex.ActiveExecutions() {
			if id == h.ID() {
				return errors.New("the waiting execution still has an actor")
			}
		}
		return nil
	})
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "approval", approval{By: "later"}))
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"later"}, got)
}

func TestSignalTimeout(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	got, err := signalTimeout.Call(ctx, 150*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, "false 0", got)

	h, err := signalTimeout.Start(ctx, time.Minute)
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "late", 7))
	got, err = h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, "true 7", got)
}

func TestSignalPayloadErrorsAndLimits(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t, sdk.WithSignalLimits(64, 2))
	h, err := signalTyped.Start(ctx, 0)
	require.NoError(t, err)

	err = ex.SendSignal(ctx, h.ID(), "number", string(make([]byte, 100)))
	require.ErrorContains(t, err, "over the limit of 64")
	err = ex.SendSignal(ctx, h.ID(), "number", func() {})
	require.ErrorContains(t, err, `encoding the payload of signal "number"`)

	busy, err := signalTimeout.Start(ctx, time.Minute) // waits for "late" only
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, busy.ID(), "other", 1))
	require.NoError(t, ex.SendSignal(ctx, busy.ID(), "other", 2))
	require.ErrorContains(t, ex.SendSignal(ctx, busy.ID(), "other", 3), "wait to be consumed")
	require.NoError(t, ex.Cancel(ctx, busy.ID()))

	require.NoError(t, ex.SendSignal(ctx, h.ID(), "number", map[string]int{"x": 1}))
	_, err = h.Result(ctx)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Message, `signal "number": stent: signal payload of the wrong type: its payload does not decode into int`)
	require.Equal(t, 1, ee.Attempts, "a wrong-typed signal is not retried")
}

// Cancellation.

var (
	cancelSteps atomic.Int32
	cancelStep  = sdk.Durable("test_cancel_step", func(ctx context.Context, x int) (int, error) {
		cancelSteps.Add(1)
		return x, nil
	})
	cancelLoop = sdk.Durable("test_cancel_loop", func(ctx context.Context, _ int) (int, error) {
		for i := 0; ; i++ {
			if _, err := cancelStep.Call(ctx, i); err != nil {
				return 0, err
			}
			if err := sdk.Sleep(ctx, 5*time.Millisecond); err != nil {
				return 0, err
			}
		}
	})
	cancelSleepyChild = sdk.Durable("test_cancel_sleepy_child", func(ctx context.Context, d time.Duration) (int, error) {
		return 0, sdk.Sleep(ctx, d)
	})
	cancelParent = sdk.Durable("test_cancel_parent", func(ctx context.Context, d time.Duration) (int, error) {
		return cancelSleepyChild.Call(ctx, d)
	})
	cancelOnQueue = sdk.Durable("test_cancel_unserved", func(ctx context.Context, x int) (int, error) {
		return x, nil
	}, sdk.WithQueue("nobody-serves-this"))
)

func TestCancelRunningStopsSteps(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := cancelLoop.Start(ctx, 0)
	require.NoError(t, err)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if cancelSteps.Load() < 3 {
			return errors.New("not enough steps yet")
		}
		return nil
	})
	require.NoError(t, ex.Cancel(ctx, h.ID()))
	after := cancelSteps.Load()
	_, err = h.Result(ctx)
	require.ErrorIs(t, err, sdk.ErrCanceled)
	waitStatus(t, ctx, ex, h.ID(), sdk.StatusCanceled)
	time.Sleep(50 * time.Millisecond) // would be ten more steps
	require.Equal(t, after, cancelSteps.Load(), "no step starts after the cancel is acknowledged")
	require.ErrorIs(t, ex.Cancel(ctx, h.ID()), sdk.ErrFinished)
	require.ErrorIs(t, ex.Cancel(ctx, "no-such-execution"), sdk.ErrNotFound)
}

func TestCancelDuringChildSleepEndsBoth(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := cancelParent.Start(ctx, time.Hour)
	require.NoError(t, err)
	var childID string
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		children, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID()})
		if err != nil {
			return err
		}
		if len(children) != 1 || children[0].Status != sdk.StatusWaiting {
			return fmt.Errorf("children %v", children)
		}
		childID = children[0].ID
		return nil
	})
	require.NoError(t, ex.Cancel(ctx, h.ID()))
	_, err = h.Result(ctx)
	require.ErrorIs(t, err, sdk.ErrCanceled)
	waitStatus(t, ctx, ex, h.ID(), sdk.StatusCanceled)
	waitStatus(t, ctx, ex, childID, sdk.StatusCanceled)
}

func TestCancelPending(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t, sdk.WithQueues(sdk.DefaultQueue))
	h, err := cancelOnQueue.Start(ctx, 1)
	require.NoError(t, err)
	info := waitStatus(t, ctx, ex, h.ID(), sdk.StatusPending)
	require.Equal(t, "nobody-serves-this", info.Queue, "an execution for a queue no one serves stays pending, visible")
	require.NoError(t, ex.Cancel(ctx, h.ID()))
	waitStatus(t, ctx, ex, h.ID(), sdk.StatusCanceled)
	_, err = h.Result(ctx)
	require.ErrorIs(t, err, sdk.ErrCanceled)
}

// Idempotency.

var (
	idemMu   sync.Mutex
	idemRuns = map[string]int{}
	idemFn   = sdk.Durable("test_idem", func(ctx context.Context, in string) (string, error) {
		idemMu.Lock()
		idemRuns[in]++
		idemMu.Unlock()
		return "done:" + in, nil
	}, sdk.WithIdempotent())
	idemParent = sdk.Durable("test_idem_parent", func(ctx context.Context, in string) (string, error) {
		return idemFn.Call(ctx, in)
	})
	keyed = sdk.Durable("test_keyed", func(ctx context.Context, in string) (string, error) {
		return "keyed:" + in, nil
	})
)

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	key := fmt.Sprintf("order-%d", time.Now().UnixNano())
	var wg sync.WaitGroup
	ids := make([]string, 10)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := keyed.Start(ctx, "A", sdk.WithIdempotencyKey(key))
			if err == nil {
				ids[i] = h.ID()
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "one execution for one key")
	}
	_, err := keyed.Start(ctx, "B", sdk.WithIdempotencyKey(key))
	require.ErrorContains(t, err, key, "the same key with another input is refused")
	all, err := ex.List(ctx, sdk.ListFilter{Function: "test_keyed"})
	require.NoError(t, err)
	require.Len(t, all, 1)
}

func TestIdempotentFunctionRunsOncePerInput(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t)
	in := fmt.Sprintf("in-%d", time.Now().UnixNano())
	for range 3 {
		got, err := idemFn.Call(ctx, in)
		require.NoError(t, err)
		require.Equal(t, "done:"+in, got)
		got, err = idemParent.Call(ctx, in) // as a child too
		require.NoError(t, err)
		require.Equal(t, "done:"+in, got)
	}
	idemMu.Lock()
	defer idemMu.Unlock()
	require.Equal(t, 1, idemRuns[in])
}

// Concurrency limits.

var (
	limitNow  atomic.Int32
	limitMax  atomic.Int32
	limitRuns atomic.Int32
	limited   = sdk.Durable("test_limited", func(ctx context.Context, x int) (int, error) {
		n := limitNow.Add(1)
		defer limitNow.Add(-1)
		for {
			m := limitMax.Load()
			if n <= m || limitMax.CompareAndSwap(m, n) {
				break
			}
		}
		limitRuns.Add(1)
		time.Sleep(15 * time.Millisecond)
		return x, nil
	}, sdk.WithMaxConcurrent(3))
	limitedFanout = sdk.Durable("test_limited_fanout", func(ctx context.Context, n int) (int, error) {
		ins := make([]int, n)
		for i := range ins {
			ins[i] = i
		}
		outs, err := limited.Map(ctx, ins)
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, v := range outs {
			sum += v
		}
		return sum, nil
	})
)

func TestMaxConcurrent(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t)
	got, err := limitedFanout.Call(ctx, 60)
	require.NoError(t, err)
	require.Equal(t, 60*59/2, got)
	require.EqualValues(t, 60, limitRuns.Load())
	require.LessOrEqual(t, limitMax.Load(), int32(3))
	require.GreaterOrEqual(t, limitMax.Load(), int32(2), "the limit is used, not just respected")
}

// Queues.

var queued = sdk.Durable("test_queued", func(ctx context.Context, x int) (int, error) { return x * 3, nil },
	sdk.WithQueue("reports"))

func TestQueuesRouteWork(t *testing.T) {
	t.Parallel()
	_, open := testDatabase(t)
	ctx := context.Background()
	client, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithQueues("default"), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, client.Close()) }()
	cctx := sdk.WithExecutor(ctx, client)
	h, err := queued.Start(cctx, 5)
	require.NoError(t, err)
	info := waitStatus(t, cctx, client, h.ID(), sdk.StatusPending)
	require.Equal(t, "reports", info.Queue)

	reports, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithQueues("reports"), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, reports.Close()) }()
	got, err := h.Result(cctx)
	require.NoError(t, err)
	require.Equal(t, 15, got)
	done, err := reports.Execution(ctx, h.ID())
	require.NoError(t, err)
	require.Equal(t, sdk.StatusCompleted, done.Status)
	raw, err := json.Marshal(done.Output)
	require.NoError(t, err)
	require.JSONEq(t, "15", string(raw))
}

var (
	orderStarted = make(chan struct{})
	orderGate    = make(chan struct{})
	orderMu      sync.Mutex
	orderSeen    []int
	ordered      = sdk.Durable("test_ordered", func(ctx context.Context, x int) (int, error) {
		if x == 0 {
			close(orderStarted)
			<-orderGate
		}
		orderMu.Lock()
		orderSeen = append(orderSeen, x)
		orderMu.Unlock()
		return x, nil
	}, sdk.WithMaxConcurrent(1))
)

func TestLimitedExecutionsAreServedInOrder(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	first, err := ordered.Start(ctx, 0)
	require.NoError(t, err)
	<-orderStarted // 0 holds the only permit
	handles := []*sdk.Handle[int]{first}
	for x := 1; x <= 6; x++ {
		time.Sleep(2 * time.Millisecond) // creation times are kept to the millisecond
		h, err := ordered.Start(ctx, x)
		require.NoError(t, err)
		handles = append(handles, h)
	}
	urgent, err := ordered.Start(ctx, 7, sdk.WithCallPriority(10))
	require.NoError(t, err)
	handles = append(handles, urgent)
	testutil.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := len(ex.ActiveExecutions()); n < 8 {
			return fmt.Errorf("%d of 8 waiting", n)
		}
		return nil
	})
	// An activation asks the function's router for a permit just after it
	// starts: give the last requests time to reach the router, or 1 may be
	// served before 7 has asked (the order is of the requests).
	time.Sleep(250 * time.Millisecond)
	close(orderGate)
	for _, h := range handles {
		_, err := h.Result(ctx)
		require.NoError(t, err)
	}
	orderMu.Lock()
	defer orderMu.Unlock()
	require.Equal(t, []int{0, 7, 1, 2, 3, 4, 5, 6}, orderSeen, "priority first, then the order of the starts")
}

var (
	slowNow, slowMax atomic.Int32
	slowLimited      = sdk.Durable("test_slow_limited", func(ctx context.Context, x int) (int, error) {
		n := slowNow.Add(1)
		defer slowNow.Add(-1)
		for {
			m := slowMax.Load()
			if n <= m || slowMax.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(1500 * time.Millisecond) // five leases
		return x, nil
	}, sdk.WithMaxConcurrent(1))
	slowCaller = sdk.Durable("test_slow_caller", func(ctx context.Context, x int) (int, error) {
		return slowLimited.Call(ctx, x) // a step: a child in memory, with no lease of its own
	})
)

// A step in memory holds its permit for as long as it runs, past its
// parent's lease time: the renewal covers it (it once covered only
// executions with a lease of their own, and a second step ran beside it).
func TestStepInMemoryKeepsItsPermitPastALease(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t, sdk.WithLeaseDuration(300*time.Millisecond))
	a, err := slowCaller.Start(ctx, 1)
	require.NoError(t, err)
	b, err := slowCaller.Start(ctx, 2)
	require.NoError(t, err)
	for _, h := range []*sdk.Handle[int]{a, b} {
		_, err := h.Result(ctx)
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, slowMax.Load(), "steps of a function limited to 1 at once")
}
