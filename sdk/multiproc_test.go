package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// Coordination across real processes: helper processes of this test binary
// (see crashHelper) on the same database as the test.

const (
	envKeyedStarts = "STENT_HELPER_KEYED"  // start keyedProbe 5 times with this key, print the IDs, exit
	envWaitSignal  = "STENT_HELPER_SIGNAL" // start signalProbe under this key and serve
)

var (
	keyedProbe  = sdk.Durable("test_keyed_probe", func(ctx context.Context, in string) (string, error) { return in, nil })
	signalProbe = sdk.Durable("test_signal_probe", func(ctx context.Context, key string) (string, error) {
		v, err := sdk.WaitForSignal[string](ctx, "wake")
		return key + ":" + v, err
	})
	ledgerMu     sync.Mutex
	limitedSteps = sdk.Durable("test_limited_steps", func(ctx context.Context, x int) (int, error) {
		ledger := os.Getenv(envCrashLedger)
		write := func(what string) error {
			ledgerMu.Lock()
			defer ledgerMu.Unlock()
			f, err := os.OpenFile(ledger, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(f, "%s %d %d %d\n", what, x, os.Getpid(), time.Now().UnixNano())
			return errorsJoin(err, f.Close())
		}
		if err := write("start"); err != nil {
			return 0, err
		}
		time.Sleep(10 * time.Millisecond)
		return x, write("end")
	}, sdk.WithMaxConcurrent(5))
)

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func keyedStarts(ctx context.Context, key string) int {
	var wg sync.WaitGroup
	ids := make([]string, 5)
	errs := make([]error, 5)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := keyedProbe.Start(ctx, "same input", sdk.WithIdempotencyKey(key))
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = h.ID()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	fmt.Println(strings.Join(ids, "\n"))
	return 0
}

func helperCmd(t *testing.T, dbEnv []string, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(append(os.Environ(), envCrashHelper+"=1"), dbEnv...), extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

func TestIdempotencyKeyAcrossProcesses(t *testing.T) {
	t.Parallel()
	dbEnv, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	key := fmt.Sprintf("key-%d", time.Now().UnixNano())
	var other []byte
	done := make(chan error, 1)
	go func() {
		var err error
		other, err = helperCmd(t, dbEnv, envKeyedStarts+"="+key).Output()
		done <- err
	}()
	cctx := sdk.WithExecutor(ctx, ex)
	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := keyedProbe.Start(cctx, "same input", sdk.WithIdempotencyKey(key))
			if err == nil {
				ids[i] = h.ID()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, <-done)
	all := append(ids, strings.Fields(string(other))...)
	require.Len(t, all, 10)
	for _, id := range all {
		require.Equal(t, all[0], id, "10 starts with one key from two processes make one execution")
	}
	rows, err := ex.List(ctx, sdk.ListFilter{Function: "test_keyed_probe"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
}

func TestSignalSentWhileTheProcessIsDown(t *testing.T) {
	t.Parallel()
	dbEnv, open := testDatabase(t)
	key := fmt.Sprintf("sig-%d", time.Now().UnixNano())
	first := helperCmd(t, dbEnv, envWaitSignal+"="+key)
	require.NoError(t, first.Start())
	killAtEnd(t, first)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	var id string
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		rows, err := ex.List(ctx, sdk.ListFilter{Function: "test_signal_probe"})
		if err != nil {
			return err
		}
		if len(rows) != 1 || (rows[0].Status != sdk.StatusRunning && rows[0].Status != sdk.StatusWaiting) {
			return fmt.Errorf("rows %v", rows)
		}
		id = rows[0].ID
		return nil
	})
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	require.Error(t, first.Wait())

	require.NoError(t, ex.SendSignal(ctx, id, "wake", "hello")) // nobody serves now

	second := helperCmd(t, dbEnv, envWaitSignal+"="+key) // same key: finds the execution
	require.NoError(t, second.Start())
	killAtEnd(t, second)
	defer func() {
		_ = second.Process.Signal(syscall.SIGKILL)
		_ = second.Wait()
	}()
	info := waitStatus(t, ctx, ex, id, sdk.StatusCompleted)
	require.JSONEq(t, fmt.Sprintf("%q", key+":hello"), string(info.Output))
}

func TestConcurrencyLimitAcrossProcessesWithAKill(t *testing.T) {
	t.Parallel()
	n := 500
	if testing.Short() {
		n = 150
	}
	dir := t.TempDir()
	ledger := filepath.Join(dir, "ledger.txt")
	dbEnv, open := testDatabase(t)
	start := func() *exec.Cmd {
		cmd := helperCmd(t, dbEnv, envCrashLedger+"="+ledger)
		require.NoError(t, cmd.Start())
		killAtEnd(t, cmd)
		return cmd
	}
	a, b := start(), start()
	defer func() {
		for _, c := range []*exec.Cmd{a, b} {
			_ = c.Process.Signal(syscall.SIGKILL)
			_ = c.Wait()
		}
	}()
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	cctx := sdk.WithExecutor(ctx, ex)
	for i := range n {
		_, err := limitedSteps.Start(cctx, i)
		require.NoError(t, err)
	}
	// Kill one process once a fifth of the work is done.
	testutil.CheckFor(t, 60*time.Second, 10*time.Millisecond, func() error {
		if c := countLines(t, ledger, "end"); c < n/5 {
			return fmt.Errorf("%d steps ended", c)
		}
		return nil
	})
	require.NoError(t, a.Process.Signal(syscall.SIGKILL))
	killedAt := time.Now().UnixNano()
	require.Error(t, a.Wait())

	testutil.CheckFor(t, 120*time.Second, 50*time.Millisecond, func() error {
		rows, err := ex.Backend().ListExecutions(ctx, persistence.ListFilter{Function: "test_limited_steps", Status: persistence.StatusCompleted, Limit: n + 1})
		if err != nil {
			return err
		}
		if len(rows) != n {
			return fmt.Errorf("%d of %d completed", len(rows), n)
		}
		return nil
	})
	maxAtOnce := maxOverlap(t, ledger, a.Process.Pid, killedAt)
	t.Logf("%d calls limited to 5 across two processes, one killed: at most %d ran at once", n, maxAtOnce)
	require.LessOrEqual(t, maxAtOnce, 5)
	require.GreaterOrEqual(t, maxAtOnce, 3, "the limit is used, not just respected")
}

func countLines(t *testing.T, path, prefix string) int {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return strings.Count(string(b), prefix+" ")
}

// maxOverlap reads the ledger's start/end lines and returns the most runs
// that overlapped; a run of the killed process that never ended ends at the
// kill.
func maxOverlap(t *testing.T, path string, killedPid int, killedAt int64) int {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	type ev struct {
		at    int64
		delta int
	}
	open := map[string]int64{}
	var evs []ev
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var what string
		var x, pid int
		var at int64
		_, err := fmt.Sscanf(sc.Text(), "%s %d %d %d", &what, &x, &pid, &at)
		require.NoError(t, err)
		k := fmt.Sprintf("%d/%d", x, pid)
		if what == "start" {
			open[k] = at
			evs = append(evs, ev{at, +1})
		} else {
			delete(open, k)
			evs = append(evs, ev{at, -1})
		}
	}
	require.NoError(t, sc.Err())
	for k := range open {
		var x, pid int
		_, err := fmt.Sscanf(k, "%d/%d", &x, &pid)
		require.NoError(t, err)
		require.Equal(t, killedPid, pid, "only the killed process leaves runs without an end")
		evs = append(evs, ev{killedAt, -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at != evs[j].at {
			return evs[i].at < evs[j].at
		}
		return evs[i].delta < evs[j].delta
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// killAtEnd makes sure a helper process never outlives its test, even when
// the test fails before it kills the process itself (a helper serves until
// killed, and holds the test's stderr).
func killAtEnd(t *testing.T, cmd *exec.Cmd) {
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
}
