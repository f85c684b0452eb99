package stentcli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/sdk"
)

// execJSON is an execution in --json output.
type execJSON struct {
	ID              string          `json:"id"`
	Function        string          `json:"function"`
	Queue           string          `json:"queue"`
	Status          sdk.Status      `json:"status"`
	ParentID        string          `json:"parent_id,omitempty"`
	RootID          string          `json:"root_id,omitempty"`
	IdempotencyKey  string          `json:"idempotency_key,omitempty"`
	Attempts        int             `json:"attempts"`
	Priority        int             `json:"priority"`
	Version         string          `json:"version,omitempty"`
	Owner           string          `json:"owner,omitempty"`
	Input           json.RawMessage `json:"input"`
	Output          json.RawMessage `json:"output"`
	Error           *errorJSON      `json:"error,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
	EndedAt         *time.Time      `json:"ended_at,omitempty"`
	RunAt           *time.Time      `json:"run_at,omitempty"`
	Deadline        *time.Time      `json:"deadline,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	WaitingOn       string          `json:"waiting_on,omitempty"`
	// CachedFrom, Counters and State are the execution's progress
	// (WithCache, Counter, SetState); show fills them, list does not.
	CachedFrom string                     `json:"cached_from,omitempty"`
	Counters   map[string]float64         `json:"counters,omitempty"`
	State      map[string]json.RawMessage `json:"state,omitempty"`
}

// errorJSON is a recorded failure in --json output.
type errorJSON struct {
	Message      string `json:"message"`
	Kind         string `json:"kind,omitempty"`
	NonRetryable bool   `json:"non_retryable,omitempty"`
	Stack        string `json:"stack,omitempty"`
}

// toErrorJSON is d for --json output (nil for nil).
func toErrorJSON(d *sdk.ErrorDetail) *errorJSON {
	if d == nil {
		return nil
	}
	return &errorJSON{Message: d.Message, Kind: d.Kind, NonRetryable: d.NonRetryable, Stack: d.Stack}
}

// timePtr is t, or nil for the zero time.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// displayState is state with each value as rawOrNull shows it (an
// encrypted value the CLI has no key for becomes a JSON string saying so).
func displayState(state map[string]json.RawMessage) map[string]json.RawMessage {
	if len(state) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(state))
	for k, v := range state {
		out[k] = rawOrNull(v)
	}
	return out
}

// toExecJSON is e for --json output.
func toExecJSON(e sdk.ExecutionInfo) execJSON {
	j := execJSON{ID: e.ID, Function: e.Function, Queue: e.Queue, Status: e.Status, ParentID: e.ParentID,
		RootID: e.RootID, IdempotencyKey: e.IdempotencyKey, Attempts: e.Attempts, Priority: e.Priority,
		Version: e.Version, Owner: e.Owner, Input: rawOrNull(e.Input), Output: rawOrNull(e.Output),
		Error: toErrorJSON(e.Failure), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, EndedAt: timePtr(e.EndedAt),
		RunAt: timePtr(e.RunAt), Deadline: timePtr(e.Deadline), CancelRequested: e.CancelRequested, WaitingOn: e.WaitingOn,
		CachedFrom: e.CachedFrom, Counters: e.Counters, State: displayState(e.State)}
	if j.Error == nil && e.Error != "" {
		j.Error = &errorJSON{Message: e.Error}
	}
	return j
}

// listJSON is the --json output of list.
type listJSON struct {
	Executions []execJSON `json:"executions"`
	// NextCursor, when not "", is the --cursor of the next page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// listFlags are list's filters.
type listFlags struct {
	status, function, queue, parent string
	since, until                    string
	cursor                          string
	limit                           int
}

func (a *app) listCmd() *cobra.Command {
	var f listFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List executions, newest first",
		Long: `List executions, newest first, a page at a time.

Filters combine: --status, --function, --queue, --parent (the children of an
execution), --since and --until (creation time: a duration back from now
such as 2h, or a time such as 2026-11-30T12:00:00Z). When more executions
match than --limit, the last line gives the --cursor of the next page.`,
		Example: `  stent list
  stent list --status failed --function charge_card
  stent list --since 1h --limit 20
  stent list --parent 01J9Z3K5X8V6Q2M4N7P1R0S9T8
  stent list --cursor MTc2NDUwMDAwMDAwMDAwMDow...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runList(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.status, "status", "", "pending, running, waiting, completed, failed, canceled or timed_out")
	fl.StringVar(&f.function, "function", "", "only executions of this function")
	fl.StringVar(&f.queue, "queue", "", "only executions on this queue")
	fl.StringVar(&f.parent, "parent", "", "only the children of this execution")
	fl.StringVar(&f.since, "since", "", "created at or after: a duration back from now (2h) or an RFC 3339 time")
	fl.StringVar(&f.until, "until", "", "created before: a duration back from now or an RFC 3339 time")
	fl.StringVar(&f.cursor, "cursor", "", "the next page, as printed by the previous one")
	fl.IntVar(&f.limit, "limit", 50, "executions per page (1 to 1000)")
	_ = c.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statusNames(), cobra.ShellCompDirectiveNoFileComp))
	return c
}

// statusNames are the valid statuses.
func statusNames() []string {
	return []string{"pending", "running", "waiting", "completed", "failed", "canceled", "timed_out"}
}

// filter turns the flags into an sdk.ListFilter, checking each.
func (f listFlags) filter(now time.Time) (sdk.ListFilter, error) {
	lf := sdk.ListFilter{Status: sdk.Status(f.status), Function: f.function, Queue: f.queue,
		ParentID: f.parent, After: f.cursor, Limit: f.limit}
	if f.status != "" && !lf.Status.Valid() {
		return lf, usagef("unknown --status %q: want one of %s", f.status, strings.Join(statusNames(), ", "))
	}
	if f.limit < 1 || f.limit > 1000 {
		return lf, usagef("--limit %d is out of range: want 1 to 1000", f.limit)
	}
	var err error
	if lf.Since, err = parseWhen(f.since, now, "--since"); err != nil {
		return lf, err
	}
	if lf.Until, err = parseWhen(f.until, now, "--until"); err != nil {
		return lf, err
	}
	return lf, nil
}

// parseWhen reads a time flag: a duration back from now, or RFC 3339.
func parseWhen(s string, now time.Time, flag string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usagef("invalid %s %q: want a duration such as 2h or a time such as 2026-11-30T12:00:00Z", flag, s)
	}
	return t, nil
}

func (a *app) runList(cmd *cobra.Command, f listFlags) error {
	ctx := cmd.Context()
	lf, err := f.filter(time.Now())
	if err != nil {
		return err
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	page, err := ex.ListPage(ctx, lf)
	if err != nil {
		if f.cursor != "" && strings.Contains(err.Error(), "cursor") {
			return usageError{err}
		}
		return err
	}
	if a.jsonOut {
		out := listJSON{Executions: make([]execJSON, len(page.Items)), NextCursor: page.Next}
		for i, r := range page.Items {
			out.Executions[i] = toExecJSON(r)
		}
		return a.printJSON(out)
	}
	if len(page.Items) == 0 {
		fmt.Fprintln(a.stdout, "no executions match")
		return nil
	}
	now := time.Now()
	// AGE is the time since the start, TOOK the run time (so far).
	t := table{head: []string{"ID", "FUNCTION", "QUEUE", "STATUS", "TRIES", "AGE", "TOOK", "ERROR"}, statusCol: 3}
	for _, r := range page.Items {
		t.rows = append(t.rows, []string{r.ID, r.Function, r.Queue, string(r.Status), strconv.Itoa(r.Attempts),
			age(r.CreatedAt, now), roundDur(runTime(r, now)).String(), firstLine(r.Error)})
	}
	a.printTable(a.stdout, t)
	if page.Next != "" {
		fmt.Fprintf(a.stdout, "more: stent list --cursor %s%s\n", page.Next, f.argsAgain())
	}
	return nil
}

// argsAgain is the filter flags again, for the next page's command line.
func (f listFlags) argsAgain() string {
	var b strings.Builder
	for _, kv := range [][2]string{{"status", f.status}, {"function", f.function}, {"queue", f.queue},
		{"parent", f.parent}, {"since", f.since}, {"until", f.until}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " --%s %s", kv[0], kv[1])
		}
	}
	if f.limit != 50 {
		fmt.Fprintf(&b, " --limit %d", f.limit)
	}
	return b.String()
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
