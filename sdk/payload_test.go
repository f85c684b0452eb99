package sdk_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// Payload limits: an input over WithMaxPayload is refused before anything
// is written, at a root start and at a child call; an output over it fails
// the execution at once, not stored.

var (
	// oversizedEchoRuns counts runs of echo with an input of
	// payloadLimit or more: none should run. (A count of all its runs
	// is off when TestStartDeadlineSaysWhatItLeaves, run in parallel,
	// runs echo in between.)
	oversizedEchoRuns = atomic.Int32{}
	echo              = sdk.Durable("test_payload_echo", func(ctx context.Context, s string) (string, error) {
		if len(s) >= payloadLimit {
			oversizedEchoRuns.Add(1)
		}
		return s, nil
	})
	inflate = sdk.Durable("test_payload_inflate", func(ctx context.Context, n int) (string, error) {
		return strings.Repeat("x", n), nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond}))
	bigChild = sdk.Durable("test_payload_big_child", func(ctx context.Context, n int) (string, error) {
		return echo.Call(ctx, strings.Repeat("y", n))
	})
)

// payloadLimit is TestPayloadLimit's WithMaxPayload.
const payloadLimit = 1 << 10

func TestPayloadLimit(t *testing.T) {
	t.Parallel()
	const limit = payloadLimit
	ctx, ex := worker(t, sdk.WithMaxPayload(limit))

	_, err := echo.Start(ctx, strings.Repeat("z", limit))
	require.ErrorIs(t, err, sdk.ErrPayloadTooLarge)
	require.Contains(t, err.Error(), "test_payload_echo")
	require.Contains(t, err.Error(), "WithMaxPayload")
	rows, err := ex.List(ctx, sdk.ListFilter{Function: echo.Name()})
	require.NoError(t, err)
	require.Empty(t, rows, "nothing was written")

	got, err := echo.Call(ctx, "small")
	require.NoError(t, err)
	require.Equal(t, "small", got)

	_, err = inflate.Call(ctx, 2*limit)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Attempts, "an output over the limit fails at once")
	require.Contains(t, ee.Message, "output of \"test_payload_inflate\"")
	info, err := ex.Execution(ctx, ee.ExecutionID)
	require.NoError(t, err)
	require.Equal(t, sdk.StatusFailed, info.Status)
	require.Empty(t, info.Output)

	_, err = bigChild.Call(ctx, 2*limit)
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.Attempts)
	require.Contains(t, ee.Message, "input of \"test_payload_echo\"")
	require.Zero(t, oversizedEchoRuns.Load(), "the oversized child never ran")
}

func TestNegativeMaxPayloadIsRefused(t *testing.T) {
	t.Parallel()
	_, open := testDatabase(t)
	b := open(t)
	defer b.Close()
	ex, err := sdk.New(b, sdk.WithMaxPayload(-1))
	require.Error(t, err)
	require.Nil(t, ex)
	require.Contains(t, err.Error(), "WithMaxPayload(-1)")
}

// A caller whose deadline passes while its insert waits (the database
// locked) gets an error that says the execution may be recorded all the
// same and names it; the insert is not cut off half way.
func TestStartDeadlineSaysWhatItLeaves(t *testing.T) {
	t.Parallel()
	env, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	release := holdWriteLock(t, env)
	dctx, cancel := context.WithTimeout(sdk.WithExecutor(ctx, ex), 200*time.Millisecond)
	_, err = echo.Start(dctx, "late")
	cancel()
	release()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Contains(t, err.Error(), "may be recorded and run all the same")
	i := strings.Index(err.Error(), "look up execution ")
	require.Positive(t, i)
	id := strings.Fields(err.Error()[i+len("look up execution "):])[0]
	// It was: the insert went on once the lock was released, and it ran.
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, id)
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusCompleted {
			return errors.New("not completed yet: " + string(info.Status))
		}
		return nil
	})
}

func TestScheduleInputOverTheLimitIsRefused(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t, sdk.WithMaxPayload(64))
	_, err := ex.CreateSchedule(ctx, "too-big", "@every 1h", echo.Name(), strings.Repeat("s", 100))
	require.ErrorIs(t, err, sdk.ErrPayloadTooLarge)
	list, err := ex.ListSchedules(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "nothing was written")
}
