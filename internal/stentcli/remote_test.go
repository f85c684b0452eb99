package stentcli

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/console"
	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence/sqlite"
)

// TestCLIRemote runs list, show, start, signal, cancel, stats, members,
// watch, dlq and schedule list through a node's console API (--node) and
// checks that they print what the same commands print from the database,
// and that the others say they need the database.
func TestCLIRemote(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	local := db{"--db", path}
	ok(t, local, "migrate")
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	w := startWorkload(t, b, "remote-node")
	h, err := console.New(console.Config{Executor: w.ex, Token: "t0ken"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	remote := db{"--node", srv.URL, "--token", "t0ken"}

	for _, args := range [][]string{{"list", "--json"}, {"list", "--status", "failed", "--json"}, {"show", w.flow, "--json"},
		{"dlq", "list", "--json"}, {"dlq", "show", w.broken, "--json"}} {
		require.JSONEq(t, ok(t, local, args...), ok(t, remote, args...), "stent %q", args)
	}
	ok(t, local, "schedule", "create", "nightly", "0 2 * * *", cliTick.Name(), "--tz", "Europe/Paris", "--paused")
	require.JSONEq(t, ok(t, local, "schedule", "list", "--json"), ok(t, remote, "schedule", "list", "--json"))
	require.Equal(t, ok(t, local, "schedule", "list"), ok(t, remote, "schedule", "list"))
	requireSameStats(t, local, remote)
	requireSameMembers(t, local, remote)
	require.Contains(t, ok(t, remote, "members"), "remote-node")
	require.Contains(t, ok(t, remote, "watch", "--count", "1"), "remote-node")

	// start, through POST /api/executions.
	out := ok(t, remote, "start", "cli_step", "5", "--wait")
	require.Contains(t, out, "completed after")
	require.Contains(t, out, "10")
	var st startJSON
	okJSON(t, remote, &st, "start", "cli_step", "6", "--key", "k-6")
	require.NotEmpty(t, st.ID)
	require.Equal(t, st.ID, st.Execution.ID)
	require.Equal(t, "cli_step", st.Execution.Function)
	var again startJSON
	okJSON(t, remote, &again, "start", "cli_step", "6", "--key", "k-6")
	require.Equal(t, st.ID, again.ID, "the same key returns the first execution")
	fails(t, remote, 1, []string{"k-6"}, "start", "cli_step", "7", "--key", "k-6")
	r := stent(t, remote, nil, "start", "no_such_fn")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "no live node runs no_such_fn on queue default")
	fails(t, db{"--node", srv.URL}, 1, []string{"needs the admin token", "--token"}, "start", "cli_step", "1")
	fails(t, remote, 2, []string{"not JSON"}, "start", "cli_step", "{oops")

	// The commands that need the database say so.
	for _, args := range [][]string{{"migrate"}, {"cleanup", "--older-than", "720h"}, {"schedule", "show", "nightly"},
		{"schedule", "create", "x", "@daily", cliTick.Name()}} {
		name := "stent " + args[0]
		if args[0] == "schedule" {
			name += " " + args[1]
		}
		fails(t, remote, 2, []string{name + " needs the database", "--db"}, args...)
	}

	var page ops.List
	okJSON(t, remote, &page, "list", "--limit", "2")
	require.NotEmpty(t, page.NextCursor)
	fails(t, remote, 1, []string{`no such execution "nope"`}, "show", "nope")
	fails(t, remote, 2, []string{`unknown --status "done"`}, "list", "--status", "done")
	fails(t, db{"--node", srv.URL}, 1, []string{"needs the admin token", "--token"}, "cancel", w.flow)
	fails(t, db{"--node", "localhost:1"}, 2, []string{"is not a URL"}, "list")

	var acts []ops.DeadAction
	okJSON(t, remote, &acts, "dlq", "replay", w.broken)
	require.Len(t, acts, 1)
	require.Equal(t, "replayed", acts[0].Action)
	require.Contains(t, ok(t, remote, "signal", w.flow, "approve", `"yes"`), "sent")
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var s ops.Show
		okJSON(t, remote, &s, "show", w.flow)
		if s.Status != "completed" {
			return fmt.Errorf("flow is %s", s.Status)
		}
		return nil
	})
	fails(t, remote, 1, []string{"already ended"}, "cancel", w.flow)
}

// requireSameStats requires stent stats to count the same from d1 and d2
// (but for the time of the read), and to print the same table.
func requireSameStats(t *testing.T, d1, d2 db) {
	t.Helper()
	var s1, s2 ops.Stats
	okJSON(t, d1, &s1, "stats")
	okJSON(t, d2, &s2, "stats")
	require.False(t, s2.At.IsZero())
	s1.At, s2.At = time.Time{}, time.Time{}
	require.Equal(t, s1, s2)
	require.Equal(t, ok(t, d1, "stats"), ok(t, d2, "stats"))
}

// requireSameMembers requires stent members to list the same nodes from d1
// and d2 (but for their heartbeats, which move).
func requireSameMembers(t *testing.T, d1, d2 db) {
	t.Helper()
	var m1, m2 []ops.Member
	okJSON(t, d1, &m1, "members")
	okJSON(t, d2, &m2, "members")
	require.NotEmpty(t, m2)
	for i := range m1 {
		m1[i].HeartbeatAt = time.Time{}
	}
	for i := range m2 {
		m2[i].HeartbeatAt = time.Time{}
	}
	require.Equal(t, m1, m2)
}
