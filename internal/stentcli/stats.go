package stentcli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

func (a *app) statsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stats",
		Short: "Count executions by status and function; queue depths; oldest pending",
		Long: `Count the executions by status and by function; give each queue's depth
(pending executions that may run now), its running and waiting ones and its
oldest pending one; and name the pending work no live node can run (no live
node has its function on its queue): it waits for a node that has it.`,
		Example: "  stent stats\n  stent stats --json | jq .by_status",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.readStats(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(s)
			}
			a.printStats(a.stdout, s)
			return nil
		},
	}
}

// readStats reads the counts: from the node's API with --node, else from
// the database.
func (a *app) readStats(ctx context.Context) (*ops.Stats, error) {
	return read(ctx, a, "/api/stats", func(ctx context.Context, ex *sdk.Executor) (*ops.Stats, error) {
		s, err := ex.Stats(ctx)
		if err != nil {
			return nil, err
		}
		return ops.ToStats(s), nil
	})
}

// printStats writes stats as text.
func (a *app) printStats(w io.Writer, s *ops.Stats) {
	if s.Total == 0 {
		fmt.Fprintln(w, "no executions")
		return
	}
	var parts []string
	for _, st := range statusNames() {
		if n := s.ByStatus[st]; n > 0 {
			parts = append(parts, a.paint(statusColor(st), st)+" "+strconv.Itoa(n))
		}
	}
	fmt.Fprintf(w, "%d executions: %s\n\n", s.Total, strings.Join(parts, ", "))
	t := table{head: []string{"FUNCTION", "TOTAL", "PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELED", "TIMED OUT"}, statusCol: -1}
	for _, f := range s.Functions {
		row := []string{f.Function, strconv.Itoa(f.Total)}
		for _, c := range statusNames() {
			row = append(row, strconv.Itoa(f.ByStatus[c]))
		}
		t.rows = append(t.rows, row)
	}
	a.printTable(w, t)
	if len(s.Queues) > 0 {
		fmt.Fprintln(w)
		q := table{head: []string{"QUEUE", "DEPTH", "PENDING", "RUNNING", "WAITING", "OLDEST PENDING"}, statusCol: -1}
		for _, x := range s.Queues {
			oldest := "-"
			if x.OldestPending != nil {
				oldest = ago(*x.OldestPending, s.At)
			}
			q.rows = append(q.rows, []string{x.Queue, strconv.Itoa(x.Depth), strconv.Itoa(x.Pending),
				strconv.Itoa(x.Running), strconv.Itoa(x.Waiting), oldest})
		}
		a.printTable(w, q)
	}
	for _, u := range s.Unserved {
		fmt.Fprintf(w, "%s %d pending executions of %s on queue %s wait for a node that has that function\n",
			a.paint(ansiYellow, "!"), u.Pending, u.Function, u.Queue)
	}
}
