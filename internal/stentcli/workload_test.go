package stentcli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// The test workload, served in the test process while the stent binary
// reads and drives the same database: a workflow with children, a retry
// and a signal wait, and a function that fails for good.
var (
	flakySeen sync.Map // execution IDs of cli_flaky that failed once

	cliStep = sdk.Durable("cli_step", func(_ context.Context, n int) (int, error) { return n * 2, nil })

	// cliFlaky fails the first attempt of each execution, then works.
	cliFlaky = sdk.Durable("cli_flaky", func(ctx context.Context, s string) (string, error) {
		if _, seen := flakySeen.LoadOrStore(sdk.ExecutionID(ctx), true); !seen {
			return "", errors.New("flaky: first attempt fails")
		}
		return "ok " + s, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 50 * time.Millisecond}))

	cliFlow = sdk.Durable("cli_flow", func(ctx context.Context, n int) (string, error) {
		a, err := cliStep.Start(ctx, n)
		if err != nil {
			return "", err
		}
		b, err := cliFlaky.Call(ctx, "b")
		if err != nil {
			return "", err
		}
		av, err := a.Result(ctx)
		if err != nil {
			return "", err
		}
		approval, err := sdk.WaitForSignal[string](ctx, "approve")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %s", av, b, approval), nil
	})

	cliBroken = sdk.Durable("cli_broken", func(_ context.Context, s string) (string, error) {
		return "", sdk.NonRetryable(fmt.Errorf("broken input %q", s))
	})
)

// workload is the test's serving node with the ids of what it started.
type workload struct {
	ex        *sdk.Executor
	flow      string // waits for signal "approve"
	broken    string // dead-lettered
	completed string // a cli_step that completed
}

// startWorkload serves the test functions on b as node nodeID and starts
// one of each; it returns once the flow waits for its signal and the
// broken one is dead-lettered.
func startWorkload(t *testing.T, b persistence.Backend, nodeID string) *workload {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ex, err := sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithNodeID(nodeID), sdk.WithLeaseDuration(2*time.Second),
		sdk.WithPollInterval(50*time.Millisecond), sdk.WithLogger(slog.New(slog.DiscardHandler)), sdk.WithWorkerTags("ssd"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ex.Close()) })
	ctx = sdk.WithExecutor(ctx, ex)
	w := &workload{ex: ex}
	h, err := cliFlow.Start(ctx, 21)
	require.NoError(t, err)
	w.flow = h.ID()
	hb, err := cliBroken.Start(ctx, "x")
	require.NoError(t, err)
	w.broken = hb.ID()
	hs, err := cliStep.Start(ctx, 1)
	require.NoError(t, err)
	w.completed = hs.ID()
	_, err = hs.Result(ctx)
	require.NoError(t, err)
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		info, err := ex.Execution(ctx, w.flow)
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusWaiting || info.WaitingOn == "" {
			return fmt.Errorf("flow is %s (waiting on %q)", info.Status, info.WaitingOn)
		}
		d, err := ex.Execution(ctx, w.broken)
		if err != nil {
			return err
		}
		if d.Status != sdk.StatusFailed {
			return fmt.Errorf("broken is %s", d.Status)
		}
		return nil
	})
	return w
}
