package stentcli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
)

func (a *app) showCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one execution: input, output, errors, journal, children",
		Long: `Show one execution: its status, input and output (decoded JSON), attempts
and last error with its stack, its dead letters, its journal (each step,
sleep, signal wait and child, in order, with their times), what it waits on
now, and its children as a tree with their durations.`,
		Example: `  stent show 01J9Z3K5X8V6Q2M4N7P1R0S9T8
  stent show 01J9Z3K5X8V6Q2M4N7P1R0S9T8 --json | jq .status`,
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeExecution,
		RunE:              func(cmd *cobra.Command, args []string) error { return a.runShow(cmd.Context(), args[0]) },
	}
}

func (a *app) runShow(ctx context.Context, id string) error {
	if a.remote() {
		var out ops.Show
		if err := a.call(ctx, "GET", "/api/executions/"+url.PathEscape(id), nil, &out); err != nil {
			return err
		}
		return a.printShowDoc(&out)
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	out, err := ops.ShowExecution(ctx, ex, id)
	if err != nil {
		return err
	}
	return a.printShowDoc(out)
}

// printShowDoc prints show's output: out as JSON or text.
func (a *app) printShowDoc(out *ops.Show) error {
	if a.jsonOut {
		return a.printJSON(out)
	}
	a.printShow(a.stdout, out, time.Now())
	return nil
}

// printShow writes show's text output.
func (a *app) printShow(w io.Writer, s *ops.Show, now time.Time) {
	kv := func(k, v string) { fmt.Fprintf(w, "%-13s %s\n", k+":", v) }
	kv("Execution", a.paint(ansiBold, s.ID))
	kv("Function", s.Function)
	if s.Queue != "" {
		kv("Queue", s.Queue)
	}
	status := a.paint(statusColor(string(s.Status)), string(s.Status))
	if s.CancelRequested {
		status += " (cancel requested)"
	}
	kv("Status", status)
	if s.WaitingOn != "" {
		kv("Waiting on", s.WaitingOn)
	}
	kv("Attempts", strconv.Itoa(s.Attempts))
	if s.ParentID != "" {
		kv("Parent", s.ParentID)
	}
	if s.IdempotencyKey != "" {
		kv("Key", s.IdempotencyKey)
	}
	if s.Owner != "" {
		kv("Owner", s.Owner)
	}
	// A step that completed at its first attempt without durable
	// operations has no row: only its entry in its parent's journal, which
	// records its input and times unless an older version of Stent wrote it.
	recorded := !s.CreatedAt.IsZero()
	switch {
	case s.JournalOnly && recorded:
		kv("Recorded", "in its parent's journal only (no journal of its own)")
	case s.JournalOnly:
		kv("Recorded", "as an outcome in its parent's journal only (no input, times or journal of its own)")
	}
	if recorded {
		kv("Created", stamp(s.CreatedAt)+" ("+ago(s.CreatedAt, now)+")")
	}
	if s.EndedAt != nil {
		kv("Ended", stamp(*s.EndedAt)+" (after "+ops.RoundDur(s.EndedAt.Sub(s.CreatedAt)).String()+")")
	}
	if s.RunAt != nil {
		kv("Run at", stamp(*s.RunAt))
	}
	if s.Deadline != nil {
		kv("Deadline", stamp(*s.Deadline))
	}
	if recorded {
		kv("Input", indentJSON(s.Input, strings.Repeat(" ", 14)))
	}
	if string(s.Output) != "null" {
		kv("Output", indentJSON(s.Output, strings.Repeat(" ", 14)))
	}
	if s.CachedFrom != "" {
		kv("Cached from", s.CachedFrom)
	}
	if len(s.Counters) > 0 {
		kv("Counters", progressLine(s.Counters))
	}
	if len(s.State) > 0 {
		kv("State", progressLine(s.State))
	}
	if s.Error != nil {
		a.printError(w, "Error", s.Error)
	}
	for _, d := range s.DeadLetters {
		kv("Dead letter", d.ID+" ("+stamp(d.CreatedAt)+", "+strconv.Itoa(d.Attempts)+" attempts)")
	}
	fmt.Fprintln(w)
	a.printJournal(w, s.Journal)
	if len(s.Children) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, a.paint(ansiBold, "Children"))
		a.printTree(w, s.Children, "")
	}
}

// printError writes a recorded error with its kind and stack.
func (a *app) printError(w io.Writer, label string, e *ops.Error) {
	msg := e.Message
	if e.Kind != "" {
		msg += " [" + e.Kind + "]"
	}
	if e.NonRetryable {
		msg += " (not retryable)"
	}
	fmt.Fprintf(w, "%-13s %s\n", label+":", a.paint(ansiRed, msg))
	if e.Stack != "" {
		for _, line := range strings.Split(strings.TrimRight(e.Stack, "\n"), "\n") {
			fmt.Fprintln(w, "              "+a.paint(ansiDim, line))
		}
	}
}

// printJournal writes the journal as a table.
func (a *app) printJournal(w io.Writer, journal []ops.Entry) {
	if len(journal) == 0 {
		fmt.Fprintln(w, a.paint(ansiBold, "Journal")+": empty")
		return
	}
	fmt.Fprintln(w, a.paint(ansiBold, "Journal"))
	t := table{head: []string{"#", "KIND", "NAME", "STATE", "STARTED (UTC)", "TOOK", "DETAIL"}, statusCol: 3}
	for _, e := range journal {
		state, detail := "waiting", ""
		if e.Done {
			state = "completed"
		}
		switch {
		case e.Error != nil:
			state, detail = "failed", firstLine(e.Error.Message)
		case e.Kind == "sleep" && e.FireAt != nil:
			detail = "until " + stamp(*e.FireAt)
		case e.Kind == "signal" && !e.Done && e.FireAt != nil:
			detail = "times out at " + stamp(*e.FireAt)
		case e.Done && len(e.Output) > 0:
			detail = compactJSON(e.Output)
		}
		if e.ChildID != "" && e.Kind == "call" {
			detail = strings.TrimSpace(e.ChildID + "  " + detail)
		}
		started, took := "-", "-"
		if e.StartedAt != nil {
			started = e.StartedAt.UTC().Format("15:04:05.000")
			if e.EndedAt != nil {
				took = ops.RoundDur(e.EndedAt.Sub(*e.StartedAt)).String()
			}
		}
		t.rows = append(t.rows, []string{strconv.Itoa(e.Position), e.Kind, e.Name, state, started, took, detail})
	}
	a.printTable(w, t)
}

// printTree writes children as an indented tree with durations, the
// columns after the IDs aligned.
func (a *app) printTree(w io.Writer, nodes []*ops.TreeNode, indent string) {
	var t table
	t.statusCol = 2
	var walk func(nodes []*ops.TreeNode, indent string)
	walk = func(nodes []*ops.TreeNode, indent string) {
		for i, n := range nodes {
			branch, next := "├─ ", "│  "
			if i == len(nodes)-1 {
				branch, next = "└─ ", "   "
			}
			d := ops.RoundDur(time.Duration(n.DurationMS) * time.Millisecond).String()
			t.rows = append(t.rows, []string{indent + branch + n.ID, n.Function, string(n.Status), d,
				"attempts " + strconv.Itoa(n.Attempts)})
			walk(n.Children, indent+next)
		}
	}
	walk(nodes, indent)
	t.head = []string{"ID", "FUNCTION", "STATUS", "TOOK", ""}
	a.printTable(w, t)
}

// progressLine writes counters or state as "name=value" pairs in name
// order, values as they are (JSON for state).
func progressLine[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := any(m[k])
		if raw, ok := v.(json.RawMessage); ok {
			v = string(raw)
		}
		parts[i] = fmt.Sprintf("%s=%v", k, v)
	}
	return strings.Join(parts, "  ")
}
