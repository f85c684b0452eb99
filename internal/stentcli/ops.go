package stentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
)

// payloadArg reads an optional JSON argument: null when absent, a usage
// error naming the fix when it is not JSON.
func payloadArg(args []string, i int, what string) (json.RawMessage, error) {
	if len(args) <= i {
		return json.RawMessage("null"), nil
	}
	raw := json.RawMessage(args[i])
	if !json.Valid(raw) {
		return nil, usagef("the %s %q is not JSON: quote it for the shell, e.g. '{\"approved\": true}' or '\"text\"'", what, args[i])
	}
	return raw, nil
}

func (a *app) signalCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "signal ID NAME [JSON]",
		Short: "Send a signal, with an optional JSON payload, to an execution",
		Long: `Send the signal NAME to execution ID, with a JSON payload (null when left
out). The signal is stored before the command returns; the execution
consumes it with WaitForSignal, now or later, once.`,
		Example: `  stent signal 01J9Z3K5X8V6Q2M4N7P1R0S9T8 approval '{"approved": true}'
  stent signal 01J9Z3K5X8V6Q2M4N7P1R0S9T8 proceed`,
		Args:              argsBetween(2, 3),
		ValidArgsFunction: a.completeExecution,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			payload, err := payloadArg(args, 2, "payload")
			if err != nil {
				return err
			}
			id, name := args[0], args[1]
			if a.remote() {
				var out ops.Action
				err := a.call(ctx, "POST", "/api/executions/"+url.PathEscape(id)+"/signal",
					map[string]any{"name": name, "payload": payload}, &out)
				if err != nil {
					return err
				}
			} else {
				ex, err := a.executor(ctx)
				if err != nil {
					return err
				}
				if err := ex.SendSignal(ctx, id, name, payload); err != nil {
					return ops.ExecutionError(err, id, "a signal")
				}
				a.wake(ctx, persistence.TopicExecution, id)
			}
			if a.jsonOut {
				return a.printJSON(ops.Action{ExecutionID: id, Action: "signaled", Signal: name})
			}
			fmt.Fprintf(a.stdout, "signal %q sent to %s\n", name, id)
			return nil
		},
	}
}

func (a *app) cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel an execution and every execution below it",
		Long: `Cancel execution ID and every execution below it. Pending, sleeping and
waiting ones end canceled at once; a running one stops at its next durable
operation.`,
		Example:           "  stent cancel 01J9Z3K5X8V6Q2M4N7P1R0S9T8",
		Args:              argsBetween(1, 1),
		ValidArgsFunction: a.completeExecution,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := args[0]
			if a.remote() {
				var out ops.Action
				if err := a.call(ctx, "POST", "/api/executions/"+url.PathEscape(id)+"/cancel", struct{}{}, &out); err != nil {
					return err
				}
			} else {
				ex, err := a.executor(ctx)
				if err != nil {
					return err
				}
				if err := ex.Cancel(ctx, id); err != nil {
					return ops.ExecutionError(err, id, "cancel")
				}
				a.wakeAround(ctx, id)
			}
			if a.jsonOut {
				return a.printJSON(ops.Action{ExecutionID: id, Action: "canceled"})
			}
			fmt.Fprintf(a.stdout, "cancel of %s requested\n", id)
			return nil
		},
	}
}

// wakeAround wakes the nodes about id and its parent: a running body
// stops, a waiting parent reads its child's outcome.
func (a *app) wakeAround(ctx context.Context, id string) {
	a.wake(ctx, persistence.TopicExecution, id)
	if e, err := a.backend.GetExecution(ctx, id); err == nil {
		if e.ParentID != "" {
			a.wake(ctx, persistence.TopicExecution, e.ParentID)
		} else if e.Status.Terminal() {
			a.wake(ctx, persistence.TopicDone, id)
		}
	}
}

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create Stent's tables, or bring them up to this version",
		Long: `Create Stent's tables in the database, or migrate them to this version of
stent. It is safe to run again, and while nodes run. It is the only command
that creates anything: a SQLite file that does not exist is created.`,
		Example: "  stent migrate --db ./stent.db\n  stent migrate --db postgres://postgres@127.0.0.1:5432/app --schema stent",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			b, err := a.openBackend(ctx, true)
			if err != nil {
				return err
			}
			if err := b.Init(ctx); err != nil {
				if errors.Is(err, persistence.ErrSchemaTooNew) {
					return fmt.Errorf("%w: this database was written by a newer stent; use that version", err)
				}
				return fmt.Errorf("migrating: %w", err)
			}
			if a.jsonOut {
				return a.printJSON(map[string]string{"result": "up to date"})
			}
			fmt.Fprintln(a.stdout, "the schema is up to date")
			return nil
		},
	}
}
