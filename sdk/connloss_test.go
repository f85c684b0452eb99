package sdk_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// On PostgreSQL, the node's connections are terminated (pg_terminate_backend)
// three times while 100 workflows run: all complete, none twice, and no
// step that completed runs again.

var (
	lossMu          sync.Mutex
	lossStepRuns    = map[string]int{} // "x/step" → runs
	lossCompletions = map[int]int{}    // x → bodies that reached their end
	lossStep        = sdk.Durable("test_loss_step", func(ctx context.Context, key string) (int, error) {
		lossMu.Lock()
		lossStepRuns[key]++
		lossMu.Unlock()
		return len(key), nil
	})
	lossFlow = sdk.Durable("test_loss_flow", func(ctx context.Context, x int) (int, error) {
		sum := 0
		for step := 0; step < 3; step++ {
			v, err := lossStep.Call(ctx, fmt.Sprintf("%d/%d", x, step))
			if err != nil {
				return 0, err
			}
			sum += v
			if err := sdk.Sleep(ctx, 20*time.Millisecond); err != nil {
				return 0, err
			}
		}
		lossMu.Lock()
		lossCompletions[x]++
		lossMu.Unlock()
		return sum, nil
	})
)

func TestConnectionLossMidRun(t *testing.T) {
	if !onPostgres() {
		t.Skip("PostgreSQL only (runs inside TestSuiteOnPostgres)")
	}
	t.Parallel()
	schema := newSchema(t)
	u, err := url.Parse(os.Getenv(envPostgres))
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	ctx := context.Background()
	b, err := postgres.Open(ctx, u.String(), postgres.WithSchema(schema))
	require.NoError(t, err)
	ex, err := sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithLeaseDuration(5*time.Second),
		sdk.WithPollInterval(50*time.Millisecond), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	wctx := sdk.WithExecutor(ctx, ex)

	const n = 100
	handles := make([]*sdk.Handle[int], n)
	for x := range n {
		handles[x], err = lossFlow.Start(wctx, x)
		require.NoError(t, err)
	}

	admin, err := pgx.Connect(ctx, os.Getenv(envPostgres))
	require.NoError(t, err)
	defer admin.Close(ctx)
	killed := 0
	for range 3 {
		time.Sleep(60 * time.Millisecond)
		var k int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, schema).Scan(&k))
		killed += k
	}
	require.Positive(t, killed, "connections were terminated")

	rctx, cancel := context.WithTimeout(wctx, 60*time.Second)
	defer cancel()
	for x, h := range handles {
		got, err := h.Result(rctx)
		require.NoError(t, err, "workflow %d", x)
		want := 0
		for step := range 3 {
			want += len(fmt.Sprintf("%d/%d", x, step))
		}
		require.Equal(t, want, got, "workflow %d", x)
	}
	lossMu.Lock()
	defer lossMu.Unlock()
	rows, err := ex.List(ctx, sdk.ListFilter{Function: "test_loss_flow", Status: sdk.StatusCompleted, Limit: 1000})
	require.NoError(t, err)
	require.Len(t, rows, n, "each workflow completed, once")
	again, endedAgain := 0, 0
	for x := range n {
		// A body's plain code after its last durable operation runs again
		// only if its activation lost its lease before recording the end.
		require.GreaterOrEqual(t, lossCompletions[x], 1, "workflow %d reached its end", x)
		endedAgain += lossCompletions[x] - 1
		for step := range 3 {
			runs := lossStepRuns[fmt.Sprintf("%d/%d", x, step)]
			require.GreaterOrEqual(t, runs, 1)
			again += runs - 1
		}
	}
	// A step in flight when its connection died may run again (at least
	// once); one that completed never does, and none runs a third time.
	require.LessOrEqual(t, again, n*3/10, "steps that ran again")
	require.LessOrEqual(t, endedAgain, n/10)
	t.Logf("terminated %d connections; %d step runs repeated; %d bodies reached their end again", killed, again, endedAgain)
}
