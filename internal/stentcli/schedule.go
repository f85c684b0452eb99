package stentcli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

func (a *app) scheduleCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "schedule",
		Short: "List, show, create, pause, resume, delete, trigger and backfill schedules",
		Long: `A schedule starts a function at every tick of a cron expression or an
interval, each tick exactly once across the nodes (docs/schedules.md). Its
state is in the database: the serving nodes fire it; this command manages it.`,
		Example: `  stent schedule list
  stent schedule create nightly-report '0 2 * * *' nightly_report '"daily"' --tz Europe/Paris
  stent schedule pause nightly-report --note "migration tonight"
  stent schedule backfill nightly-report --from 2026-11-28T00:00:00Z --to 2026-11-30T00:00:00Z`,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			const cmds = "list, show, create, pause, resume, delete, trigger or backfill"
			if len(args) > 0 {
				return usagef("unknown command %q for \"stent schedule\": want %s", args[0], cmds)
			}
			return usagef("stent schedule needs a command: %s", cmds)
		},
	}
	c.AddCommand(a.scheduleListCmd(), a.scheduleShowCmd(), a.scheduleCreateCmd(), a.schedulePauseCmd(),
		a.scheduleNameCmd("resume", "Take ticks again, from the first tick after now"),
		a.scheduleNameCmd("delete", "Remove a schedule and its record of ticks; its executions stay"),
		a.scheduleNameCmd("trigger", "Start one execution of a schedule now, outside its spec"),
		a.scheduleBackfillCmd())
	return c
}

// tickJSON is a schedule's tick in --json output.
type tickJSON struct {
	At          time.Time `json:"at"`
	LastAt      time.Time `json:"last_at"`
	Count       int       `json:"count"`
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	ExecutionID string    `json:"execution_id,omitempty"`
}

// scheduleState is a schedule's state in a word.
func scheduleState(s ops.Schedule) string {
	switch {
	case s.Paused:
		return "paused"
	case s.NextRunAt == nil:
		return "ended"
	}
	return "active"
}

// scheduleError turns the SDK's errors about a schedule into ones that
// name the fix.
func scheduleError(err error, name string) error {
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		return fmt.Errorf("no such schedule %q: stent schedule list shows them", name)
	case errors.Is(err, sdk.ErrExists):
		return fmt.Errorf("schedule %q exists already: stent schedule show %s shows it; delete it first to make it again", name, name)
	}
	return err
}

func (a *app) scheduleListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the schedules, by name",
		Example: "  stent schedule list\n  stent schedule list --json | jq '.[].next_run_at'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ss, err := a.schedules(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ss)
			}
			if len(ss) == 0 {
				fmt.Fprintln(a.stdout, "no schedules")
				return nil
			}
			t := table{head: []string{"NAME", "STATE", "SPEC", "FUNCTION", "NEXT RUN", "OVERLAP", "LAST EXECUTION"}, statusCol: -1}
			for _, s := range ss {
				next := "-"
				if s.NextRunAt != nil {
					next = stamp(*s.NextRunAt)
				}
				spec := s.Spec
				if s.TimeZone != "" {
					spec += " (" + s.TimeZone + ")"
				}
				t.rows = append(t.rows, []string{s.Name, scheduleState(s), spec, s.Function, next, s.Overlap, s.LastExecutionID})
			}
			a.printTable(a.stdout, t)
			return nil
		},
	}
}

// schedules reads the schedules, from the node's API with --node, else
// from the database.
func (a *app) schedules(ctx context.Context) ([]ops.Schedule, error) {
	return read(ctx, a, "/api/schedules", func(ctx context.Context, ex *sdk.Executor) ([]ops.Schedule, error) {
		infos, err := ex.ListSchedules(ctx)
		out := make([]ops.Schedule, len(infos))
		for i, s := range infos {
			out[i] = ops.ToSchedule(s)
		}
		return out, err
	})
}

// scheduleShowJSON is the --json output of schedule show.
type scheduleShowJSON struct {
	Schedule ops.Schedule `json:"schedule"`
	Ticks    []tickJSON   `json:"ticks"`
}

func (a *app) scheduleShowCmd() *cobra.Command {
	var ticks int
	c := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a schedule and what became of its latest ticks",
		Example:           "  stent schedule show nightly-report\n  stent schedule show nightly-report --ticks 100 --json",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeSchedule,
		RunE: func(cmd *cobra.Command, args []string) error {
			if ticks < 1 || ticks > 1000 {
				return usagef("--ticks %d is out of range: want 1 to 1000", ticks)
			}
			return a.showSchedule(cmd.Context(), args[0], ticks)
		},
	}
	c.Flags().IntVar(&ticks, "ticks", 20, "most recent ticks shown")
	return c
}

func (a *app) showSchedule(ctx context.Context, name string, n int) error {
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	s, err := ex.GetSchedule(ctx, name)
	if err != nil {
		return scheduleError(err, name)
	}
	ts, err := ex.ScheduleTicks(ctx, name, n)
	if err != nil {
		return err
	}
	if a.jsonOut {
		out := scheduleShowJSON{Schedule: ops.ToSchedule(s), Ticks: make([]tickJSON, len(ts))}
		for i, t := range ts {
			out.Ticks[i] = tickJSON{At: t.At, LastAt: t.LastAt, Count: t.Count, Kind: t.Kind, Status: t.Status,
				Reason: t.Reason, ExecutionID: t.ExecutionID}
		}
		return a.printJSON(out)
	}
	a.printSchedule(s)
	if len(ts) == 0 {
		fmt.Fprintln(a.stdout, "\nNo ticks yet.")
		return nil
	}
	fmt.Fprintln(a.stdout, "\nTicks (newest first):")
	t := table{head: []string{"AT", "KIND", "STATUS", "EXECUTION / REASON"}, statusCol: -1}
	for _, tk := range ts {
		at, what := stamp(tk.At), tk.ExecutionID
		if tk.Count > 1 {
			at = fmt.Sprintf("%s .. %s (%d ticks)", stamp(tk.At), stamp(tk.LastAt), tk.Count)
		}
		if tk.Status != "started" {
			what = tk.Reason
		}
		t.rows = append(t.rows, []string{at, tk.Kind, tk.Status, what})
	}
	a.printTable(a.stdout, t)
	return nil
}

// printSchedule writes a schedule's fields, one a line.
func (a *app) printSchedule(s sdk.ScheduleInfo) {
	kv := func(k, v string) { fmt.Fprintf(a.stdout, "%-15s %s\n", k+":", v) }
	kv("Schedule", a.paint(ansiBold, s.Name))
	state := scheduleState(ops.ToSchedule(s))
	if s.Note != "" {
		state += " (" + s.Note + ")"
	}
	kv("State", state)
	spec := s.Spec
	if s.TimeZone != "" {
		spec += " in " + s.TimeZone
	}
	kv("Spec", spec)
	kv("Function", s.Function+" on queue "+s.Queue)
	kv("Input", compactJSON(s.Input))
	next := "none (ended)"
	if !s.NextRunAt.IsZero() {
		next = stamp(s.NextRunAt)
	}
	kv("Next run", next)
	kv("Overlap", string(s.Overlap))
	catchup := s.CatchupWindow.String() + ", oldest first"
	if s.CatchupLatest {
		catchup = s.CatchupWindow.String() + ", only the latest"
	}
	kv("Catch-up", catchup)
	if s.Jitter > 0 {
		kv("Jitter", s.Jitter.String())
	}
	if !s.StartAt.IsZero() {
		kv("Starts", stamp(s.StartAt))
	}
	if !s.EndAt.IsZero() {
		kv("Ends", stamp(s.EndAt))
	}
	if !s.BufferedAt.IsZero() {
		kv("Buffered tick", stamp(s.BufferedAt))
	}
	if s.LastExecutionID != "" {
		kv("Last execution", s.LastExecutionID)
	}
	kv("Created", stamp(s.CreatedAt))
}

// scheduleFlags are create's options.
type scheduleFlags struct {
	tz, start, end, overlap, queue string
	jitter, window                 time.Duration
	latest, paused                 bool
	priority                       int
}

func (a *app) scheduleCreateCmd() *cobra.Command {
	var f scheduleFlags
	c := &cobra.Command{
		Use:   "create NAME SPEC FUNCTION [JSON]",
		Short: "Make a schedule that starts FUNCTION with a JSON input at every tick of SPEC",
		Long: `Make a schedule. SPEC is a cron expression (five fields, or six with seconds
first; @daily and the like; a CRON_TZ= prefix) or an interval ("@every 5m").
The input is JSON (null when left out). The function need not exist in this
program: a node that has it runs the executions. A SPEC that does not parse
is refused with the parser's message.`,
		Example: `  stent schedule create nightly-report '0 2 * * *' nightly_report '"daily"' --tz Europe/Paris
  stent schedule create heartbeat '@every 30s' ping --overlap skip
  stent schedule create sync '*/5 * * * *' sync_accounts --overlap buffer_one --catchup-window 1h --catchup-latest`,
		Args: argsBetween(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runScheduleCreate(cmd.Context(), args, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.tz, "tz", "", "IANA time zone the cron expression is read in (default UTC)")
	fl.DurationVar(&f.jitter, "jitter", 0, "delay each tick's execution by up to this much")
	fl.StringVar(&f.start, "start", "", "earliest tick: an RFC 3339 time (default now)")
	fl.StringVar(&f.end, "end", "", "latest tick: an RFC 3339 time (default never)")
	fl.StringVar(&f.overlap, "overlap", string(sdk.OverlapSkip), "a tick while the previous execution runs: skip, buffer_one, allow_all or cancel_previous")
	fl.DurationVar(&f.window, "catchup-window", sdk.DefaultCatchupWindow, "how late a missed tick may still start after an outage")
	fl.BoolVar(&f.latest, "catchup-latest", false, "of the missed ticks within the window, start only the newest")
	fl.StringVar(&f.queue, "queue", "", "queue of the executions (default \"default\")")
	fl.IntVar(&f.priority, "priority", 0, "priority of the executions: higher runs first")
	fl.BoolVar(&f.paused, "paused", false, "create it paused")
	return c
}

func (a *app) runScheduleCreate(ctx context.Context, args []string, f scheduleFlags) error {
	input, err := payloadArg(args, 3, "input")
	if err != nil {
		return err
	}
	opts := []sdk.ScheduleOption{sdk.WithOverlap(sdk.Overlap(f.overlap)), sdk.WithCatchupWindow(f.window),
		sdk.WithJitter(f.jitter), sdk.WithSchedulePriority(f.priority)}
	if f.tz != "" {
		opts = append(opts, sdk.WithTimeZone(f.tz))
	}
	for _, b := range []struct {
		flag, value string
		opt         func(time.Time) sdk.ScheduleOption
	}{{"--start", f.start, sdk.WithStartAt}, {"--end", f.end, sdk.WithEndAt}} {
		if b.value == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.value)
		if err != nil {
			return usagef("invalid %s %q: want a time such as 2026-11-30T12:00:00Z", b.flag, b.value)
		}
		opts = append(opts, b.opt(t))
	}
	if f.latest {
		opts = append(opts, sdk.WithCatchupLatest())
	}
	if f.queue != "" {
		opts = append(opts, sdk.WithScheduleQueue(f.queue))
	}
	if f.paused {
		opts = append(opts, sdk.WithPaused())
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	s, err := ex.CreateSchedule(ctx, args[0], args[1], args[2], input, opts...)
	if err != nil {
		if errors.Is(err, sdk.ErrInvalidSchedule) {
			return usageError{err} // a spec, zone or option the SDK refused, with its reason
		}
		return scheduleError(err, args[0])
	}
	if a.jsonOut {
		return a.printJSON(ops.ToSchedule(s))
	}
	a.printSchedule(s)
	return nil
}

func (a *app) schedulePauseCmd() *cobra.Command {
	var note string
	c := &cobra.Command{
		Use:               "pause NAME",
		Short:             "Stop a schedule taking ticks until it is resumed; running executions go on",
		Example:           "  stent schedule pause nightly-report --note \"migration tonight\"",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeSchedule,
		RunE: func(cmd *cobra.Command, args []string) error {
			ex, err := a.executor(cmd.Context())
			if err != nil {
				return err
			}
			s, err := ex.PauseSchedule(cmd.Context(), args[0], note)
			if err != nil {
				return scheduleError(err, args[0])
			}
			return a.printScheduleResult(s, "paused")
		},
	}
	c.Flags().StringVar(&note, "note", "", "why it is paused (shown by show and list --json)")
	return c
}

// printScheduleResult prints a schedule after a change: its JSON, or a line.
func (a *app) printScheduleResult(s sdk.ScheduleInfo, what string) error {
	if a.jsonOut {
		return a.printJSON(ops.ToSchedule(s))
	}
	line := fmt.Sprintf("schedule %s %s", s.Name, what)
	if !s.Paused && !s.NextRunAt.IsZero() {
		line += "; next run " + stamp(s.NextRunAt)
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

// scheduleNameCmd is schedule resume, delete or trigger.
func (a *app) scheduleNameCmd(verb, short string) *cobra.Command {
	return &cobra.Command{
		Use:               verb + " NAME",
		Short:             short,
		Example:           "  stent schedule " + verb + " nightly-report",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeSchedule,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			ex, err := a.executor(ctx)
			if err != nil {
				return err
			}
			switch verb {
			case "resume":
				s, err := ex.ResumeSchedule(ctx, name)
				if err != nil {
					return scheduleError(err, name)
				}
				return a.printScheduleResult(s, "resumed")
			case "delete":
				if err := ex.DeleteSchedule(ctx, name); err != nil {
					return scheduleError(err, name)
				}
				if a.jsonOut {
					return a.printJSON(map[string]string{"deleted": name})
				}
				fmt.Fprintf(a.stdout, "schedule %s deleted\n", name)
				return nil
			}
			id, err := ex.TriggerSchedule(ctx, name)
			if err != nil {
				return scheduleError(err, name)
			}
			a.wakeSchedule(ctx, ex, name)
			return a.printStartedIDs([]string{id})
		},
	}
}

// wakeSchedule wakes the nodes that serve the queue of schedule name, for
// the executions a trigger or a backfill started.
func (a *app) wakeSchedule(ctx context.Context, ex *sdk.Executor, name string) {
	if s, err := ex.GetSchedule(ctx, name); err == nil {
		a.wake(ctx, persistence.TopicQueue, s.Queue)
	}
}

// completeSchedule completes the first argument with the schedules' names.
func (a *app) completeSchedule(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer a.close() //nolint:errcheck // completion prints nothing of its errors
	ex, err := a.executor(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ss, err := ex.ListSchedules(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := make([]cobra.Completion, len(ss))
	for i, s := range ss {
		out[i] = cobra.CompletionWithDesc(s.Name, s.Spec+" "+s.Function+" "+scheduleState(ops.ToSchedule(s)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// printStartedIDs prints the executions a trigger or a backfill started
// (or found started), one a line, or as JSON.
func (a *app) printStartedIDs(ids []string) error {
	if a.jsonOut {
		return a.printJSON(map[string][]string{"executions": ids})
	}
	for _, id := range ids {
		fmt.Fprintln(a.stdout, id)
	}
	return nil
}

func (a *app) scheduleBackfillCmd() *cobra.Command {
	var from, to string
	c := &cobra.Command{
		Use:   "backfill NAME --from TIME --to TIME",
		Short: "Start the ticks of a schedule's spec in a past time range (ticks that ran are not started again)",
		Long: `Start the ticks of NAME's spec from --from to --to (both included; --to no
later than now; at most 10000 ticks). A tick whose execution exists already
(it ran, or an earlier backfill started it) is not started again: its
execution's ID is printed all the same. Times are RFC 3339, or a duration
back from now (2h).`,
		Example: "  stent schedule backfill nightly-report --from 2026-11-28T00:00:00Z --to 2026-11-30T00:00:00Z\n" +
			"  stent schedule backfill heartbeat --from 1h --to 0s",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeSchedule,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			if from == "" || to == "" {
				return usagef("stent schedule backfill needs --from and --to")
			}
			f, err := parseWhen(from, now, "--from")
			if err != nil {
				return err
			}
			t, err := parseWhen(to, now, "--to")
			if err != nil {
				return err
			}
			ex, err := a.executor(cmd.Context())
			if err != nil {
				return err
			}
			ids, err := ex.BackfillSchedule(cmd.Context(), args[0], f, t)
			if err != nil {
				return scheduleError(err, args[0])
			}
			a.wakeSchedule(cmd.Context(), ex, args[0])
			if !a.jsonOut {
				fmt.Fprintln(a.stderr, strconv.Itoa(len(ids))+" ticks from "+stamp(f)+" to "+stamp(t)+":")
			}
			return a.printStartedIDs(ids)
		},
	}
	c.Flags().StringVar(&from, "from", "", "first tick time: RFC 3339, or a duration back from now")
	c.Flags().StringVar(&to, "to", "", "last tick time: RFC 3339, or a duration back from now")
	return c
}
