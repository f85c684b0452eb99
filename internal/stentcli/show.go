package stentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/sdk"
)

// maxTree caps the executions show reads for the children tree.
const maxTree = 500

// entryJSON is a journal entry in show's --json output.
type entryJSON struct {
	Position  int             `json:"position"`
	Kind      string          `json:"kind"`
	Name      string          `json:"name,omitempty"`
	ChildID   string          `json:"child_id,omitempty"`
	FireAt    *time.Time      `json:"fire_at,omitempty"`
	Done      bool            `json:"done"`
	Output    json.RawMessage `json:"output,omitempty"`
	Error     *errorJSON      `json:"error,omitempty"`
	StartedAt *time.Time      `json:"started_at,omitempty"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
}

// treeJSON is a child in show's tree.
type treeJSON struct {
	ID         string      `json:"id"`
	Function   string      `json:"function"`
	Status     sdk.Status  `json:"status"`
	Attempts   int         `json:"attempts"`
	CreatedAt  time.Time   `json:"created_at"`
	EndedAt    *time.Time  `json:"ended_at,omitempty"`
	DurationMS int64       `json:"duration_ms"`
	Children   []*treeJSON `json:"children,omitempty"`
}

// showJSON is show's --json output.
type showJSON struct {
	execJSON
	Journal     []entryJSON `json:"journal"`
	Children    []*treeJSON `json:"children"`
	DeadLetters []deadJSON  `json:"dead_letters"`
}

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

// noSuchExecution is the error for an unknown execution ID.
func noSuchExecution(id string) error {
	return fmt.Errorf("no such execution %q: check the ID (stent list shows them)", id)
}

func (a *app) runShow(ctx context.Context, id string) error {
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	info, err := ex.Execution(ctx, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return noSuchExecution(id)
	}
	if err != nil {
		return err
	}
	out := showJSON{execJSON: toExecJSON(info), Journal: []entryJSON{}, DeadLetters: []deadJSON{}}
	journal, err := ex.Journal(ctx, id)
	if err != nil && !errors.Is(err, sdk.ErrNotFound) { // a step recorded only in its parent's journal has none
		return err
	}
	for _, e := range journal {
		j := entryJSON{Position: e.Position, Kind: e.Kind, Name: e.Name, ChildID: e.ChildID, FireAt: timePtr(e.FireAt),
			Done: e.Done, Error: toErrorJSON(e.Failure), StartedAt: timePtr(e.StartedAt), EndedAt: timePtr(e.EndedAt)}
		if len(e.Output) > 0 {
			j.Output = rawOrNull(e.Output)
		}
		out.Journal = append(out.Journal, j)
	}
	if out.Children, err = childTree(ctx, ex, id); err != nil {
		return err
	}
	dead, err := a.backend.DeadLettersOf(ctx, id)
	if err != nil {
		return fmt.Errorf("reading the dead letters of %s: %w", id, err)
	}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, toDeadJSON(d))
	}
	if a.jsonOut {
		return a.printJSON(out)
	}
	a.printShow(a.stdout, out, time.Now())
	return nil
}

// childTree reads the children of id, and theirs, up to maxTree in all,
// oldest first.
func childTree(ctx context.Context, ex *sdk.Executor, id string) ([]*treeJSON, error) {
	read := 0
	now := time.Now()
	var walk func(parent string) ([]*treeJSON, error)
	walk = func(parent string) ([]*treeJSON, error) {
		out := []*treeJSON{}
		if read >= maxTree {
			return out, nil
		}
		rows, err := ex.List(ctx, sdk.ListFilter{ParentID: parent, Limit: maxTree - read})
		if err != nil {
			return nil, fmt.Errorf("listing the children of %s: %w", parent, err)
		}
		read += len(rows)
		for i := len(rows) - 1; i >= 0; i-- {
			r := rows[i]
			n := &treeJSON{ID: r.ID, Function: r.Function, Status: r.Status, Attempts: r.Attempts,
				CreatedAt: r.CreatedAt, EndedAt: timePtr(r.EndedAt), DurationMS: runTime(r, now).Milliseconds()}
			if !r.CreatedAt.IsZero() { // a step recorded only in its parent's journal has no row, nor children
				if n.Children, err = walk(r.ID); err != nil {
					return nil, err
				}
			}
			out = append(out, n)
		}
		return out, nil
	}
	return walk(id)
}

// runTime is how long e has run: to its end once finished, to now
// otherwise; 0 when its times are not recorded.
func runTime(e sdk.ExecutionInfo, now time.Time) time.Duration {
	switch {
	case e.CreatedAt.IsZero():
		return 0
	case !e.EndedAt.IsZero():
		return e.EndedAt.Sub(e.CreatedAt)
	case e.Status.Terminal():
		return e.UpdatedAt.Sub(e.CreatedAt)
	}
	return now.Sub(e.CreatedAt)
}

// printShow writes show's text output.
func (a *app) printShow(w io.Writer, s showJSON, now time.Time) {
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
	if s.CreatedAt.IsZero() {
		// A step that completed at its first attempt without durable
		// operations has no row: only its outcome, in its parent's journal.
		kv("Recorded", "as an outcome in its parent's journal only (no input, times or journal of its own)")
	} else {
		kv("Created", stamp(s.CreatedAt)+" ("+ago(s.CreatedAt, now)+")")
	}
	if s.EndedAt != nil {
		kv("Ended", stamp(*s.EndedAt)+" (after "+roundDur(s.EndedAt.Sub(s.CreatedAt)).String()+")")
	}
	if s.RunAt != nil {
		kv("Run at", stamp(*s.RunAt))
	}
	if s.Deadline != nil {
		kv("Deadline", stamp(*s.Deadline))
	}
	if !s.CreatedAt.IsZero() {
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
func (a *app) printError(w io.Writer, label string, e *errorJSON) {
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
func (a *app) printJournal(w io.Writer, journal []entryJSON) {
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
				took = roundDur(e.EndedAt.Sub(*e.StartedAt)).String()
			}
		}
		t.rows = append(t.rows, []string{strconv.Itoa(e.Position), e.Kind, e.Name, state, started, took, detail})
	}
	a.printTable(w, t)
}

// printTree writes children as an indented tree with durations, the
// columns after the IDs aligned.
func (a *app) printTree(w io.Writer, nodes []*treeJSON, indent string) {
	var t table
	t.statusCol = 2
	var walk func(nodes []*treeJSON, indent string)
	walk = func(nodes []*treeJSON, indent string) {
		for i, n := range nodes {
			branch, next := "├─ ", "│  "
			if i == len(nodes)-1 {
				branch, next = "└─ ", "   "
			}
			d := roundDur(time.Duration(n.DurationMS) * time.Millisecond).String()
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
