package sdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// One corrupt row never blinds the rest: an execution and a dead letter
// whose stored errors do not decode are listed with the others, marked,
// and the dead letter can be replayed or discarded.

var doomed = sdk.Durable("test_corrupt_doomed", func(ctx context.Context, x int) (int, error) {
	if x < 0 {
		return 0, sdk.NonRetryable(errors.New("doomed"))
	}
	return x, nil
})

func TestCorruptRowsAreListedAndMended(t *testing.T) {
	t.Parallel()
	env, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	wctx := sdk.WithExecutor(ctx, ex)

	ids := map[string]string{}
	for _, name := range []string{"bad", "good"} {
		h, err := doomed.Start(wctx, -1)
		require.NoError(t, err)
		_, err = h.Result(wctx)
		require.Error(t, err)
		ids[name] = h.ID()
	}
	rawExec(t, env, `UPDATE $schema.stent_execution SET error = '{"message": 5}' WHERE id = '`+ids["bad"]+`'`)
	rawExec(t, env, `UPDATE $schema.stent_dead_letter SET error = '{"message": 5}' WHERE execution_id = '`+ids["bad"]+`'`)

	listed, err := ex.List(ctx, sdk.ListFilter{Function: doomed.Name()})
	require.NoError(t, err)
	require.Len(t, listed, 2)
	for _, info := range listed {
		if info.ID == ids["bad"] {
			require.Contains(t, info.Error, "does not decode")
			require.Contains(t, info.Error, ids["bad"])
		} else {
			require.Contains(t, info.Error, "doomed")
		}
	}

	letters, err := ex.DeadLetters(ctx)
	require.NoError(t, err)
	byExec := map[string]sdk.DeadLetter{}
	for _, d := range letters {
		byExec[d.ExecutionID] = d
	}
	require.Len(t, byExec, 2)
	bad := byExec[ids["bad"]]
	require.Contains(t, bad.Error, "does not decode")
	require.Contains(t, bad.Error, bad.ID, "the mark names the row")
	require.Contains(t, byExec[ids["good"]].Error, "doomed")

	require.NoError(t, ex.DiscardDeadLetter(ctx, byExec[ids["good"]].ID))
	require.NoError(t, ex.ReplayDeadLetter(ctx, bad.ID))
	// The replay runs it again: it fails again, with a sound error.
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, ids["bad"])
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusFailed || info.Attempts != 1 || info.Error == "" || !strings.Contains(info.Error, "doomed") {
			return errors.New("not failed again yet: " + string(info.Status) + " " + info.Error)
		}
		return nil
	})
}
