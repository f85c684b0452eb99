package stentcli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// startFlags are start's options.
type startFlags struct {
	key, queue string
	priority   int
	wait       bool
	timeout    time.Duration
}

func (a *app) startCmd() *cobra.Command {
	var f startFlags
	c := &cobra.Command{
		Use:   "start FUNCTION [JSON]",
		Short: "Start an execution of a function that the nodes have",
		Long: `Start an execution of FUNCTION with a JSON input (null when left out), and
print its ID. The function need not exist in this program: a node that has
it runs it. Give --queue when the function was registered on a queue other
than "default". With --key a second start with the same key returns the
first execution instead of starting another. With --wait the command waits
for the end and prints the output (exit 1 if it did not complete).`,
		Example: `  stent start order_workflow '["ORD-001", "ORD-002"]'
  stent start charge_card '{"order": "ORD-7", "cents": 1299}' --key charge:ORD-7 --wait
  stent start nightly_report --queue reports`,
		Args: argsBetween(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error { return a.runStart(cmd.Context(), args, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.key, "key", "", "idempotency key: a start with a key already used returns that execution")
	fl.StringVar(&f.queue, "queue", sdk.DefaultQueue, "queue of the execution: the one the function was registered on")
	fl.IntVar(&f.priority, "priority", 0, "priority: higher runs first")
	fl.BoolVar(&f.wait, "wait", false, "wait for the execution to end and print its output")
	fl.DurationVar(&f.timeout, "timeout", 0, "with --wait, give up waiting after this long (0: no limit)")
	return c
}

// startJSON is the --json output of start.
type startJSON struct {
	ID string `json:"id"`
	// Execution is the execution's state: as started, or as it ended with
	// --wait.
	Execution ops.Execution `json:"execution"`
}

func (a *app) runStart(ctx context.Context, args []string, f startFlags) error {
	function := args[0]
	input, err := payloadArg(args, 1, "input")
	if err != nil {
		return err
	}
	if f.queue == "" {
		return usagef("--queue is empty: leave it out for the default queue")
	}
	st, err := a.startTarget(ctx)
	if err != nil {
		return err
	}
	e, err := st.start(ctx, function, input, f)
	if err != nil {
		return err
	}
	if !e.Status.Terminal() {
		if ms, err := st.members(ctx); err == nil {
			a.warnUnserved(e, ms)
		}
	}
	if f.wait {
		if e, err = a.waitEnd(ctx, st, e.ID, f.timeout); err != nil {
			return err
		}
	}
	if a.jsonOut {
		if err := a.printJSON(startJSON{ID: e.ID, Execution: e}); err != nil {
			return err
		}
	} else {
		a.printStarted(e, f.wait)
	}
	if f.wait && e.Status != sdk.StatusCompleted {
		return exitError(ExitFailed)
	}
	return nil
}

// starter is where start writes and reads: the database, or a node's API
// with --node.
type starter struct {
	start   func(ctx context.Context, function string, input json.RawMessage, f startFlags) (ops.Execution, error)
	get     func(ctx context.Context, id string) (ops.Execution, error)
	members func(ctx context.Context) ([]ops.Member, error)
}

// startTarget returns where this run of start writes and reads.
func (a *app) startTarget(ctx context.Context) (starter, error) {
	if a.remote() {
		return starter{start: a.startRemote, get: a.executionRemote, members: a.members}, nil
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return starter{}, err
	}
	start := func(ctx context.Context, function string, input json.RawMessage, f startFlags) (ops.Execution, error) {
		opts := []sdk.CallOption{sdk.WithCallQueue(f.queue), sdk.WithCallPriority(f.priority)}
		if f.key != "" {
			opts = append(opts, sdk.WithIdempotencyKey(f.key))
		}
		id, err := ex.StartByName(ctx, function, input, opts...)
		if err != nil {
			return ops.Execution{}, err
		}
		a.wake(ctx, persistence.TopicQueue, f.queue)
		info, err := ex.Execution(ctx, id)
		return ops.ToExecution(info), err
	}
	get := func(ctx context.Context, id string) (ops.Execution, error) {
		info, err := ex.Execution(ctx, id)
		return ops.ToExecution(info), err
	}
	return starter{start: start, get: get, members: a.members}, nil
}

// startRemote starts an execution through POST /api/executions.
func (a *app) startRemote(ctx context.Context, function string, input json.RawMessage, f startFlags) (ops.Execution, error) {
	body := map[string]any{"function": function, "input": input, "queue": f.queue, "priority": f.priority}
	if f.key != "" {
		body["idempotency_key"] = f.key
	}
	var out startJSON
	if err := a.call(ctx, "POST", "/api/executions", body, &out); err != nil {
		return ops.Execution{}, err
	}
	return out.Execution, nil
}

// executionRemote reads an execution through GET /api/executions/{id}.
func (a *app) executionRemote(ctx context.Context, id string) (ops.Execution, error) {
	var s ops.Show
	err := a.call(ctx, "GET", "/api/executions/"+url.PathEscape(id), nil, &s)
	return s.Execution, err
}

// printStarted writes start's text output: the ID, and with --wait how it
// ended.
func (a *app) printStarted(e ops.Execution, waited bool) {
	fmt.Fprintln(a.stdout, e.ID)
	if !waited {
		return
	}
	fmt.Fprintf(a.stdout, "%s after %s\n", a.paint(statusColor(string(e.Status)), string(e.Status)), ops.RoundDur(e.RunTime(time.Now())))
	if e.Status == sdk.StatusCompleted {
		fmt.Fprintln(a.stdout, indentJSON(e.Output, ""))
	} else if e.Error != nil {
		a.printError(a.stdout, "Error", e.Error)
	}
}

// warnUnserved warns, on stderr, when no live node of ms runs e's function
// on its queue: it stays pending until one does.
func (a *app) warnUnserved(e ops.Execution, ms []ops.Member) {
	var have []string
	for _, m := range ms {
		if !m.Alive || !slices.Contains(m.Functions, e.Function) {
			continue
		}
		if len(m.Queues) == 0 || slices.Contains(m.Queues, e.Queue) {
			return
		}
		have = append(have, m.ID)
	}
	hint := "check the function's name and start a node that has it"
	if len(have) > 0 {
		hint = "nodes " + strings.Join(have, ", ") + " have it on other queues: check --queue"
	}
	fmt.Fprintf(a.stderr, "stent: warning: no live node runs %s on queue %s; it stays pending until one does (%s)\n",
		e.Function, e.Queue, hint)
}

// waitEnd polls execution id until it ends, ctx ends (Ctrl-C) or timeout
// passes.
func (a *app) waitEnd(ctx context.Context, st starter, id string, timeout time.Duration) (ops.Execution, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		e, err := st.get(ctx, id)
		if err == nil && e.Status.Terminal() {
			return e, nil
		}
		if err != nil && ctx.Err() == nil {
			return e, err
		}
		select {
		case <-ctx.Done():
			return e, fmt.Errorf("stopped waiting for %s (it goes on: stent show %s): %w", id, id, ctx.Err())
		case <-tick.C:
		}
	}
}
