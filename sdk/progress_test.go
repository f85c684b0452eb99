package sdk_test

import (
	"context"
	"encoding/json"
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
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// Progress and caching across processes: helper processes of this test
// binary (progressHelper) on the test's database.

const (
	envProgressHelper = "STENT_PROGRESS_HELPER" // "cache": call cachedAcross once and print; "serve": serve progressFlow
	envProgressDir    = "STENT_PROGRESS_DIR"    // where the bodies write their ledgers
	envProgressStart  = "STENT_PROGRESS_START"  // "1": start progressFlow
	envProgressBlock  = "STENT_PROGRESS_BLOCK"  // the step that blocks (and is killed in)
)

// appendLine appends line to file name of the progress directory.
func appendLine(name, line string) error {
	f, err := os.OpenFile(filepath.Join(os.Getenv(envProgressDir), name), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, line)
	return errorsJoin(err, f.Close())
}

var (
	cachedAcross = sdk.Durable("test_cached_across", func(ctx context.Context, in string) (string, error) {
		return fmt.Sprintf("%s by %d", in, os.Getpid()), appendLine("cache-runs", fmt.Sprint(os.Getpid()))
	}, sdk.WithCache(time.Hour))
	progressStep = sdk.Durable("test_progress_step", func(ctx context.Context, n int) (int, error) {
		if err := sdk.Counter(ctx, "items").Add(1); err != nil {
			return 0, err
		}
		if err := sdk.Counter(ctx, "weight").Add(float64(n)); err != nil {
			return 0, err
		}
		if err := appendLine("steps", fmt.Sprintf("%d %d", n, os.Getpid())); err != nil {
			return 0, err
		}
		if os.Getenv(envProgressBlock) == fmt.Sprint(n) {
			if err := appendLine("blocked", ""); err != nil {
				return 0, err
			}
			time.Sleep(time.Hour) // killed here
		}
		return n, nil
	})
	progressFlow = sdk.Durable("test_progress_flow", func(ctx context.Context, steps int) (int, error) {
		sum := 0
		for i := 1; i <= steps; i++ {
			v, err := progressStep.Call(ctx, i)
			if err != nil {
				return 0, err
			}
			sum += v
			if err := sdk.Counter(ctx, "loops").Add(1); err != nil {
				return 0, err
			}
			if err := sdk.SetState(ctx, "last_step", i); err != nil {
				return 0, err
			}
		}
		return sum, sdk.SetState(ctx, "stage", "done")
	})
)

// progressHelper is the helper process's main.
func progressHelper() int {
	ctx := context.Background()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	b, err := openHelperBackend(ctx)
	if err != nil {
		return fail(err)
	}
	ex, err := sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithLeaseDuration(time.Second), sdk.WithPollInterval(50*time.Millisecond))
	if err != nil {
		return fail(err)
	}
	switch os.Getenv(envProgressHelper) {
	case "cache":
		h, err := cachedAcross.Start(ctx, "input")
		if err != nil {
			return fail(err)
		}
		out, err := h.Result(ctx)
		if err != nil {
			return fail(err)
		}
		info, err := ex.Execution(ctx, h.ID())
		if err != nil {
			return fail(err)
		}
		fmt.Printf("%s|%s\n", out, info.CachedFrom)
		return errExit(ex.Close())
	case "serve":
		if os.Getenv(envProgressStart) == "1" {
			if _, err := progressFlow.Start(ctx, 5, sdk.WithIdempotencyKey("progress-test")); err != nil {
				return fail(err)
			}
		}
		select {} // serve until killed
	}
	return fail(fmt.Errorf("unknown %s", envProgressHelper))
}

func errExit(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func progressCmd(t *testing.T, dir string, dbEnv []string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(append(os.Environ(), envProgressDir+"="+dir), dbEnv...), extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Fields(strings.TrimSpace(strings.ReplaceAll(string(b), "\n", " \n")))
}

// A result cached by one process is reused by another.
func TestCacheAcrossProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbEnv, _ := testDatabase(t)
	call := func() (out, cachedFrom string) {
		t.Helper()
		b, err := progressCmd(t, dir, dbEnv, envProgressHelper+"=cache").Output()
		require.NoError(t, err)
		out, cachedFrom, ok := strings.Cut(strings.TrimSpace(string(b)), "|")
		require.True(t, ok, "%s", b)
		return out, cachedFrom
	}
	first, from := call()
	require.Empty(t, from, "the first process ran the body")
	second, from := call()
	require.Equal(t, first, second, "the second process got the first one's result")
	require.NotEmpty(t, from, "and its execution is marked as cached")
	runs := readLines(t, filepath.Join(dir, "cache-runs"))
	require.Len(t, runs, 1, "the body ran once")
	require.Equal(t, "input by "+runs[0], first)
}

// Counters and state survive a kill -9 in the middle of a workflow, and the
// replay that follows adds nothing twice.
func TestCountersSurviveKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbEnv, open := testDatabase(t)
	start := func(extra ...string) *exec.Cmd {
		cmd := progressCmd(t, dir, dbEnv, append([]string{envProgressHelper + "=serve"}, extra...)...)
		require.NoError(t, cmd.Start())
		killAtEnd(t, cmd)
		return cmd
	}
	first := start(envProgressBlock+"=3", envProgressStart+"=1")
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		_, err := os.Stat(filepath.Join(dir, "blocked"))
		return err
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait(), "killed")
	start()

	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	var root sdk.ExecutionInfo
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		roots, err := ex.List(ctx, sdk.ListFilter{Function: "test_progress_flow"})
		if err != nil {
			return err
		}
		if len(roots) != 1 || roots[0].Status != sdk.StatusCompleted {
			return fmt.Errorf("roots: %v", roots)
		}
		root, err = ex.Execution(ctx, roots[0].ID)
		return err
	})
	require.JSONEq(t, "15", string(root.Output))
	require.Equal(t, map[string]float64{"items": 5, "weight": 15, "loops": 5}, root.Counters,
		"step 3 ran twice (in flight at the kill) and steps 1-2 and the loop replayed, but every addition counts once")
	require.Equal(t, map[string]json.RawMessage{"last_step": json.RawMessage("5"), "stage": json.RawMessage(`"done"`)}, root.State)
	steps := readLines(t, filepath.Join(dir, "steps"))
	require.Len(t, steps, 12, "6 step runs (step 3 twice), each a step and a pid: %v", steps)

	children, err := ex.List(ctx, sdk.ListFilter{ParentID: root.ID})
	require.NoError(t, err)
	require.NotEmpty(t, children)
	child, err := ex.Execution(ctx, children[0].ID)
	require.NoError(t, err)
	require.Equal(t, root.Counters, child.Counters, "a child shows its tree's counters")
}
