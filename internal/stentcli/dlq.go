package stentcli

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
)

func (a *app) dlqCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, replay and discard dead letters",
		Long: `The dead-letter queue holds executions that failed for good: their retries
ran out, or their error was not retryable. Replay runs one again from a
fresh attempt count, keeping what its journal recorded (a child's replay
resumes the parent that waits on it); discard drops the dead letter and
leaves the execution failed. Each takes a dead-letter ID or an execution ID.`,
		Example: `  stent dlq list
  stent dlq show 01J9Z4A2...
  stent dlq replay 01J9Z3K5X8V6Q2M4N7P1R0S9T8
  stent dlq replay-all --function charge_card`,
		Args: cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for \"stent dlq\": want list, show, replay, discard or replay-all", args[0])
			}
			return usagef("stent dlq needs a command: list, show, replay, discard or replay-all")
		},
	}
	c.AddCommand(a.dlqListCmd(), a.dlqShowCmd(), a.dlqActCmd("replay"), a.dlqActCmd("discard"), a.dlqReplayAllCmd())
	return c
}

func (a *app) dlqListCmd() *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:     "list",
		Short:   "List dead letters, oldest first",
		Example: "  stent dlq list\n  stent dlq list --json | jq '.[].execution_id'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 10000 {
				return usagef("--limit %d is out of range: want 1 to 10000", limit)
			}
			ds, err := a.deadLetters(cmd.Context(), limit)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ds)
			}
			if len(ds) == 0 {
				fmt.Fprintln(a.stdout, "the dead-letter queue is empty")
				return nil
			}
			now := time.Now()
			t := table{head: []string{"DEAD LETTER", "EXECUTION", "FUNCTION", "ATTEMPTS", "FAILED", "ERROR"}, statusCol: -1}
			for _, d := range ds {
				msg := ""
				if d.Error != nil {
					msg = firstLine(d.Error.Message)
				}
				t.rows = append(t.rows, []string{d.ID, d.ExecutionID, d.Function, strconv.Itoa(d.Attempts), ago(d.CreatedAt, now), msg})
			}
			a.printTable(a.stdout, t)
			return nil
		},
	}
	c.Flags().IntVar(&limit, "limit", 1000, "most dead letters listed")
	return c
}

// deadLetters lists up to limit dead letters, from the database or, with
// --node, from the node's API.
func (a *app) deadLetters(ctx context.Context, limit int) ([]ops.DeadLetter, error) {
	if a.remote() {
		var out []ops.DeadLetter
		err := a.call(ctx, "GET", "/api/dead-letters?limit="+strconv.Itoa(limit), nil, &out)
		return out, err
	}
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	ds, err := ops.DeadLetters(ctx, b, limit)
	if err != nil {
		return nil, err
	}
	return ops.DeadLetterList(ds), nil
}

func (a *app) dlqShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "show ID",
		Short:             "Show a dead letter (by dead-letter or execution ID) with its error and stack",
		Example:           "  stent dlq show 01J9Z4A2...\n  stent dlq show 01J9Z3K5X8V6Q2M4N7P1R0S9T8 --json",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeDeadLetter,
		RunE: func(cmd *cobra.Command, args []string) error {
			ds, err := a.resolveDead(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ds)
			}
			for i, d := range ds {
				if i > 0 {
					fmt.Fprintln(a.stdout)
				}
				kv := func(k, v string) { fmt.Fprintf(a.stdout, "%-13s %s\n", k+":", v) }
				kv("Dead letter", a.paint(ansiBold, d.ID))
				kv("Execution", d.ExecutionID)
				kv("Function", d.Function)
				kv("Attempts", strconv.Itoa(d.Attempts))
				kv("Failed", stamp(d.CreatedAt))
				kv("Input", indentJSON(d.Input, "              "))
				if d.Error != nil {
					a.printError(a.stdout, "Error", d.Error)
				}
			}
			return nil
		},
	}
}

// resolveDead finds the dead letters id names (ops.ResolveDead), in the
// database or, with --node, through the node's API.
func (a *app) resolveDead(ctx context.Context, id string) ([]ops.DeadLetter, error) {
	if a.remote() {
		var out []ops.DeadLetter
		err := a.call(ctx, "GET", "/api/dead-letters/"+url.PathEscape(id), nil, &out)
		return out, err
	}
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	ds, err := ops.ResolveDead(ctx, b, id)
	if err != nil {
		return nil, err
	}
	return ops.DeadLetterList(ds), nil
}

// dlqActCmd is dlq replay or dlq discard.
func (a *app) dlqActCmd(verb string) *cobra.Command {
	short := "Run a dead-lettered execution again from a fresh attempt count"
	if verb == "discard" {
		short = "Drop a dead letter; its execution stays failed"
	}
	return &cobra.Command{
		Use:               verb + " ID",
		Short:             short + " (by dead-letter or execution ID)",
		Example:           fmt.Sprintf("  stent dlq %s 01J9Z4A2...\n  stent dlq %s 01J9Z3K5X8V6Q2M4N7P1R0S9T8", verb, verb),
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeDeadLetter,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var done []ops.DeadAction
			var err error
			if a.remote() {
				err = a.call(ctx, "POST", "/api/dead-letters/"+url.PathEscape(args[0])+"/"+verb, struct{}{}, &done)
				if err == nil && !a.jsonOut {
					for _, d := range done {
						a.printDeadAction(d)
					}
				}
			} else {
				var b persistence.Backend
				var ds []*persistence.DeadLetter
				if b, err = a.openBackend(ctx, false); err != nil {
					return err
				}
				if ds, err = ops.ResolveDead(ctx, b, args[0]); err != nil {
					return err
				}
				done, err = ops.ApplyDead(ctx, b, verb, ds, false, a.deadPrinter(), a.wakeReplayed(ctx))
			}
			if a.jsonOut && err == nil {
				return a.printJSON(done)
			}
			return err
		},
	}
}

// deadPrinter prints a line for each dead letter acted on, unless --json.
func (a *app) deadPrinter() func(ops.DeadAction) {
	if a.jsonOut {
		return nil
	}
	return a.printDeadAction
}

func (a *app) printDeadAction(d ops.DeadAction) {
	fmt.Fprintf(a.stdout, "%s dead letter %s (execution %s, %s)\n", d.Action, d.DeadLetter, d.ExecutionID, d.Function)
}

// wakeReplayed wakes the nodes serving a replayed execution's queue.
func (a *app) wakeReplayed(ctx context.Context) func(*persistence.Execution) {
	return func(e *persistence.Execution) { a.wake(ctx, persistence.TopicQueue, e.Queue) }
}

func (a *app) dlqReplayAllCmd() *cobra.Command {
	var function string
	c := &cobra.Command{
		Use:     "replay-all",
		Short:   "Replay every dead letter (of one function with --function)",
		Example: "  stent dlq replay-all\n  stent dlq replay-all --function charge_card",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var done []ops.DeadAction
			if a.remote() {
				if err := a.call(ctx, "POST", "/api/dead-letters/replay-all", map[string]string{"function": function}, &done); err != nil {
					return err
				}
				if !a.jsonOut {
					for _, d := range done {
						a.printDeadAction(d)
					}
				}
			} else {
				b, err := a.openBackend(ctx, false)
				if err != nil {
					return err
				}
				if done, err = ops.ReplayAll(ctx, b, function, a.deadPrinter(), a.wakeReplayed(ctx)); err != nil {
					return err
				}
			}
			if a.jsonOut {
				return a.printJSON(done)
			}
			fmt.Fprintf(a.stdout, "%d dead letters replayed\n", len(done))
			return nil
		},
	}
	c.Flags().StringVar(&function, "function", "", "only the dead letters of this function")
	return c
}
