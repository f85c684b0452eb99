package stentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

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
				return a.printJSON(deadListJSON(ds))
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

// deadLetters opens the database and lists up to limit dead letters.
func (a *app) deadLetters(ctx context.Context, limit int) ([]*persistence.DeadLetter, error) {
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	ds, err := b.ListDeadLetters(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	return ds, nil
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
				return a.printJSON(deadListJSON(ds))
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
					a.printError(a.stdout, "Error", errorOf(d.Error))
				}
			}
			return nil
		},
	}
}

// resolveDead finds the dead letters id names: the dead letter of that ID,
// or else those of the execution of that ID. An execution without one is
// an error that says it is not a dead letter.
func (a *app) resolveDead(ctx context.Context, id string) ([]*persistence.DeadLetter, error) {
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	d, err := b.GetDeadLetter(ctx, id)
	if err == nil {
		return []*persistence.DeadLetter{d}, nil
	}
	if !errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("reading dead letter %s: %w", id, err)
	}
	ds, err := b.DeadLettersOf(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", id, err)
	}
	if len(ds) > 0 {
		return ds, nil
	}
	e, err := b.GetExecution(ctx, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("no such dead letter or execution %q: stent dlq list shows the dead letters", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading execution %s: %w", id, err)
	}
	return nil, fmt.Errorf("execution %s is not a dead letter (status %s): only executions that failed for good are in the dead-letter queue (stent dlq list)", id, e.Status)
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
			ds, err := a.resolveDead(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			done, err := a.applyDead(cmd.Context(), verb, ds, false)
			if a.jsonOut && err == nil {
				return a.printJSON(done)
			}
			return err
		},
	}
}

// deadJSON is a dead letter in --json output.
type deadJSON struct {
	ID          string          `json:"id"`
	ExecutionID string          `json:"execution_id"`
	Function    string          `json:"function"`
	Input       json.RawMessage `json:"input"`
	Error       *errorJSON      `json:"error,omitempty"`
	Attempts    int             `json:"attempts"`
	CreatedAt   time.Time       `json:"created_at"`
}

// toDeadJSON is d for --json output.
func toDeadJSON(d *persistence.DeadLetter) deadJSON {
	return deadJSON{ID: d.ID, ExecutionID: d.ExecutionID, Function: d.Function, Input: rawOrNull(d.Input),
		Error: errorOf(d.Error), Attempts: d.Attempts, CreatedAt: d.CreatedAt}
}

// deadListJSON is ds for --json output.
func deadListJSON(ds []*persistence.DeadLetter) []deadJSON {
	out := make([]deadJSON, len(ds))
	for i, d := range ds {
		out[i] = toDeadJSON(d)
	}
	return out
}

// errorOf is a recorded failure for output (nil for nil).
func errorOf(e *persistence.ErrorInfo) *errorJSON {
	if e == nil {
		return nil
	}
	return &errorJSON{Message: e.Message, Kind: string(e.Kind), NonRetryable: e.NonRetryable, Stack: e.Stack}
}

// deadActionJSON is one dead letter replayed or discarded.
type deadActionJSON struct {
	DeadLetter  string `json:"dead_letter"`
	ExecutionID string `json:"execution_id"`
	Function    string `json:"function"`
	Action      string `json:"action"`
}

// applyDead replays or discards ds, printing a line for each unless
// --json, and wakes the nodes of the executions replayed. With skipGone, a
// dead letter gone meanwhile (a parent's, replayed with its child's) is
// passed over.
func (a *app) applyDead(ctx context.Context, verb string, ds []*persistence.DeadLetter, skipGone bool) ([]deadActionJSON, error) {
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	done := []deadActionJSON{}
	for _, d := range ds {
		past := "replayed"
		if verb == "discard" {
			past = "discarded"
			err = b.DeleteDeadLetter(ctx, d.ID)
		} else {
			var e *persistence.Execution
			if e, err = b.ReplayDeadLetter(ctx, d.ID); err == nil {
				a.wake(ctx, persistence.TopicQueue, e.Queue)
			}
		}
		if errors.Is(err, persistence.ErrNotFound) {
			if skipGone {
				continue
			}
			err = fmt.Errorf("dead letter %s is gone (replayed or discarded meanwhile)", d.ID)
		}
		if err != nil {
			return done, fmt.Errorf("%s dead letter %s: %w", verb, d.ID, err)
		}
		done = append(done, deadActionJSON{DeadLetter: d.ID, ExecutionID: d.ExecutionID, Function: d.Function, Action: past})
		if !a.jsonOut {
			fmt.Fprintf(a.stdout, "%s dead letter %s (execution %s, %s)\n", past, d.ID, d.ExecutionID, d.Function)
		}
	}
	return done, nil
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
			done := []deadActionJSON{}
			for {
				ds, err := a.deadLetters(ctx, 1000)
				if err != nil {
					return err
				}
				var pick []*persistence.DeadLetter
				for _, d := range ds {
					if function == "" || d.Function == function {
						pick = append(pick, d)
					}
				}
				got, err := a.applyDead(ctx, "replay", pick, true)
				done = append(done, got...)
				if err != nil {
					return err
				}
				if len(ds) < 1000 || len(pick) == 0 {
					break
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
