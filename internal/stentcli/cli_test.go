package stentcli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
)

func TestCLISQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	d := db{"--db", path}
	ok(t, d, "migrate")
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	testCLI(t, d, b, "sqlite-node")
}

func TestCLIPostgres(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	schema := newSchema(t, dsn)
	d := db{"--db", dsn, "--schema", schema}
	fails(t, d, 1, []string{"no Stent tables", "stent migrate"}, "list")
	ok(t, d, "migrate")
	b, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
	require.NoError(t, err)
	testCLI(t, d, b, "pg-node")
}

// testCLI fills the database of d with the test workload, served by b in
// this process, and checks every command of the stent binary on it.
func testCLI(t *testing.T, d db, b persistence.Backend, nodeID string) {
	w := startWorkload(t, b, nodeID)

	// list: newest first, filters, pages.
	var page ops.List
	okJSON(t, d, &page, "list")
	// flow, its retried child, broken, step (a child step that completed at
	// its first attempt is recorded in its parent's journal only).
	require.Len(t, page.Executions, 4)
	for i := 1; i < len(page.Executions); i++ {
		require.False(t, page.Executions[i].CreatedAt.After(page.Executions[i-1].CreatedAt), "newest first")
	}
	okJSON(t, d, &page, "list", "--status", "failed")
	require.Len(t, page.Executions, 1)
	require.Equal(t, w.broken, page.Executions[0].ID)
	okJSON(t, d, &page, "list", "--function", "cli_flow", "--since", "1h")
	require.Len(t, page.Executions, 1)
	okJSON(t, d, &page, "list", "--parent", w.flow)
	require.Len(t, page.Executions, 1)
	require.Equal(t, "cli_flaky", page.Executions[0].Function)
	var first, second ops.List
	okJSON(t, d, &first, "list", "--limit", "2")
	require.Len(t, first.Executions, 2)
	require.NotEmpty(t, first.NextCursor)
	okJSON(t, d, &second, "list", "--limit", "2", "--cursor", first.NextCursor)
	require.NotEmpty(t, second.Executions)
	require.NotEqual(t, first.Executions[0].ID, second.Executions[0].ID)
	text := ok(t, d, "list", "--limit", "2")
	require.Contains(t, text, "STATUS")
	require.Contains(t, text, "more: stent list --cursor "+first.NextCursor)
	okJSON(t, d, &page, "list", "--until", "2000-01-01T00:00:00Z")
	require.Empty(t, page.Executions)
	fails(t, d, 2, []string{"unknown --status \"done\""}, "list", "--status", "done")
	fails(t, d, 2, []string{"cursor"}, "list", "--cursor", "nonsense")
	fails(t, d, 2, []string{"invalid --since"}, "list", "--since", "yesterday")

	// show: the flow waits on its signal, with its journal and children.
	var show ops.Show
	okJSON(t, d, &show, "show", w.flow)
	require.Equal(t, "waiting", string(show.Status))
	require.Contains(t, show.WaitingOn, "approve")
	require.Equal(t, "21", string(show.Input))
	kinds := []string{}
	for _, e := range show.Journal {
		kinds = append(kinds, e.Kind)
	}
	require.Equal(t, []string{"call", "call", "signal"}, kinds)
	require.NotNil(t, show.Journal[0].StartedAt)
	require.Len(t, show.Children, 2)
	var flaky *ops.TreeNode
	for _, c := range show.Children {
		if c.Function == "cli_flaky" {
			flaky = c
		}
	}
	require.NotNil(t, flaky)
	require.Equal(t, 2, flaky.Attempts, "a retry")
	text = ok(t, d, "show", w.flow)
	for _, want := range []string{"Waiting on:", "signal", "Journal", "Children", "cli_flaky", "└─ "} {
		require.Contains(t, text, want)
	}
	// The step at position 0 has no row: show finds it in the flow's journal.
	var step ops.Show
	okJSON(t, d, &step, "show", show.Journal[0].ChildID)
	require.True(t, step.JournalOnly)
	require.Equal(t, "completed", string(step.Status))
	require.Equal(t, "42", string(step.Output))
	require.Empty(t, step.Journal, "no journal of its own")
	require.Empty(t, step.Children)
	require.Contains(t, ok(t, d, "show", show.Journal[0].ChildID), "Recorded:")
	okJSON(t, d, &show, "show", w.broken)
	require.Equal(t, "failed", string(show.Status))
	require.NotNil(t, show.Error)
	require.Contains(t, show.Error.Message, "broken input")
	require.Len(t, show.DeadLetters, 1)
	fails(t, d, 1, []string{"no such execution \"nope\""}, "show", "nope")
	compl := ok(t, nil, append(append([]string{"__complete", "show"}, d...), "")...)
	require.Contains(t, compl, w.flow+"\tcli_flow waiting", "IDs complete")
	fails(t, d, 2, []string{"show takes ID"}, "show")

	// stats and members.
	var st ops.Stats
	okJSON(t, d, &st, "stats")
	require.Equal(t, 1, st.ByStatus["failed"])
	require.Equal(t, 1, st.ByStatus["waiting"])
	require.Contains(t, ok(t, d, "stats"), "FUNCTION")
	var ms []ops.Member
	okJSON(t, d, &ms, "members")
	require.Len(t, ms, 1)
	require.Equal(t, nodeID, ms[0].ID)
	require.True(t, ms[0].Alive)
	require.Contains(t, ms[0].Functions, "cli_flow")
	require.Equal(t, []string{"ssd"}, ms[0].Tags)
	membersOut := ok(t, d, "members")
	require.Contains(t, membersOut, nodeID)
	require.Contains(t, membersOut, "TAGS")

	// watch, off a terminal: one JSON object a line.
	out := ok(t, d, "watch", "--json", "--count", "2", "--every", "100ms")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2)
	for _, l := range lines {
		var wj watchJSON
		require.NoError(t, json.Unmarshal([]byte(l), &wj), l)
		require.NotNil(t, wj.Stats)
	}
	require.Contains(t, ok(t, d, "watch", "--count", "1"), "stent watch")

	// Dead letters: by dead-letter and by execution ID.
	var dl []ops.DeadLetter
	okJSON(t, d, &dl, "dlq", "list")
	require.Len(t, dl, 1)
	require.Equal(t, w.broken, dl[0].ExecutionID)
	okJSON(t, d, &dl, "dlq", "show", w.broken)
	require.Equal(t, w.broken, dl[0].ExecutionID)
	require.Contains(t, ok(t, d, "dlq", "show", dl[0].ID), "broken input")
	fails(t, d, 1, []string{"is not a dead letter", "status completed"}, "dlq", "replay", w.completed)
	fails(t, d, 1, []string{"no such dead letter or execution"}, "dlq", "replay", "nope")
	var acts []ops.DeadAction
	okJSON(t, d, &acts, "dlq", "replay", w.broken)
	require.Len(t, acts, 1)
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var ds []ops.DeadLetter
		okJSON(t, d, &ds, "dlq", "list")
		if len(ds) != 1 {
			return fmt.Errorf("%d dead letters, want the replay's failure again", len(ds))
		}
		return nil
	})
	require.Contains(t, ok(t, d, "dlq", "discard", w.broken), "discarded")
	require.Contains(t, ok(t, d, "dlq", "list"), "empty")
	okJSON(t, d, &acts, "dlq", "replay-all")
	require.Empty(t, acts)

	// signal: a bad payload, then the approval that ends the flow.
	fails(t, d, 2, []string{"is not JSON"}, "signal", w.flow, "approve", "{yes")
	fails(t, d, 1, []string{"no such execution"}, "signal", "nope", "approve")
	require.Contains(t, ok(t, d, "signal", w.flow, "approve", `"yes"`), "sent")
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		var s ops.Show
		okJSON(t, d, &s, "show", w.flow)
		if s.Status != "completed" {
			return fmt.Errorf("flow is %s", s.Status)
		}
		require.Equal(t, `"42 ok b yes"`, string(s.Output))
		return nil
	})
	fails(t, d, 1, []string{"already ended"}, "signal", w.flow, "approve")
	fails(t, d, 1, []string{"already ended"}, "cancel", w.flow)

	// start: a function the test node has, waited for; one no node has.
	var started startJSON
	okJSON(t, d, &started, "start", "cli_step", "5", "--wait", "--timeout", "30s")
	require.Equal(t, "completed", string(started.Execution.Status))
	require.Equal(t, "10", string(started.Execution.Output))
	r := stent(t, d, nil, "start", "cli_nowhere", `{"a": 1}`, "--key", "k1")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stderr, "no live node runs cli_nowhere")
	id := strings.TrimSpace(r.stdout)
	r = stent(t, d, nil, "start", "cli_nowhere", `{"a": 1}`, "--key", "k1")
	require.Equal(t, id, strings.TrimSpace(r.stdout), "the same key starts nothing new")
	fails(t, d, 2, []string{"is not JSON"}, "start", "cli_step", "five")
	okJSON(t, d, &st, "stats")
	require.Equal(t, []ops.Unserved{{Function: "cli_nowhere", Queue: "default", Pending: 1, OldestPending: st.Unserved[0].OldestPending}}, st.Unserved)
	var act ops.Action
	okJSON(t, d, &act, "cancel", id)
	require.Equal(t, "canceled", act.Action)

	// cleanup: everything finished goes.
	fails(t, d, 2, []string{"--older-than is required"}, "cleanup")
	var cl map[string]any
	okJSON(t, d, &cl, "cleanup", "--older-than", "1ms")
	require.Greater(t, cl["deleted"], 0.0)
	okJSON(t, d, &page, "list")
	require.Empty(t, page.Executions)
}

// TestCLIUsage checks what needs no database: help with an example on each
// command, completion, and the errors of a missing or empty database.
func TestCLIUsage(t *testing.T) {
	t.Parallel()
	help := ok(t, nil, "--help")
	for _, c := range []string{"list", "show", "stats", "watch", "dlq", "signal", "cancel", "start", "cleanup", "members", "console", "migrate", "chaos"} {
		require.Contains(t, help, "  "+c+" ", "stent --help lists %s", c)
		if c == "chaos" {
			continue // its flags are its own: stent chaos -h
		}
		require.Contains(t, ok(t, nil, c, "--help"), "Examples:", "stent %s --help", c)
	}
	for _, c := range []string{"list", "show", "replay", "discard", "replay-all"} {
		require.Contains(t, ok(t, nil, "dlq", c, "--help"), "Examples:", "stent dlq %s --help", c)
	}
	require.NotContains(t, help, "  node ", "node is hidden")
	require.Contains(t, ok(t, nil, "completion", "bash"), "bash completion")
	fails(t, nil, 2, []string{"unknown command \"bogus\""}, "bogus")
	fails(t, nil, 2, []string{"unknown flag: --bogus"}, "list", "--bogus")
	fails(t, nil, 2, []string{"no database given: set --db or STENT_DB"}, "list")
	missing := filepath.Join(t.TempDir(), "none.db")
	fails(t, db{"--db", missing}, 1, []string{"no database at", "stent migrate"}, "stats")
	require.NoFileExists(t, missing, "the CLI creates no database")
	fails(t, db{"--db", "postgres://stent@127.0.0.1:1/none?connect_timeout=2"}, 1, []string{"database unreachable"}, "list")
	fails(t, db{"--db", "x.db", "--schema", "s"}, 2, []string{"--schema applies to PostgreSQL only"}, "list")
	r := stent(t, nil, []string{"STENT_DB=" + missing}, "members")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "no database at "+missing)
}
