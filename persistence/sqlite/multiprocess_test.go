package sqlite

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// Environment of TestHelperProcess.
const (
	helperPathEnv = "STENT_SQLITE_HELPER_PATH"
	helperNodeEnv = "STENT_SQLITE_HELPER_NODE"
	helperOutEnv  = "STENT_SQLITE_HELPER_OUT"
)

// TestMultiProcess runs two processes on one new file: both initialise it
// at once, create executions and claim them concurrently. Every execution
// must be claimed exactly once across the processes.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.db")
	const perNode = 100
	nodes := []string{"node-1", "node-2"}
	cmds := make([]*exec.Cmd, len(nodes))
	for i, node := range nodes {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(),
			helperPathEnv+"="+path, helperNodeEnv+"="+node, helperOutEnv+"="+filepath.Join(dir, node+".out"))
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s output:\n%s", node, out.String())
			}
		})
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		require.NoError(t, cmd.Wait(), "helper %s", nodes[i])
	}

	claims := map[string]int{}
	for _, node := range nodes {
		data, err := os.ReadFile(filepath.Join(dir, node+".out"))
		require.NoError(t, err)
		for _, id := range strings.Fields(string(data)) {
			claims[id]++
		}
	}
	b := openTestDB(t, path)
	rest, err := b.ClaimDue(t.Context(), "parent", nil, nil, time.Minute, 2*perNode)
	require.NoError(t, err)
	for _, e := range rest {
		claims[e.ID]++
	}
	require.Len(t, claims, len(nodes)*perNode)
	for id, n := range claims {
		require.Equal(t, 1, n, "%s claimed %d times", id, n)
	}
}

// TestHelperProcess is one process of TestMultiProcess; it does nothing
// when run on its own.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("helper process of TestMultiProcess")
	}
	node, out := os.Getenv(helperNodeEnv), os.Getenv(helperOutEnv)
	ctx := context.Background()
	b := openTestDB(t, path)
	for i := range 100 {
		_, created, err := b.CreateExecution(ctx, &persistence.Execution{ID: fmt.Sprintf("%s-%03d", node, i), Function: "f"})
		require.NoError(t, err)
		require.True(t, created)
	}
	var claimed []string
	for {
		got, err := b.ClaimDue(ctx, node, nil, nil, time.Minute, 3)
		require.NoError(t, err)
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			claimed = append(claimed, e.ID)
		}
	}
	require.NoError(t, os.WriteFile(out, []byte(strings.Join(claimed, "\n")), 0o600))
}
