package node

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// binDir holds the stent binary that TestMain builds; its hidden node
// command is a stent-node that serves the ledger workload. TestNode, which
// runs every test that uses it, removes it after its last run (-count), as
// testutil.WrapTestMain exits without returning to TestMain.
var (
	binDir   string
	nodeBin  string
	nodeRuns int
)

func TestMain(m *testing.M) {
	var err error
	binDir, err = os.MkdirTemp("", "stent-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	nodeBin = filepath.Join(binDir, "stent")
	build := exec.Command("go", "build", "-o", nodeBin, "github.com/stent-go/stent/cmd/stent")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building stent-node:", err)
		_ = os.RemoveAll(binDir)
		os.Exit(2)
	}
	testutil.WrapTestMain(m)
}

func TestParse(t *testing.T) {
	t.Parallel()
	env := map[string]string{"STENT_DB": "/env.db", "STENT_QUEUES": "a, b", "STENT_LEASE": "3s", "STENT_FUNCTIONS": "f,g", "STENT_TAGS": "gpu, eu,",
		"STENT_RETENTION": "48h"}
	cfg, err := parse([]string{"--concurrency", "7", "--node", "n1"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "/env.db", cfg.DB)
	require.Equal(t, []string{"a", "b"}, cfg.Queues)
	require.Equal(t, []string{"gpu", "eu"}, cfg.Tags)
	require.Equal(t, 3*time.Second, cfg.LeaseDuration)
	require.Equal(t, 7, cfg.Concurrency)
	require.Equal(t, []string{"f", "g"}, cfg.Functions)
	require.Equal(t, 48*time.Hour, cfg.Retention)
	require.Equal(t, "n1", cfg.NodeID)
	require.Equal(t, "127.0.0.1:0", cfg.AdminAddr)
	require.True(t, cfg.Logger.Enabled(context.Background(), slog.LevelInfo))
	require.False(t, cfg.Logger.Enabled(context.Background(), slog.LevelDebug))

	cfg, err = parse([]string{"--db", "/flag.db", "--admin", "", "--log-level", "debug"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "/flag.db", cfg.DB, "a flag beats its variable")
	require.Empty(t, cfg.AdminAddr)
	require.True(t, cfg.Logger.Enabled(context.Background(), slog.LevelDebug))
	require.NotEmpty(t, cfg.NodeID, "hostname-pid by default")
	cfg, err = parse([]string{"--db", "/flag.db", "--tags", "tpu"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"tpu"}, cfg.Tags, "--tags beats STENT_TAGS")

	none := func(string) string { return "" }
	for _, args := range [][]string{
		{},
		{"--db", "x.db", "--lease", "soon"},
		{"--db", "x.db", "--concurrency", "-1"},
		{"--db", "x.db", "--log-level", "loud"},
		{"--db", "x.db", "--retention", "-1h"},
		{"--db", "x.db", "--schema", "s"},
		{"--db", "x.db", "extra"},
		{"--db", "x.db", "--trace-url", "http://jaeger/trace/"},
	} {
		_, err := parse(args, none, io.Discard)
		require.Error(t, err, "%q", args)
	}
}

func TestAdminTokenOffLoopback(t *testing.T) {
	t.Parallel()
	none := func(string) string { return "" }
	for _, addr := range []string{":8080", "0.0.0.0:8080", "10.0.0.5:8080", "[::]:8080"} {
		_, err := parse([]string{"--db", "x.db", "--admin", addr}, none, io.Discard)
		require.ErrorContains(t, err, "--admin-token", addr)
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:0"} {
		_, err := parse([]string{"--db", "x.db", "--admin", addr}, none, io.Discard)
		require.NoError(t, err, addr)
	}
	cfg, err := parse([]string{"--db", "x.db", "--admin", ":8080", "--trace-url", "http://jaeger/trace/{trace_id}"},
		func(k string) string { return map[string]string{"STENT_ADMIN_TOKEN": "t0k"}[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "t0k", cfg.AdminToken)
	require.Equal(t, "http://jaeger/trace/{trace_id}", cfg.TraceURL)
}

func TestAdminHandler(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	m, err := newNodeMetrics("admin-test")
	require.NoError(t, err)
	defer func() { require.NoError(t, m.shutdown()) }()
	srv := httptest.NewServer(adminHandler(&ready, m.handler, &consoleSlot{}))
	defer srv.Close()
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, status("/healthz"))
	require.Equal(t, http.StatusOK, status("/metrics"))
	require.Equal(t, http.StatusServiceUnavailable, status("/readyz"), "before the executor is ready")
	ready.Store(true)
	require.Equal(t, http.StatusOK, status("/readyz"))
	ready.Store(false)
	require.Equal(t, http.StatusServiceUnavailable, status("/readyz"), "while draining")
	require.Equal(t, http.StatusOK, status("/healthz"))
}

// TestNode runs the tests that start stent-node processes.
func TestNode(t *testing.T) {
	nodeRuns++
	if count := flag.Lookup("test.count"); count == nil || count.Value.String() == strconv.Itoa(nodeRuns) {
		t.Cleanup(func() { require.NoError(t, os.RemoveAll(binDir)) })
	}
	t.Run("BadDatabase", testBadDatabase)
	t.Run("WrongGossipKey", testWrongGossipKey)
	t.Run("TakeoverSQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "stent.db")
		testTakeover(t, []string{"--db", path}, func(t *testing.T) (persistence.Backend, *ledger.Ledger) {
			b, err := sqlite.Open(path)
			require.NoError(t, err)
			l, err := ledger.Open(path, ledger.WithNode("test"))
			require.NoError(t, err)
			return b, l
		})
	})
	t.Run("Admin", testAdmin)
	t.Run("Metrics", testMetrics)
	t.Run("ChaosSQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "stent.db")
		testChaos(t, []string{"--db", path}, func(t *testing.T) (persistence.Backend, *ledger.Ledger) {
			b, err := sqlite.Open(path)
			require.NoError(t, err)
			l, err := ledger.Open(path, ledger.WithNode("test"))
			require.NoError(t, err)
			return b, l
		})
	})
	t.Run("ChaosPostgres", func(t *testing.T) {
		t.Parallel()
		args, open := postgresNode(t)
		testChaos(t, args, open)
	})
}

func testBadDatabase(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--db", t.TempDir(), "--admin", ""}, // a directory
		{"--db", "postgres://stent@127.0.0.1:1/none?connect_timeout=2", "--admin", ""},
		{"--admin", ""}, // no --db
	} {
		cmd := nodeCommand(args...)
		cmd.Env = withoutStentEnv()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%q: %s", args, out)
		require.Equal(t, ExitUsage, exit.ExitCode(), "%q: %s", args, out)
		require.Contains(t, string(out), "stent-node: ", "%q", args)
	}
}

func testAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logPath := filepath.Join(dir, "node.log")
	cmd := startNode(t, logPath, "--db", filepath.Join(dir, "stent.db"), "--node", "admin-node")
	var addr string
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		addr = logAttr(t, logPath, "admin listening", "addr")
		if addr == "" {
			return errors.New("no admin address logged yet")
		}
		return nil
	})
	get := func(path string) (int, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err
		}
		return resp.StatusCode, resp.Body.Close()
	}
	code, err := get("/healthz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		code, err := get("/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d", code)
		}
		return err
	})
	// The line may come a moment after /readyz answers 200.
	testutil.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if logAttr(t, logPath, "node ready", "node") == "" {
			return errors.New(`no "node ready" line logged yet`)
		}
		return nil
	})
	// The web console and its API share the admin address.
	for _, p := range []string{"/", "/api/members", "/assets/console.css"} {
		code, err = get(p)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, p)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a node stopped by SIGTERM exits 0")
	require.NotEmpty(t, logAttr(t, logPath, "node stopped", "node"))
	_, err = get("/healthz")
	require.Error(t, err, "the admin server stops with the process")
}

// testWrongGossipKey starts a node, then one with another gossip key that
// names it as its seed: the second cannot join, and exits with the reason.
func testWrongGossipKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "stent.db")
	m := newMembers(t, 2)
	firstArgs := append([]string{"--db", db, "--node", "first", "--admin", ""}, m.args(0)...)
	firstArgs[slices.Index(firstArgs, "--seeds")+1] = "" // it starts the cluster
	first := startNode(t, filepath.Join(dir, "first.log"), firstArgs...)
	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if logAttr(t, filepath.Join(dir, "first.log"), "node ready", "node") == "" {
			return errors.New("first node not ready")
		}
		return nil
	})
	args := append([]string{"--db", db, "--node", "intruder", "--admin", ""}, m.args(1)...)
	args[slices.Index(args, "--gossip-key")+1] = base64.StdEncoding.EncodeToString([]byte("another-key-0123"))
	cmd := nodeCommand(args...)
	cmd.Env = withoutStentEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Contains(t, string(out), "joining intruder through seeds")
	require.Contains(t, string(out), "no installed keys could decrypt the message")
	require.Nil(t, first.ProcessState, "the first node runs on")
}

// testTakeover starts 3 clustered nodes with a one-minute lease, runs
// workflows of long steps, SIGKILLs the node that runs most of them without
// restarting it, and measures how long the survivors take to run the next
// step of each of its workflows: membership (a second or two), not the
// lease, must drive the takeover.
func testTakeover(t *testing.T, args []string, open func(*testing.T) (persistence.Backend, *ledger.Ledger)) {
	const (
		nodes     = 3
		workflows = 30
	)
	dir := t.TempDir()
	ctx := context.Background()
	b, l := open(t)
	defer func() { require.NoError(t, l.Close()) }()
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()

	m := newMembers(t, nodes)
	procs := make([]*exec.Cmd, nodes)
	for i := range nodes {
		procs[i] = startNode(t, filepath.Join(dir, fmt.Sprintf("node-%d.log", i)),
			append(append([]string{"--node", fmt.Sprintf("node-%d", i), "--admin", "", "--log-level", "info",
				"--lease", "1m", "--concurrency", "100"}, m.args(i)...), args...)...)
	}
	for i := range nodes {
		testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
			if logAttr(t, filepath.Join(dir, fmt.Sprintf("node-%d.log", i)), "node ready", "node") == "" {
				return fmt.Errorf("node-%d not ready", i)
			}
			return nil
		})
	}
	cctx := sdk.WithExecutor(ctx, ex)
	ids := make([]string, workflows)
	for i := range workflows {
		h, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: 20, Pause: 300 * time.Millisecond})
		require.NoError(t, err)
		ids[i] = h.ID()
	}
	// Wait until every workflow runs somewhere, then pick the busiest node.
	owners := map[string][]string{}
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		clear(owners)
		for _, id := range ids {
			info, err := ex.Execution(ctx, id)
			if err != nil {
				return err
			}
			if info.Status != sdk.StatusRunning || info.Owner == "" {
				return fmt.Errorf("%s is %s", id, info.Status)
			}
			owners[info.Owner] = append(owners[info.Owner], id)
		}
		return nil
	})
	victim := 0
	for i := range nodes {
		if len(owners[fmt.Sprintf("node-%d", i)]) > len(owners[fmt.Sprintf("node-%d", victim)]) {
			victim = i
		}
	}
	victimName := fmt.Sprintf("node-%d", victim)
	taken := owners[victimName]
	require.NotEmpty(t, taken)
	killedAt := time.Now()
	require.NoError(t, procs[victim].Process.Signal(syscall.SIGKILL))
	require.Error(t, procs[victim].Wait())

	// Each of the victim's workflows is taken over when another node
	// records a step run for it.
	var delays []time.Duration
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		runs, err := l.Runs(ctx)
		if err != nil {
			return err
		}
		first := map[string]time.Time{}
		for _, r := range runs {
			if r.Node != victimName && r.At.After(killedAt) {
				if f, ok := first[r.WorkflowID]; !ok || r.At.Before(f) {
					first[r.WorkflowID] = r.At
				}
			}
		}
		delays = delays[:0]
		for _, id := range taken {
			at, ok := first[id]
			if !ok {
				return fmt.Errorf("%s not taken over yet", id)
			}
			delays = append(delays, at.Sub(killedAt))
		}
		return nil
	})
	slices.Sort(delays)
	t.Logf("takeover of %d workflows after a SIGKILL of %s (lease 1m): p50 %s, max %s",
		len(delays), victimName, delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	require.Less(t, delays[len(delays)-1], 20*time.Second, "taken over by membership, long before the lease ran out")
}

// testChaos starts 3 nodes with args, starts 200 workflows, and kills a
// random node every ~1.5s, restarting it under the same name, until every
// workflow has completed.
func testChaos(t *testing.T, args []string, open func(*testing.T) (persistence.Backend, *ledger.Ledger)) {
	const (
		workflows = 200
		steps     = 5
		nodes     = 3
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed))
	dir := t.TempDir()

	ctx := context.Background()
	b, l := open(t)
	defer func() { require.NoError(t, l.Close()) }()
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t))) // not serving: it only starts
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()

	procs := make([]*exec.Cmd, nodes)
	members := newMembers(t, nodes)
	start := func(i int) {
		procs[i] = startNode(t, filepath.Join(dir, fmt.Sprintf("node-%d.log", i)),
			append(append([]string{
				"--node", fmt.Sprintf("node-%d", i), "--admin", "", "--log-level", "warn",
				"--lease", "5s", "--concurrency", "10",
			}, members.args(i)...), args...)...)
	}
	for i := range nodes {
		start(i)
	}

	cctx := sdk.WithExecutor(ctx, ex)
	begin := time.Now()
	for range workflows {
		_, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: steps, Pause: time.Second})
		require.NoError(t, err)
	}

	completed := func() (int, error) {
		rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Status: sdk.StatusCompleted, Limit: workflows + 1})
		return len(rows), err
	}
	killed := map[int]bool{} // pids
	deadline := time.Now().Add(90 * time.Second)
	nextKill := time.Now().Add(jitter(rng))
	for {
		n, err := completed()
		require.NoError(t, err)
		if n == workflows {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d workflows completed after 90s (%d kills); node logs in %s", n, workflows, len(killed), dir)
		}
		if time.Now().After(nextKill) {
			i := rng.IntN(nodes)
			killed[procs[i].Process.Pid] = true
			require.NoError(t, procs[i].Process.Signal(syscall.SIGKILL))
			require.Error(t, procs[i].Wait(), "killed")
			start(i) // same --node: takes back its leases at once
			nextKill = time.Now().Add(jitter(rng))
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(begin)

	rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Limit: workflows + 1})
	require.NoError(t, err)
	require.Len(t, rows, workflows)
	for _, r := range rows {
		var sum int
		require.NoError(t, json.Unmarshal(r.Output, &sum))
		require.Equal(t, steps*(steps+1)/2, sum, "output of %s", r.ID)
	}

	rep, err := l.Check(ctx)
	require.NoError(t, err)
	t.Logf("%d workflows of %d steps on %d nodes in %s, %d kills: %d completed, %d completed twice; %d step runs, %d steps ran more than once (%d extra runs)",
		workflows, steps, nodes, elapsed.Round(100*time.Millisecond), len(killed),
		rep.Completed, rep.CompletedTwice, rep.StepRuns, rep.RepeatedSteps, rep.ExtraStepRuns)
	require.Equal(t, workflows, rep.Completed)
	require.Equal(t, workflows*steps, rep.StepRuns-rep.ExtraStepRuns, "every step of every workflow ran")
	// A body runs again only if the process that ran it was killed before
	// its outcome was recorded: every run but the last of a repeat comes
	// from a killed process. This holds for completions too: the ledger's
	// completion row is a side effect outside the journal, so a node
	// killed between writing it and recording the workflow's outcome
	// writes it again on the next run (seen about once in three runs).
	// Stent itself completed each workflow once: 200 rows, checked above.
	for _, r := range rep.Repeats {
		for _, pid := range r.PIDs[:len(r.PIDs)-1] {
			require.True(t, killed[pid], "%s step %d (-1: completion) ran again after a run in process %d, which was not killed (runs in %v)",
				r.WorkflowID, r.Step, pid, r.PIDs)
		}
	}
}

// members are the gossip and remote addresses of a test's cluster of nodes,
// fixed for the test so that a restarted node comes back on its addresses.
type members struct {
	gossip, remote []string
	key            string
}

func newMembers(t *testing.T, n int) *members {
	t.Helper()
	m := &members{key: base64.StdEncoding.EncodeToString([]byte("stent-test-key-0"))}
	for range n {
		m.gossip = append(m.gossip, freeAddr(t))
		m.remote = append(m.remote, freeAddr(t))
	}
	return m
}

// args are the cluster flags of node i: it joins through the others.
func (m *members) args(i int) []string {
	var seeds []string
	for j, g := range m.gossip {
		if j != i {
			seeds = append(seeds, g)
		}
	}
	return []string{"--gossip", m.gossip[i], "--remote", m.remote[i], "--seeds", strings.Join(seeds, ","),
		"--gossip-key", m.key, "--cluster-label", "nodecli-test"}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago
// (UDP and TCP, as gossip needs both).
func freeAddr(t *testing.T) string {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		require.NoError(t, pc.Close())
		return addr
	}
}

// jitter is the time to the next kill: 1.5s ± 0.5s.
func jitter(rng *mrand.Rand) time.Duration {
	return time.Second + time.Duration(rng.Int64N(int64(time.Second)))
}

// startNode starts stent-node with args, appending its stderr to logPath,
// and kills it when the test ends if the test has not stopped it.
func startNode(t *testing.T, logPath string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	cmd := nodeCommand(args...)
	cmd.Env = withoutStentEnv()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	require.NoError(t, f.Close()) // the child holds its own descriptor
	require.NoError(t, err)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// nodeCommand is the command of a stent-node with the ledger workload:
// `stent node` with args.
func nodeCommand(args ...string) *exec.Cmd {
	return exec.Command(nodeBin, append([]string{"node"}, args...)...)
}

// withoutStentEnv is the test's environment without STENT_* variables,
// which would change the nodes' defaults.
func withoutStentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STENT_") {
			env = append(env, kv)
		}
	}
	return env
}

// logAttr returns the string attribute key of the last JSON log line of
// path whose message is msg, or "" if there is none.
func logAttr(t *testing.T, path, msg, key string) string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var v string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil || line["msg"] != msg {
			continue
		}
		v, _ = line[key].(string)
	}
	require.NoError(t, sc.Err())
	return v
}

// postgresNode returns the --db and --schema flags of a node on a fresh
// schema of STENT_TEST_POSTGRES, and an opener of that schema's backend and
// ledger; it skips the test without the variable (fails it under CI).
func postgresNode(t *testing.T) ([]string, func(t *testing.T) (persistence.Backend, *ledger.Ledger)) {
	t.Helper()
	dsn := testutil.PostgresDSN(t)
	if !ledger.IsPostgres(dsn) {
		t.Skip("STENT_TEST_POSTGRES is not a postgres:// URL, which --db needs")
	}
	schema := newSchema(t, dsn)
	return []string{"--db", dsn, "--schema", schema}, func(t *testing.T) (persistence.Backend, *ledger.Ledger) {
		b, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
		require.NoError(t, err)
		l, err := ledger.Open(dsn, ledger.WithNode("test"), ledger.WithSchema(schema))
		require.NoError(t, err)
		return b, l
	}
}

// newSchema returns a fresh PostgreSQL schema name, dropped when the test
// ends.
func newSchema(t *testing.T, dsn string) string {
	t.Helper()
	return testutil.PostgresSchema(t, dsn, "nodetest")
}
