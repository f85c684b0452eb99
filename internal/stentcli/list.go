package stentcli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

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
	t, err := ops.ParseWhen(s, now)
	if err != nil {
		return t, usagef("invalid %s %q: %v", flag, s, err)
	}
	return t, nil
}

func (a *app) runList(cmd *cobra.Command, f listFlags) error {
	ctx := cmd.Context()
	lf, err := f.filter(time.Now())
	if err != nil {
		return err
	}
	page, err := a.listPage(ctx, f, lf)
	if err != nil {
		if f.cursor != "" && strings.Contains(err.Error(), "cursor") {
			return usageError{err}
		}
		return err
	}
	if a.jsonOut {
		return a.printJSON(page)
	}
	if len(page.Executions) == 0 {
		fmt.Fprintln(a.stdout, "no executions match")
		return nil
	}
	now := time.Now()
	// AGE is the time since the start, TOOK the run time (so far).
	t := table{head: []string{"ID", "FUNCTION", "QUEUE", "STATUS", "TRIES", "AGE", "TOOK", "ERROR"}, statusCol: 3}
	for _, r := range page.Executions {
		msg := ""
		if r.Error != nil {
			msg = r.Error.Message
		}
		t.rows = append(t.rows, []string{r.ID, r.Function, r.Queue, string(r.Status), strconv.Itoa(r.Attempts),
			age(r.CreatedAt, now), ops.RoundDur(r.RunTime(now)).String(), firstLine(msg)})
	}
	a.printTable(a.stdout, t)
	if page.NextCursor != "" {
		fmt.Fprintf(a.stdout, "more: stent list --cursor %s%s\n", page.NextCursor, f.argsAgain())
	}
	return nil
}

// listPage reads the page of lf from the database or, with --node, the
// page of f from the node's API.
func (a *app) listPage(ctx context.Context, f listFlags, lf sdk.ListFilter) (ops.List, error) {
	if a.remote() {
		q := url.Values{}
		for _, kv := range [][2]string{{"status", f.status}, {"function", f.function}, {"queue", f.queue},
			{"parent", f.parent}, {"cursor", f.cursor}} {
			if kv[1] != "" {
				q.Set(kv[0], kv[1])
			}
		}
		for _, kv := range []struct {
			name string
			t    time.Time
		}{{"since", lf.Since}, {"until", lf.Until}} {
			if !kv.t.IsZero() {
				q.Set(kv.name, kv.t.UTC().Format(time.RFC3339Nano))
			}
		}
		q.Set("limit", strconv.Itoa(f.limit))
		var out ops.List
		err := a.call(ctx, "GET", "/api/executions?"+q.Encode(), nil, &out)
		return out, err
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return ops.List{}, err
	}
	return ops.ListPage(ctx, ex, lf, "")
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
