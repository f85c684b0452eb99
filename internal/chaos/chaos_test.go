package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/internal/testutil"
)

// stentBin is the stent binary that TestMain builds, whose hidden `node`
// subcommand runs the nodes (the test binary itself cannot).
var stentBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stent-chaos-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	stentBin = filepath.Join(dir, "stent")
	build := exec.Command("go", "build", "-o", stentBin, "github.com/stent-go/stent/cmd/stent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stent:", err)
		_ = os.RemoveAll(dir)
		os.Exit(2)
	}
	// WrapTestMain exits; the binary is small and in the temp dir, but
	// remove it when the process ends all the same.
	defer os.RemoveAll(dir)
	testutil.WrapTestMain(m)
}

// clusterFlags reports whether `stent node` knows --gossip (the cluster is
// wired into stent-node); without it the runs use NoCluster.
func clusterFlags(t *testing.T) bool {
	t.Helper()
	out, _ := exec.Command(stentBin, "node", "-h").CombinedOutput() // -h exits 0 or 2 by flag package version
	return bytes.Contains(out, []byte("-gossip"))
}

// shortRun is a chaos run small enough for CI: 3 nodes, kills every ~2s,
// a pause, signals and the limited step. It usually ends in 20-40 s; the
// timeout leaves room for a loaded machine, where a run once had 22 kills
// in 40 s and its limited workflows, each waiting for permits between
// kills of their router's member, were not all done by then.
func shortRun(t *testing.T, db string) Config {
	t.Helper()
	cfg := Config{
		// 10 executions at once per node (steps count) stretch the run
		// over several kills.
		DB: db, Nodes: 3, Workflows: 100, Steps: 4, StepPause: 250 * time.Millisecond, Concurrency: 10,
		KillEvery: 1500 * time.Millisecond, PauseEvery: 3 * time.Second, Lease: 2 * time.Second, PauseFor: 3 * time.Second,
		Seed: uint64(time.Now().UnixNano()), Timeout: 90 * time.Second, Signals: 20, Limit: ledger.LimitedMax,
		NoCluster: !clusterFlags(t), NodeCommand: []string{stentBin, "node"}, Schedule: time.Second,
	}
	if testing.Short() {
		cfg.Workflows, cfg.Signals = 40, 8
	}
	return cfg
}

func runChaos(t *testing.T, cfg Config) {
	t.Helper()
	var out bytes.Buffer
	begin := time.Now()
	res, err := Run(context.Background(), cfg, &out, io.Discard)
	t.Logf("chaos run in %s (no cluster: %v):\n%s", time.Since(begin).Round(time.Millisecond), cfg.NoCluster, out.String())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out.String(), fmt.Sprintf("seed %d\n", cfg.Seed)), "the seed comes first")
	require.Contains(t, out.String(), "\nprogress: ", "a progress line every few seconds")
	require.Empty(t, res.Broken(), "broken invariants")
	require.Equal(t, cfg.Workflows, res.Audit.Completed)
	require.Positive(t, res.Kills)
	require.Positive(t, res.Audit.LimitedRuns)
	require.Equal(t, cfg.Signals, res.Audit.SignalsReceived)
	if cfg.Schedule > 0 {
		require.Positive(t, res.Schedule.Ticks)
		require.Equal(t, res.Schedule.Ticks, res.Schedule.Executions)
	}
}

func TestChaosSQLite(t *testing.T) {
	// Not parallel with the PostgreSQL run: the machine running CI may
	// have two cores.
	runChaos(t, shortRun(t, ""))
}

func TestChaosPostgres(t *testing.T) {
	dsn := os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STENT_TEST_POSTGRES must be set under CI")
		}
		t.Skip("STENT_TEST_POSTGRES is not set")
	}
	if !ledger.IsPostgres(dsn) {
		t.Fatalf("STENT_TEST_POSTGRES must be a postgres:// URL, which --db needs")
	}
	runChaos(t, shortRun(t, dsn))
}

func TestParse(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]string{"--nodes", "2", "--workflows", "50", "--signals", "0.2", "--lease", "2s", "--seed", "7", "--limit", "0"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2, cfg.Nodes)
	require.Equal(t, 10, cfg.Signals, "a fraction of the workflows")
	require.Equal(t, 4*time.Second, cfg.PauseFor, "2×lease")
	require.Equal(t, uint64(7), cfg.Seed)
	require.Zero(t, cfg.Limit)

	cfg, err = Parse(nil, io.Discard)
	require.NoError(t, err)
	require.NotZero(t, cfg.Seed, "a time-based seed")
	require.Equal(t, 100, cfg.Signals, "10% of 1000")
	require.Equal(t, ledger.LimitedMax, cfg.Limit)

	cfg, err = Parse([]string{"--schedule", "2s"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.Schedule)

	cfg, err = Parse([]string{"--signals", "3"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 3, cfg.Signals, "a count")

	for _, args := range [][]string{
		{"--nodes", "0"},
		{"--signals", "2.5"},
		{"--signals", "5000"},
		{"--limit", "3"},
		{"--lease", "10ms"},
		{"extra"},
		{"--kill-every", "-1s"},
		{"--schedule", "500ms"},
		{"--schedule", "1500ms"},
	} {
		_, err := Parse(args, io.Discard)
		require.Error(t, err, "%q", args)
	}
}

// TestResultFailsOnBrokenInvariants proves the verdict can fail: crafted
// ledger rows with an unexplained repeat, a lost signal and an overlap
// over the limit break I5, I7 and I9, and a leaked permit or an unhealthy
// node break I9 and I10.
func TestResultFailsOnBrokenInvariants(t *testing.T) {
	t.Parallel()
	at := func(ms int) time.Time {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(ms) * time.Millisecond)
	}
	snap := ledger.Snapshot{
		Runs: []ledger.Run{
			{WorkflowID: "w1", Step: -1, PID: 1, At: at(900)},
			{WorkflowID: "w1", Step: 0, PID: 1, At: at(0)},
			{WorkflowID: "w1", Step: 0, PID: 2, At: at(100)}, // ran again, no fault
			{WorkflowID: "w2", Step: -1, PID: 2, At: at(900)},
			{WorkflowID: "w2", Step: 0, PID: 2, At: at(0)},
		},
		Limited: []ledger.LimitedRun{
			{WorkflowID: "w1", PID: 1, Start: at(0), End: at(200)},
			{WorkflowID: "w2", PID: 2, Start: at(50), End: at(150)},
		},
	}
	exp := ledger.Expect{
		Workflows: []string{"w1", "w2"}, Steps: 1, Limit: 1, End: at(1000),
		Signals: map[string]ledger.Sent{"w2": {Acked: []string{"s"}}},
	}
	healthy := Result{Audit: ledger.AuditSnapshot(ledger.Snapshot{Runs: []ledger.Run{
		{WorkflowID: "w1", Step: -1, PID: 1, At: at(900)},
		{WorkflowID: "w1", Step: 0, PID: 1, At: at(0)},
	}}, ledger.Expect{Workflows: []string{"w1"}, Steps: 1}), StatusCompleted: 1, Nodes: 3, Healthy: 3, Limit: 1}
	require.True(t, healthy.OK(), "%v", healthy.Broken())

	res := Result{Audit: ledger.AuditSnapshot(snap, exp), StatusCompleted: 2, Nodes: 3, Healthy: 3, Limit: 1}
	require.False(t, res.OK())
	broken := strings.Join(res.Broken(), "\n")
	require.Contains(t, broken, "I5")
	require.Contains(t, broken, "I7")
	require.Contains(t, broken, "I9")
	require.NotContains(t, broken, "I10")
	var out bytes.Buffer
	res.Print(&out)
	require.Contains(t, out.String(), "FAIL: 3 invariants broke")
	require.Contains(t, out.String(), "BROKEN")

	leaked := healthy
	leaked.Permits = 1
	require.Equal(t, []string{"I9 limited step within its limit, no permit leaked"}, leaked.Broken())
	sick := healthy
	sick.Healthy = 2
	require.Equal(t, []string{"I10 every node healthy at the end"}, sick.Broken())
	wrong := healthy
	wrong.WrongOutput = 1
	require.Equal(t, []string{"I1 workflow output correct"}, wrong.Broken())
	scheduled := healthy
	scheduled.Schedule = ScheduleCheck{Every: time.Second, Ticks: 10, Executions: 10}
	require.True(t, scheduled.OK(), "%v", scheduled.Broken())
	for _, bad := range []ScheduleCheck{
		{Every: time.Second, Ticks: 10, Executions: 10, Gaps: 1},
		{Every: time.Second, Ticks: 10, Executions: 11, Untracked: 1},
		{Every: time.Second, Ticks: 10, Executions: 9, Twice: 1},
		{Every: time.Second, Ticks: 10, Executions: 10, Skipped: 2},
		{Every: time.Second, Ticks: 10, Executions: 10, NotCompleted: 1},
		{Every: time.Second},
	} {
		scheduled.Schedule = bad
		require.Equal(t, []string{"I11 each schedule tick started once"}, scheduled.Broken(), "%+v", bad)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ds := []time.Duration{5, 1, 4, 2, 3}
	require.Equal(t, time.Duration(3), percentile(ds, 50))
	require.Equal(t, time.Duration(5), percentile(ds, 100))
	require.Equal(t, time.Duration(0), percentile(nil, 50))
}

func TestNodeArgs(t *testing.T) {
	t.Parallel()
	a := &node{name: "chaos-0", admin: "127.0.0.1:1", gossip: "127.0.0.1:2", remote: "127.0.0.1:3"}
	b := &node{name: "chaos-1", admin: "127.0.0.1:4", gossip: "127.0.0.1:5", remote: "127.0.0.1:6"}
	cfg := Config{Lease: 3 * time.Second}
	args := strings.Join(nodeArgs(cfg, "postgres://x", "chaos_1", a, []*node{a, b}), " ")
	require.Contains(t, args, "--schema chaos_1")
	require.Contains(t, args, "--gossip 127.0.0.1:2 --remote 127.0.0.1:3 --seeds 127.0.0.1:5")
	cfg.NoCluster = true
	require.NotContains(t, strings.Join(nodeArgs(cfg, "x.db", "", a, []*node{a, b}), " "), "--gossip")
}

// TestFreeAddrsAreDistinct: the ports picked for the nodes never repeat
// (picked one at a time and closed at once, a node's admin and gossip
// ports were once the same, and the node could not start).
func TestFreeAddrsAreDistinct(t *testing.T) {
	addrs, err := freeAddrs(60)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, a := range addrs {
		require.False(t, seen[a], "%s picked twice", a)
		seen[a] = true
	}
	require.Len(t, seen, 60)
}
