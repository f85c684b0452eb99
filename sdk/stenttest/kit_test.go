package stenttest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// sample:begin autoskip
var kitSleepDay = sdk.Durable("stenttest_kit_sleep_day", func(ctx context.Context, _ struct{}) (string, error) {
	if err := sdk.Sleep(ctx, 24*time.Hour); err != nil {
		return "", err
	}
	return "rested", nil
})

// A 24-hour durable sleep completes at once under AutoSkip: the clock jumps
// to the sleep's end as soon as the execution has passivated.
func TestSleepForADayWithAutoSkip(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.AutoSkip()
	started, from := time.Now(), env.Clock.Now()
	h, err := kitSleepDay.Start(env.Ctx, struct{}{})
	require.NoError(t, err)
	out, err := h.Result(env.Ctx)
	require.NoError(t, err)
	require.Equal(t, "rested", out)
	env.RequireStatus(h.ID(), sdk.StatusCompleted)
	env.RequireJournalKinds(h.ID(), "sleep")
	require.GreaterOrEqual(t, env.Clock.Now().Sub(from), 24*time.Hour) // of test time
	t.Logf("slept 24h of test time in %s (clock moved %s)", time.Since(started), env.Clock.Skipped())
}

// sample:end

// Advance by hand: the sleep is waiting until the clock passes its end.
func TestSleepForADayWithAdvance(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	h, err := kitSleepDay.Start(env.Ctx, struct{}{})
	require.NoError(t, err)
	env.WaitForStatus(h.ID(), sdk.StatusWaiting)
	env.Clock.Advance(23 * time.Hour)
	env.RequireStatus(h.ID(), sdk.StatusWaiting)
	env.Clock.Advance(time.Hour)
	env.WaitForStatus(h.ID(), sdk.StatusCompleted)
}

type approval struct {
	By string `json:"by"`
}

var kitApproval = sdk.Durable("stenttest_kit_approval", func(ctx context.Context, _ struct{}) (string, error) {
	a, ok, err := sdk.WaitForSignalTimeout[approval](ctx, "approve", 7*24*time.Hour)
	if err != nil {
		return "", err
	}
	if !ok {
		return "expired", nil
	}
	return "approved by " + a.By, nil
})

// A 7-day signal timeout runs out at once under AutoSkip.
func TestSignalTimeoutOfSevenDays(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.AutoSkip()
	started, from := time.Now(), env.Clock.Now()
	h, err := kitApproval.Start(env.Ctx, struct{}{})
	require.NoError(t, err)
	out, err := h.Result(env.Ctx)
	require.NoError(t, err)
	require.Equal(t, "expired", out)
	env.RequireSignalTimedOut(h.ID(), "approve")
	require.GreaterOrEqual(t, env.Clock.Now().Sub(from), 7*24*time.Hour)
	t.Logf("waited 7 days of test time in %s", time.Since(started))
}

// sample:begin advance
// A signal sent before the timeout is received, and the assertions show it.
func TestSignalBeforeTheTimeout(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	h, err := kitApproval.Start(env.Ctx, struct{}{})
	require.NoError(t, err)
	env.WaitForStatus(h.ID(), sdk.StatusWaiting)
	env.Clock.Advance(6 * 24 * time.Hour)
	require.NoError(t, env.Executor.SendSignal(env.Ctx, h.ID(), "approve", approval{By: "ada"}))
	out, err := h.Result(env.Ctx)
	require.NoError(t, err)
	require.Equal(t, "approved by ada", out)
	ent := env.RequireSignalReceived(h.ID(), "approve")
	require.JSONEq(t, `{"by":"ada"}`, string(ent.Output))
}

// sample:end

var kitFlakyCalls atomic.Int64

var kitFlaky = sdk.Durable("stenttest_kit_flaky", func(ctx context.Context, n int) (int, error) {
	if kitFlakyCalls.Add(1) < 3 {
		return 0, errors.New("upstream unavailable")
	}
	return n * 2, nil
}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: time.Hour, MaxDelay: time.Hour, Jitter: -1}))

// Two retries with a 1-hour backoff each complete at once under AutoSkip.
func TestRetryWithAnHourOfBackoff(t *testing.T) {
	t.Parallel()
	kitFlakyCalls.Store(0) // fails twice in each run (go test -count)
	env := stenttest.New(t)
	env.AutoSkip()
	started, from := time.Now(), env.Clock.Now()
	h, err := kitFlaky.Start(env.Ctx, 21)
	require.NoError(t, err)
	out, err := h.Result(env.Ctx)
	require.NoError(t, err)
	require.Equal(t, 42, out)
	env.RequireAttempts(h.ID(), 3)
	env.RequireDeadLetters(h.ID(), 0)
	// Test time, which goes on with real time besides the skips: on a
	// loaded machine a second of it passed between the failure and the
	// retry's timer, so the skips alone came to less than two hours.
	require.GreaterOrEqual(t, env.Clock.Now().Sub(from), 2*time.Hour)
	t.Logf("retried twice after 1h each in %s", time.Since(started))
}

var kitCharge = sdk.Durable("stenttest_kit_charge", func(ctx context.Context, cents int) (string, error) {
	return "", errors.New("the real payment provider is not reachable from tests")
})

var kitCheckout = sdk.Durable("stenttest_kit_checkout", func(ctx context.Context, cents int) (string, error) {
	receipt, err := kitCharge.Call(ctx, cents)
	if err != nil {
		return "", err
	}
	if err := sdk.Sleep(ctx, 2*time.Hour); err != nil { // a cooling-off period
		return "", err
	}
	return "shipped with " + receipt, nil
})

// sample:begin stub
// A stub replaces a step's body for one test; the workflow around it runs
// for real, with its child call and its sleep.
func TestStubReplacesAStep(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	stenttest.Stub(env, kitCharge, func(ctx context.Context, cents int) (string, error) {
		return "receipt-test", nil
	})
	env.AutoSkip()
	out, err := kitCheckout.Call(env.Ctx, 500)
	require.NoError(t, err)
	require.Equal(t, "shipped with receipt-test", out)
}

// sample:end

// Without the stub the same workflow fails, and its failure is a dead letter.
func TestDeadLetterWithoutTheStub(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.AutoSkip()
	h, err := kitCheckout.Start(env.Ctx, 500)
	require.NoError(t, err)
	_, err = h.Result(env.Ctx)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	env.WaitForStatus(h.ID(), sdk.StatusFailed)
	require.NotEmpty(t, env.DeadLetters(""))
}

var kitLong = sdk.Durable("stenttest_kit_long", func(ctx context.Context, _ struct{}) (string, error) {
	if err := sdk.Sleep(ctx, 48*time.Hour); err != nil {
		return "", err
	}
	return "too late", nil
})

// A deadline (WithMaxDuration) is on the test clock: the execution times out
// when the clock passes it, before its sleep ends.
func TestDeadlineOnTheTestClock(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	env.AutoSkip()
	h, err := kitLong.Start(env.Ctx, struct{}{}, sdk.WithMaxDuration(24*time.Hour))
	require.NoError(t, err)
	_, err = h.Result(env.Ctx)
	require.ErrorIs(t, err, sdk.ErrTimeout)
	env.RequireStatus(h.ID(), sdk.StatusTimedOut)
}

// A delayed start (WithDelay) is on the test clock too.
func TestDelayedStart(t *testing.T) {
	t.Parallel()
	env := stenttest.New(t)
	from := env.Clock.Now()
	h, err := kitSleepDay.Start(env.Ctx, struct{}{}, sdk.WithDelay(3*time.Hour))
	require.NoError(t, err)
	info := env.RequireStatus(h.ID(), sdk.StatusPending)
	require.False(t, info.RunAt.IsZero())
	env.AutoSkip()
	env.WaitForStatus(h.ID(), sdk.StatusCompleted)
	require.GreaterOrEqual(t, env.Clock.Now().Sub(from), 27*time.Hour)
}
