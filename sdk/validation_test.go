package sdk_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// Bad options are refused with an error naming them, instead of being
// read as something else.

func TestBadFunctionOptionsPanicAtRegistration(t *testing.T) {
	t.Parallel()
	body := func(ctx context.Context, s string) (string, error) { return s, nil }
	for name, opt := range map[string]sdk.Option{
		"test_bad_concurrent_zero":     sdk.WithMaxConcurrent(0),
		"test_bad_concurrent_negative": sdk.WithMaxConcurrent(-1),
		"test_bad_attempts":            sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: -1}),
		"test_bad_delay":               sdk.WithRetry(sdk.RetryPolicy{InitialDelay: -time.Second}),
	} {
		require.PanicsWithError(t, panicMessage(t, name, opt, body), func() { sdk.Durable(name, body, opt) }, name)
	}
}

// panicMessage returns the error Durable panics with for opt, and checks
// that it names the function.
func panicMessage(t *testing.T, name string, opt sdk.Option, body func(context.Context, string) (string, error)) string {
	t.Helper()
	var msg string
	func() {
		defer func() {
			r := recover()
			err, ok := r.(error)
			require.True(t, ok, "%s: Durable must panic with an error, got %v", name, r)
			msg = err.Error()
		}()
		sdk.Durable(name, body, opt)
	}()
	require.Contains(t, msg, name)
	return msg
}

func TestBadExecutorOptionsAreRefused(t *testing.T) {
	t.Parallel()
	b, err := sqlite.Open(":memory:")
	require.NoError(t, err)
	defer b.Close()
	for _, c := range []struct {
		opt  sdk.ExecutorOption
		want string
	}{
		{sdk.WithCloseTimeout(-time.Second), "WithCloseTimeout(-1s)"},
		{sdk.WithSignalLimits(-1, 0), "WithSignalLimits(-1, 0)"},
		{sdk.WithSignalLimits(0, -1), "WithSignalLimits(0, -1)"},
	} {
		ex, err := sdk.New(b, c.opt)
		require.Error(t, err, c.want)
		require.Nil(t, ex)
		require.Contains(t, err.Error(), c.want)
	}
}

var (
	negativeWaitRuns atomic.Int32
	negativeWait     = sdk.Durable("test_negative_signal_timeout", func(ctx context.Context, x int) (int, error) {
		negativeWaitRuns.Add(1)
		_, _, err := sdk.WaitForSignalTimeout[int](ctx, "never", -time.Second)
		return 0, err
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond}))
)

func TestNegativeSignalTimeoutFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	ctx, _ := worker(t)
	_, err := negativeWait.Call(ctx, 1)
	var ee *sdk.ExecutionError
	require.True(t, errors.As(err, &ee), "got %v", err)
	require.Equal(t, 1, ee.Attempts, "a negative timeout is not retried")
	require.Contains(t, ee.Message, "must be positive")
	require.EqualValues(t, 1, negativeWaitRuns.Load())
}
