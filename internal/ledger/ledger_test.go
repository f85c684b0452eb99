package ledger

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestLedger(t *testing.T) {
	// Not parallel: Register sets the process's ledger.
	path := filepath.Join(t.TempDir(), "stent.db")
	ctx := context.Background()
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	go func() { _ = ex.Serve(ctx) }()
	require.NoError(t, ex.WaitUntilReady(ctx))
	defer func() { require.NoError(t, ex.Close()) }()

	l, err := Open(path, WithNode("test-node"))
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	require.NoError(t, Register(l))
	defer func() { require.NoError(t, Register(nil)) }()

	cctx := sdk.WithExecutor(ctx, ex)
	var ids []string
	for range 3 {
		h, err := Workflow.Start(cctx, WorkflowInput{Steps: 4, Pause: time.Millisecond})
		require.NoError(t, err)
		sum, err := h.Result(cctx)
		require.NoError(t, err)
		require.Equal(t, 10, sum, "1+2+3+4")
		ids = append(ids, h.ID())
	}
	r, err := l.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, Report{Completed: 3, StepRuns: 12}, r)
	runs, err := l.Runs(ctx)
	require.NoError(t, err)
	require.Len(t, runs, 15, "3 completions and 12 step runs")
	for _, run := range runs {
		require.Equal(t, "test-node", run.Node)
		require.Equal(t, os.Getpid(), run.PID)
		require.WithinDuration(t, time.Now(), run.At, time.Minute)
		require.GreaterOrEqual(t, run.Step, -1)
	}
	require.Equal(t, -1, runs[0].Step, "a workflow's completion comes first")

	// Duplicates stay visible: a repeated step and a repeated completion.
	require.NoError(t, l.exec(ctx, "run", ids[0], 2))
	require.NoError(t, l.exec(ctx, "done", ids[1], 0))
	require.NoError(t, l.exec(ctx, "run", "not-completed", 0)) // not counted
	r, err = l.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, r.Completed)
	require.Equal(t, 1, r.CompletedTwice)
	require.Equal(t, 13, r.StepRuns)
	require.Equal(t, 1, r.RepeatedSteps)
	require.Equal(t, 1, r.ExtraStepRuns)
	require.Len(t, r.Repeats, 2)
	for _, rep := range r.Repeats {
		require.Len(t, rep.PIDs, 2)
	}
}

func TestWithoutRegister(t *testing.T) {
	// Parallel top-level tests run after TestLedger has unregistered its
	// ledger. With no executor, Call runs the body directly.
	t.Parallel()
	_, err := Step.Call(context.Background(), StepInput{WorkflowID: "w", Step: 0})
	require.ErrorIs(t, err, errNotRegistered)
}

func TestIsPostgres(t *testing.T) {
	t.Parallel()
	require.True(t, IsPostgres("postgres://u@h/db"))
	require.True(t, IsPostgres("postgresql://u@h/db"))
	require.False(t, IsPostgres("/var/lib/stent.db"))
	require.False(t, IsPostgres("postgres.db"))
}
