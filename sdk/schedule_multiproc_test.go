package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// TestScheduleEachTickOnceAcrossProcesses: a schedule ticking every second
// for 20 s (6 s with -short), fired by three node processes, one of them
// killed with SIGKILL halfway, starts every tick exactly once.
func TestScheduleEachTickOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	run := 20 * time.Second
	if testing.Short() {
		run = 6 * time.Second
	}
	dbEnv, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	const name = "every-second-3-nodes"
	_, err = ex.CreateSchedule(ctx, name, sdk.Every(time.Second), tickProbe.Name(), 1, sdk.WithOverlap(sdk.OverlapAllowAll))
	require.NoError(t, err)

	var nodes []*exec.Cmd
	for range 3 {
		cmd := helperCmd(t, dbEnv)
		require.NoError(t, cmd.Start())
		killAtEnd(t, cmd)
		nodes = append(nodes, cmd)
	}
	start := time.Now()
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if started, _ := ticksOf(t, ctx, ex, name); len(started) == 0 {
			return errors.New("no tick yet")
		}
		return nil
	})
	waitUntil := func(d time.Duration) {
		testutil.CheckFor(t, d+10*time.Second, 50*time.Millisecond, func() error {
			if time.Since(start) < d {
				return fmt.Errorf("%s of %s", time.Since(start).Round(time.Second), d)
			}
			return nil
		})
	}
	waitUntil(run / 2)
	require.NoError(t, nodes[0].Process.Signal(syscall.SIGKILL))
	require.Error(t, nodes[0].Wait(), "killed")
	waitUntil(run)
	_, err = ex.PauseSchedule(ctx, name, "test over")
	require.NoError(t, err)

	started, skipped := ticksOf(t, ctx, ex, name)
	require.Empty(t, skipped, "no tick skipped")
	require.GreaterOrEqual(t, len(started), int(run/time.Second)-3, "a tick every second")
	checkTicksOnce(t, ctx, ex, started, time.Second)
	t.Logf("%d ticks, each started once, over %s with 3 nodes, one killed", len(started), run)
}
