package node

// This file sorts before node_test.go on purpose: go test runs top-level
// tests in file order, and TestNode removes the stent-node binary after its
// last run, so TestPausedOwnerIsFenced runs before it.

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

var fenceRuns int

// TestPausedOwnerIsFenced is the zombie owner: a node stopped (SIGSTOP) past
// its lease while it runs workflows, whose executions another node takes
// over, and which then resumes (SIGCONT) believing it still owns them.
func TestPausedOwnerIsFenced(t *testing.T) {
	fenceRuns++
	ensureNodeBin(t)
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "stent.db")
		testPausedOwner(t, []string{"--db", path}, func(t *testing.T) (persistence.Backend, *ledger.Ledger) {
			b, err := sqlite.Open(path)
			require.NoError(t, err)
			l, err := ledger.Open(path, ledger.WithNode("test"))
			require.NoError(t, err)
			return b, l
		})
	})
	t.Run("SQLiteCluster", func(t *testing.T) {
		// The same with gossip: the paused node is declared dead in about a
		// second and its leases released, instead of running out.
		path := filepath.Join(t.TempDir(), "stent.db")
		testPausedOwner(t, []string{"--db", path, "cluster"}, func(t *testing.T) (persistence.Backend, *ledger.Ledger) {
			b, err := sqlite.Open(path)
			require.NoError(t, err)
			l, err := ledger.Open(path, ledger.WithNode("test"))
			require.NoError(t, err)
			return b, l
		})
	})
	t.Run("Postgres", func(t *testing.T) {
		args, open := postgresNode(t)
		testPausedOwner(t, args, open)
	})
}

// testPausedOwner starts 2 nodes with a 2s lease, starts 40 workflows of 8
// one-second steps, stops (SIGSTOP) the node that runs most of them for at
// least 4 leases, until the other node has taken its workflows over, resumes
// it (SIGCONT), and checks what the resumed node did once every workflow has
// completed.
func testPausedOwner(t *testing.T, args []string, open func(*testing.T) (persistence.Backend, *ledger.Ledger)) {
	const (
		workflows = 40
		steps     = 8
		pause     = time.Second // each step's work
		// Two seconds: with one, a step once ran twice in one process
		// before the stop, on a loaded CI machine (a lease renewal held
		// up past the lease, most likely: the logs were gone).
		lease   = 2 * time.Second
		stopFor = 4 * lease
		// stopMax bounds the wait for the takeover of every workflow of
		// the stopped node (see below).
		stopMax = stopFor + 6*time.Second
	)
	dir := t.TempDir()
	ctx := context.Background()
	b, l := open(t)
	defer func() { require.NoError(t, l.Close()) }()
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t))) // not serving: it only starts
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()

	names := [2]string{"pause-0", "pause-1"}
	var logs [2]string
	var procs [2]*exec.Cmd
	var cl *members
	if args[len(args)-1] == "cluster" { // the nodes form a cluster
		args = args[:len(args)-1]
		cl = newMembers(t, 2)
	}
	for i := range procs {
		logs[i] = filepath.Join(dir, fmt.Sprintf("node-%d.log", i))
		nodeArgs := []string{"--node", names[i], "--admin", "", "--log-level", "debug", "--lease", lease.String()}
		if cl != nil {
			nodeArgs = append(nodeArgs, cl.args(i)...)
		}
		procs[i] = startNode(t, logs[i], append(nodeArgs, args...)...)
	}
	waitFor(t, 30*time.Second, "both nodes ready", func() bool {
		return logAttr(t, logs[0], "node ready", "node") != "" && logAttr(t, logs[1], "node ready", "node") != ""
	})

	// Start the workflows over ~1s, so that both nodes' claims get some.
	cctx := sdk.WithExecutor(ctx, ex)
	ids := make([]string, 0, workflows)
	for range workflows {
		h, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: steps, Pause: pause})
		require.NoError(t, err)
		ids = append(ids, h.ID())
		time.Sleep(25 * time.Millisecond)
	}
	// Every workflow runs a step; then most are past their first one, so
	// the takeover replays a journal, and a step is in flight in each.
	waitFor(t, 30*time.Second, "a step of every workflow", func() bool {
		runs, err := l.Runs(ctx)
		require.NoError(t, err)
		seen := map[string]bool{}
		for _, r := range runs {
			seen[r.WorkflowID] = true
		}
		return len(seen) == workflows
	})
	time.Sleep(pause + pause/3)

	// The victim is the node that owns most workflows now (steps are
	// executions of their own, run by either node, and a workflow waiting
	// for its step may have passivated: it then has no owner). It is
	// stopped outside a write; what it owns then cannot change while it is
	// stopped. Should it own nothing any more by then (it passivated its
	// workflows meanwhile, on a loaded machine), it is resumed at once, well
	// within its lease, and the choice made again.
	sqlitePath := ""
	if !ledger.IsPostgres(args[1]) {
		sqlitePath = args[1]
	}
	var v int
	var stopped time.Time
	owned := map[string]int64{} // workflow ID → its lease epoch at the stop
	for try := 1; len(owned) == 0; try++ {
		require.LessOrEqual(t, try, 20, "a node that owns workflows to stop")
		perNode := map[string]int{}
		for _, id := range ids {
			rec, err := b.GetExecution(ctx, id)
			require.NoError(t, err)
			if !rec.Status.Terminal() {
				perNode[rec.Owner]++
			}
		}
		v = 0
		if perNode[names[1]] > perNode[names[0]] {
			v = 1
		}
		if perNode[names[v]] == 0 {
			time.Sleep(50 * time.Millisecond) // both passivated: wait for a claim
			continue
		}
		stopOutsideWrite(t, procs[v], sqlitePath)
		stopped = time.Now()
		for _, id := range ids {
			rec, err := b.GetExecution(ctx, id)
			require.NoError(t, err)
			if rec.Owner == names[v] && !rec.Status.Terminal() {
				owned[id] = rec.Epoch
			}
		}
		if len(owned) == 0 {
			require.NoError(t, procs[v].Process.Signal(syscall.SIGCONT))
		}
	}
	victim, other := procs[v].Process.Pid, procs[1-v].Process.Pid
	// Stay stopped for 4 leases, and then until the other node has taken
	// over every workflow of this one (its epoch went up: only the other
	// node can have claimed it) or stopMax has passed.
	taken := map[string]int64{} // workflow ID → its epoch after the takeover
	for {
		for id, epoch := range owned {
			if _, ok := taken[id]; ok {
				continue
			}
			rec, err := b.GetExecution(ctx, id)
			require.NoError(t, err)
			if rec.Epoch > epoch {
				taken[id] = rec.Epoch
			}
		}
		if d := time.Since(stopped); d >= stopMax || d >= stopFor && len(taken) == len(owned) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, 'T', rune(procState(t, victim)), "still stopped")
	resumedBefore := time.Now()
	require.NoError(t, procs[v].Process.Signal(syscall.SIGCONT))
	resumed := time.Now()
	stoppedFor := resumed.Sub(stopped)
	require.Len(t, taken, len(owned), "the other node took over every workflow of the stopped node within %s; node logs in %s", stoppedFor, dir)

	waitFor(t, 60*time.Second, "every workflow completed", func() bool {
		rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Status: sdk.StatusCompleted, Limit: workflows + 1})
		require.NoError(t, err)
		return len(rows) == workflows
	})
	done := time.Now()

	// Stent recorded each workflow's completion once, at its first
	// attempt: the stopped node's activations recorded no attempt of
	// their own (their outcome writes were refused).
	rows, err := ex.List(ctx, sdk.ListFilter{Function: "ledger_workflow", Limit: workflows + 1})
	require.NoError(t, err)
	require.Len(t, rows, workflows)
	for _, r := range rows {
		require.Equal(t, sdk.StatusCompleted, r.Status, r.ID)
		require.Equal(t, 1, r.Attempts, "attempts of %s", r.ID)
		var sum int
		require.NoError(t, json.Unmarshal(r.Output, &sum))
		require.Equal(t, steps*(steps+1)/2, sum, "output of %s", r.ID)
	}
	// Nobody claimed a taken-over workflow again: after the takeover it
	// ran on the other node only, so the stopped node had no right to start
	// any of its steps.
	for id, epoch := range taken {
		rec, err := b.GetExecution(ctx, id)
		require.NoError(t, err)
		require.Equal(t, epoch, rec.Epoch, "lease epoch of %s since its takeover", id)
	}

	// The ledger. Each step and completion ran at least once. After
	// SIGCONT the stopped process may record, in a workflow taken over
	// from it, one row: its tail, the step (or completion) that follows
	// the workflow's last row before the stop. Its body had begun before
	// the stop (or its parent had passed its lease check), but may take
	// its timestamp (ledger: before its insert) only on resuming, however
	// late the busy machine schedules it; its outcome write is then
	// refused. Any other row would be a step started after the takeover.
	// A step or completion that ran twice ran once in each process.
	runs, err := l.Runs(ctx)
	require.NoError(t, err)
	type key struct {
		wf   string
		step int
	}
	groups := map[key][]ledger.Run{}
	lastBefore := map[string]int{} // workflow → its last step before the stop (steps: the completion)
	var tails []ledger.Run
	var repeatedSteps, repeatedDone int
	var latestTail time.Duration
	order := func(step int) int { // the completion (-1) comes last
		if step < 0 {
			return steps
		}
		return step
	}
	for _, r := range runs {
		k := key{r.WorkflowID, r.Step}
		groups[k] = append(groups[k], r)
		if r.At.Before(stopped) {
			if last, ok := lastBefore[r.WorkflowID]; !ok || order(r.Step) > last {
				lastBefore[r.WorkflowID] = order(r.Step)
			}
		}
	}
	for _, r := range runs {
		if r.PID != victim || !r.At.After(resumedBefore) {
			continue
		}
		if _, wasTaken := taken[r.WorkflowID]; !wasTaken {
			continue
		}
		last, ok := lastBefore[r.WorkflowID]
		require.True(t, ok && order(r.Step) == last+1,
			"process %d ran step %d (-1: completion) of %s at %s, %s after SIGCONT, after the takeover of its workflow, whose last row before the stop was step %d (%d: completion)",
			victim, r.Step, r.WorkflowID, r.At.Format(time.RFC3339Nano), r.At.Sub(resumed), last, steps)
		for _, prev := range tails {
			require.NotEqual(t, r.WorkflowID, prev.WorkflowID, "process %d ran two rows of %s after SIGCONT: %+v and %+v", victim, r.WorkflowID, prev, r)
		}
		tails = append(tails, r)
		latestTail = max(latestTail, r.At.Sub(resumed))
	}
	for _, id := range ids {
		for s := -1; s < steps; s++ {
			g := groups[key{id, s}]
			require.NotEmpty(t, g, "%s step %d (-1: completion) ran", id, s)
			if len(g) == 1 {
				continue
			}
			if s < 0 {
				repeatedDone++
			} else {
				repeatedSteps++
			}
			_, wasTaken := taken[id]
			require.True(t, wasTaken, "%s step %d (-1: completion) ran %d times but was not taken over: %+v; the node logs of it:\n%s",
				id, s, len(g), g, linesAbout(t, logs[:], id))
			require.Len(t, g, 2, "%s step %d (-1: completion): %+v", id, s, g)
			var mine, theirs int
			for _, r := range g {
				switch r.PID {
				case other:
					theirs++
				case victim:
					mine++
				}
			}
			require.Equal(t, [2]int{1, 1}, [2]int{mine, theirs},
				"%s step %d (-1: completion): one run in the stopped process %d, one in %d: %+v", id, s, victim, other, g)
		}
	}

	// Its late writes were refused, or never made: the resumed node logged
	// activations that lost their lease (an outcome write refused by the
	// epoch, or the renewal finding the lease taken, stops the activation
	// and its subtree).
	lost := lostLeaseLines(t, logs[v], resumedBefore)
	require.NotEmpty(t, lost, "the resumed node logged no lost lease; log in %s", logs[v])
	var lostTaken int
	for _, id := range lost {
		if _, ok := taken[id]; ok {
			lostTaken++
		}
	}
	t.Logf("%d workflows of %d steps; stopped process %d (%s) for %s; it owned %d, all taken over; %d completed %s after SIGCONT; "+
		"repeated: %d step runs, %d completions; tails of the stopped process after SIGCONT: %d (latest %s after it); "+
		"lost-lease lines after SIGCONT: %d (%d of taken-over workflows)",
		workflows, steps, victim, names[v], stoppedFor.Round(10*time.Millisecond), len(owned), workflows,
		done.Sub(resumed).Round(100*time.Millisecond), repeatedSteps, repeatedDone, len(tails),
		latestTail.Round(time.Millisecond), len(lost), lostTaken)
}

// lostLeaseLines returns the execution IDs of the lines of the JSON log at
// path, timestamped at or after since, that say an activation lost its
// lease (a write refused, or the loss found before a write).
func lostLeaseLines(t *testing.T, path string, since time.Time) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			ID   string    `json:"execution_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Time.Before(since) {
			continue
		}
		// A write refused by the epoch, or the lease found lost first (by
		// the renewal, or a step's check) and the activation stopped
		// before it wrote.
		if line.Msg != "activation lost its lease" && line.Msg != "lease lost to another node; stopping the activation" {
			continue
		}
		ids = append(ids, line.ID)
	}
	require.NoError(t, sc.Err())
	return ids
}

// linesAbout returns the lines of the node logs at paths that name
// execution id or one of its steps (their IDs start with id), at most 60
// of each log, for a failure message: the logs go with the test's
// directory.
func linesAbout(t *testing.T, paths []string, id string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", p, err)
			continue
		}
		n := 0
		for line := range strings.Lines(string(data)) {
			if strings.Contains(line, id) && n < 60 {
				fmt.Fprintf(&b, "%s: %s", filepath.Base(p), line)
				n++
			}
		}
	}
	return b.String()
}

// stopOutsideWrite stops proc (SIGSTOP). On SQLite (path set), a process
// stopped in the middle of a write transaction holds the database's write
// lock until it resumes, so no other process can write, take over
// included: it is continued and stopped again until the lock is free.
// A try that finds the lock held keeps every other writer waiting until
// the process is continued, so it must be short: the lock is tried without
// waiting. (With a 500 ms busy timeout, a few such tries in a row held up
// the other node's lease renewals past its lease, and it lost its own
// leases.)
func stopOutsideWrite(t *testing.T, proc *exec.Cmd, path string) {
	t.Helper()
	pid := proc.Process.Pid
	var db *sql.DB
	if path != "" {
		var err error
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		require.NoError(t, err)
		defer db.Close()
		db.SetMaxOpenConns(1)
		require.NoError(t, db.Ping()) // opened before the stop
	}
	for attempt := 1; ; attempt++ {
		require.NoError(t, proc.Process.Signal(syscall.SIGSTOP))
		deadline := time.Now().Add(10 * time.Second)
		for procState(t, pid) != 'T' {
			require.True(t, time.Now().Before(deadline), "process %d did not stop within 10s", pid)
			time.Sleep(time.Millisecond)
		}
		if db == nil || writable(t, db) {
			return
		}
		require.Less(t, attempt, 200, "process %d held the SQLite write lock at every stop", pid)
		require.NoError(t, proc.Process.Signal(syscall.SIGCONT))
		time.Sleep(20 * time.Millisecond)
	}
}

// writable reports whether a write transaction can begin on db now.
func writable(t *testing.T, db *sql.DB) bool {
	t.Helper()
	conn, err := db.Conn(context.Background())
	require.NoError(t, err)
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		return false
	}
	_, err = conn.ExecContext(context.Background(), "ROLLBACK")
	require.NoError(t, err)
	return true
}

// procState is the state letter of process pid in /proc (T: stopped).
func procState(t *testing.T, pid int) byte {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	require.True(t, i >= 0 && i+2 < len(s), "parsing /proc/%d/stat: %q", pid, s)
	return s[i+2]
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ensureNodeBin builds the stent-node binary again if it is gone (TestNode
// removed it: -shuffle), and removes it after the last run of this test if
// TestNode, which removes it otherwise, does not run after it.
func ensureNodeBin(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(nodeBin); err != nil {
		require.NoError(t, os.MkdirAll(binDir, 0o700))
		out, err := exec.Command("go", "build", "-o", nodeBin, "github.com/stent-go/stent/cmd/stent").CombinedOutput()
		require.NoError(t, err, "building stent-node: %s", out)
	}
	count := "1"
	if f := flag.Lookup("test.count"); f != nil {
		count = f.Value.String()
	}
	if count != strconv.Itoa(fenceRuns) {
		return
	}
	t.Cleanup(func() {
		if !selected("TestNode") || strconv.Itoa(nodeRuns) == count {
			require.NoError(t, os.RemoveAll(binDir))
		}
	})
}

// selected reports whether the top-level test name is selected by -run and
// not skipped by -skip (their first /-separated element, as go test matches
// top-level names).
func selected(name string) bool {
	pattern := func(flagName string) string {
		if f := flag.Lookup(flagName); f != nil {
			return f.Value.String()
		}
		return ""
	}
	if run := pattern("test.run"); run != "" {
		if ok, err := regexp.MatchString(strings.Split(run, "/")[0], name); err == nil && !ok {
			return false
		}
	}
	if skip := pattern("test.skip"); skip != "" && !strings.Contains(skip, "/") {
		if ok, err := regexp.MatchString(skip, name); err == nil && ok {
			return false
		}
	}
	return true
}
