package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// The crash test runs this test binary as a child process (crashHelper) that
// serves a five-step workflow on a SQLite file. Each step appends a line to a
// ledger file when it runs. The first process blocks inside step 3 and is
// killed with SIGKILL; a second process on the same file must finish the
// workflow, running step 3 again (it was in flight) and no completed step.

const (
	envCrashHelper = "STENT_CRASH_HELPER" // "1" in the helper process
	envCrashLedger = "STENT_CRASH_LEDGER"
	envCrashBlock  = "STENT_CRASH_BLOCK" // step number to block in
	envCrashStart  = "STENT_CRASH_START" // "1": start the workflow
)

var (
	crashStep = sdk.Durable("test_crash_step", func(ctx context.Context, n int) (int, error) {
		f, err := os.OpenFile(os.Getenv(envCrashLedger), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, err
		}
		_, err = fmt.Fprintf(f, "step %d pid %d\n", n, os.Getpid())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, err
		}
		if os.Getenv(envCrashBlock) == fmt.Sprint(n) {
			if err := os.WriteFile(os.Getenv(envCrashLedger)+".blocked", nil, 0o600); err != nil {
				return 0, err
			}
			time.Sleep(time.Hour) // killed here
		}
		return n * n, nil
	})
	crashFlow = sdk.Durable("test_crash_flow", func(ctx context.Context, steps int) (int, error) {
		sum := 0
		for i := 1; i <= steps; i++ {
			v, err := crashStep.Call(ctx, i)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
)

// crashHelper is the child process's main.
func crashHelper() int {
	ctx := context.Background()
	b, err := openHelperBackend(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts := []sdk.ExecutorOption{sdk.WithLeaseDuration(time.Second), sdk.WithPollInterval(50 * time.Millisecond)}
	if os.Getenv(envKeyedStarts) == "" {
		opts = append(opts, sdk.Serve())
	}
	_, err = sdk.Bootstrap(ctx, b, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv(envCrashStart) == "1" {
		if _, err := crashFlow.Start(ctx, 5, sdk.WithIdempotencyKey("crash-test")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if key := os.Getenv(envKeyedStarts); key != "" {
		return keyedStarts(ctx, key)
	}
	if id := os.Getenv(envWaitSignal); id != "" {
		if _, err := signalProbe.Start(ctx, id, sdk.WithIdempotencyKey(id)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	select {} // serve until killed
}

func TestCrashRecoveryRunsCompletedStepsOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbEnv, open := testDatabase(t)
	ledger := filepath.Join(dir, "ledger.txt")
	start := func(extra ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envCrashHelper+"=1", envCrashLedger+"="+ledger)
		cmd.Env = append(cmd.Env, dbEnv...)
		cmd.Env = append(cmd.Env, extra...)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		killAtEnd(t, cmd)
		return cmd
	}

	first := start(envCrashBlock+"=3", envCrashStart+"=1")
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		_, err := os.Stat(ledger + ".blocked")
		return err
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait(), "killed")

	second := start()
	defer func() {
		_ = second.Process.Signal(syscall.SIGKILL)
		_ = second.Wait()
	}()

	b := open(t)
	defer func() { require.NoError(t, b.Close()) }()
	ctx := context.Background()
	require.NoError(t, b.Init(ctx))
	var root *persistence.Execution
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		roots, err := b.ListExecutions(ctx, persistence.ListFilter{Function: "test_crash_flow"})
		if err != nil {
			return err
		}
		if len(roots) != 1 {
			return fmt.Errorf("%d roots", len(roots))
		}
		if roots[0].Status != persistence.StatusCompleted {
			return fmt.Errorf("root is %s", roots[0].Status)
		}
		root = roots[0]
		return nil
	})
	require.JSONEq(t, "55", string(root.Output), "1+4+9+16+25")

	runs := map[int][]string{}
	f, err := os.Open(ledger)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var step, pid int
		_, err := fmt.Sscanf(sc.Text(), "step %d pid %d", &step, &pid)
		require.NoError(t, err)
		runs[step] = append(runs[step], fmt.Sprint(pid))
	}
	require.NoError(t, sc.Err())
	for step := 1; step <= 5; step++ {
		want := 1
		if step == 3 {
			want = 2 // in flight at the kill: runs again (at least once)
		}
		require.Len(t, runs[step], want, "step %d ran in processes %s", step, strings.Join(runs[step], ","))
	}
	require.Equal(t, fmt.Sprint(first.Process.Pid), runs[1][0], "steps 1-2 ran before the kill")
	require.Equal(t, fmt.Sprint(second.Process.Pid), runs[4][0], "steps 4-5 ran after it")
}
