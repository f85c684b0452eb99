package sdk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// A parent whose journal names a child row that does not exist fails with
// a clear error, not retried, instead of waiting forever.

var (
	danglingChild  = sdk.Durable("test_dangling_child", func(ctx context.Context, x int) (int, error) { return x, nil })
	danglingParent = sdk.Durable("test_dangling_parent", func(ctx context.Context, x int) (int, error) {
		return danglingChild.Call(ctx, x, sdk.WithDelay(time.Hour)) // a row, not run for an hour
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 10 * time.Millisecond}))
)

func TestDanglingChildFailsItsParent(t *testing.T) {
	t.Parallel()
	env, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithPollInterval(20*time.Millisecond),
		sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	wctx := sdk.WithExecutor(ctx, ex)
	h, err := danglingParent.Start(wctx, 5)
	require.NoError(t, err)
	var childID string
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		rows, err := ex.List(ctx, sdk.ListFilter{ParentID: h.ID()})
		if err != nil {
			return err
		}
		if len(rows) != 1 {
			return errors.New("the child is not written yet")
		}
		childID = rows[0].ID
		return nil
	})
	rawExec(t, env, `DELETE FROM $schema.stent_execution WHERE id = '`+childID+`'`)

	rctx, cancel := context.WithTimeout(wctx, 20*time.Second)
	defer cancel()
	_, err = h.Result(rctx)
	var ee *sdk.ExecutionError
	require.ErrorAs(t, err, &ee, "the parent fails instead of hanging")
	require.Contains(t, ee.Message, "the child "+childID+" at journal position 0 does not exist")
	require.Equal(t, 1, ee.Attempts)
}
