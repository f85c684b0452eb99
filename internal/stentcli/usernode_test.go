package stentcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/internal/testutil"
)

// TestUserNodeBinary runs three of the example user node binary
// (examples/custom_node, two functions) on PostgreSQL, starts an order with
// `stent start`, SIGKILLs the node that runs the workflow while it works,
// and reads the outcome with `stent show --json`: another node finished
// it, with every item quoted.
func TestUserNodeBinary(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	schema := newSchema(t, dsn)
	d := db{"--db", dsn, "--schema", schema}
	ok(t, d, "migrate")
	dir := t.TempDir()
	nodes := map[string]*exec.Cmd{}
	for i := 1; i <= 3; i++ {
		id := "shop-" + strconv.Itoa(i)
		nodes[id] = startUserNode(t, filepath.Join(dir, id+".log"), "--db", dsn, "--schema", schema, "--node", id,
			"--lease", "1s", "--admin", "")
	}
	testutil.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		var ms []ops.Member
		okJSON(t, d, &ms, "members")
		if len(ms) != 3 {
			return fmt.Errorf("%d members, want 3", len(ms))
		}
		for _, m := range ms {
			if !m.Alive || strings.Join(m.Functions, ",") != "quote_item,ship_order" {
				return fmt.Errorf("member %+v", m)
			}
		}
		return nil
	})

	items := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var started startJSON
	input := `{"id": "ORD-9", "items": ["` + strings.Join(items, `", "`) + `"], "work_ms": 400}`
	okJSON(t, d, &started, "start", "ship_order", input, "--key", "ship:ORD-9")
	id := started.ID

	// Wait until a node runs the workflow and has quoted an item, then
	// kill that node.
	var owner string
	testutil.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		var s ops.Show
		okJSON(t, d, &s, "show", id)
		done := 0
		for _, e := range s.Journal {
			if e.Done {
				done++
			}
		}
		if s.Owner == "" || done == 0 || s.Status.Terminal() {
			return fmt.Errorf("workflow %s, owner %q, %d quotes done", s.Status, s.Owner, done)
		}
		owner = s.Owner
		return nil
	})
	victim := nodes[owner]
	require.NotNil(t, victim, "owner %q is one of the nodes", owner)
	require.NoError(t, victim.Process.Signal(os.Kill))
	_ = victim.Wait()

	var s ops.Show
	testutil.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		okJSON(t, d, &s, "show", id)
		if s.Status != "completed" {
			return fmt.Errorf("workflow is %s on %q", s.Status, s.Owner)
		}
		return nil
	})
	require.NotEqual(t, owner, s.Owner, "another node finished it")
	var out struct {
		Order  string `json:"order"`
		Quotes []struct {
			Item string `json:"item"`
		} `json:"quotes"`
		Total int `json:"total_cents"`
	}
	require.NoError(t, json.Unmarshal(s.Output, &out))
	require.Equal(t, "ORD-9", out.Order)
	require.Len(t, out.Quotes, len(items))
	for i, q := range out.Quotes {
		require.Equal(t, items[i], q.Item)
	}
	require.Len(t, s.Journal, len(items), "one quote each, in order")
	t.Logf("workflow %s: node %s killed while it ran; %s finished it", id, owner, s.Owner)

	// The killed node's heartbeat expires; the others stay.
	testutil.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		var ms []ops.Member
		okJSON(t, d, &ms, "members")
		for _, m := range ms {
			if m.ID == owner && m.Alive {
				return errors.New("the killed node is still alive in the registry")
			}
		}
		return nil
	})
}

// TestStentNodeServesExamples runs cmd/stent-node on SQLite: it serves the
// examples' functions (and no ledger: that is stent chaos's), and
// `stent start --wait` runs simple_flow's workflow to the end; a SIGTERM
// stops it with exit 0.
func TestStentNodeServesExamples(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "stent.db")
	d := db{"--db", path}
	ok(t, d, "migrate")
	n := startNode(t, nodeBin, filepath.Join(dir, "node.log"), "--db", path, "--node", "examples", "--admin", "")
	testutil.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		var ms []ops.Member
		okJSON(t, d, &ms, "members")
		if len(ms) != 1 {
			return fmt.Errorf("%d members", len(ms))
		}
		for _, fn := range []string{"order_workflow", "process_order", "trip_book_trip", "batch_process_batch", "media_pipeline"} {
			require.Contains(t, ms[0].Functions, fn)
		}
		for _, fn := range ms[0].Functions {
			require.NotContains(t, fn, "ledger", "the ledger workload is stent chaos's only")
		}
		return nil
	})
	var started startJSON
	okJSON(t, d, &started, "start", "order_workflow", `["ORD-1"]`, "--wait", "--timeout", "60s")
	require.Equal(t, "completed", string(started.Execution.Status))
	require.JSONEq(t, `[{"order_id": "ORD-1", "status": "processed"}]`, string(started.Execution.Output))
	require.NoError(t, n.Process.Signal(syscall.SIGTERM))
	require.NoError(t, n.Wait(), "a SIGTERM stops the node with exit 0")
}

// startUserNode starts the example user node binary with args, its output
// going to logPath, and stops it (SIGTERM, then SIGKILL) when the test ends.
func startUserNode(t *testing.T, logPath string, args ...string) *exec.Cmd {
	t.Helper()
	return startNode(t, userBin, logPath, args...)
}

// startNode starts the node binary bin with args, its output going to
// logPath, and stops it (SIGTERM, then SIGKILL) when the test ends.
func startNode(t *testing.T, bin, logPath string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Env = withoutStentEnv()
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Start()
	require.NoError(t, f.Close())
	require.NoError(t, err)
	t.Cleanup(func() {
		if cmd.ProcessState != nil {
			return
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}
