package stentcli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/sdk"
)

// statsJSON is the --json output of stats.
type statsJSON struct {
	At        time.Time      `json:"at"`
	Total     int            `json:"total"`
	ByStatus  map[string]int `json:"by_status"`
	Functions []functionJSON `json:"functions"`
	Queues    []queueJSON    `json:"queues"`
	Unserved  []unservedJSON `json:"unserved"`
}

// functionJSON counts the executions of one function.
type functionJSON struct {
	Function string         `json:"function"`
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
}

// queueJSON is one queue: its depth (pending executions that may run now)
// and the executions not finished on it.
type queueJSON struct {
	Queue         string     `json:"queue"`
	Depth         int        `json:"depth"`
	Pending       int        `json:"pending"`
	Running       int        `json:"running"`
	Waiting       int        `json:"waiting"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
}

// unservedJSON is pending work no live node can run.
type unservedJSON struct {
	Function      string     `json:"function"`
	Queue         string     `json:"queue"`
	Pending       int        `json:"pending"`
	OldestPending *time.Time `json:"oldest_pending,omitempty"`
}

// byStatus is m with string keys.
func byStatus(m map[sdk.Status]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// toStatsJSON is s for --json output.
func toStatsJSON(s sdk.Stats) *statsJSON {
	out := &statsJSON{At: s.At, Total: s.Total, ByStatus: byStatus(s.ByStatus), Functions: []functionJSON{},
		Queues: []queueJSON{}, Unserved: []unservedJSON{}}
	for _, f := range s.Functions {
		out.Functions = append(out.Functions, functionJSON{Function: f.Function, Total: f.Total, ByStatus: byStatus(f.ByStatus)})
	}
	for _, q := range s.Queues {
		out.Queues = append(out.Queues, queueJSON{Queue: q.Queue, Depth: q.Depth, Pending: q.Pending, Running: q.Running,
			Waiting: q.Waiting, OldestPending: timePtr(q.OldestPending)})
	}
	for _, u := range s.Unserved {
		out.Unserved = append(out.Unserved, unservedJSON{Function: u.Function, Queue: u.Queue, Pending: u.Pending,
			OldestPending: timePtr(u.OldestPending)})
	}
	return out
}

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

// readStats opens the database and reads the counts.
func (a *app) readStats(ctx context.Context) (*statsJSON, error) {
	ex, err := a.executor(ctx)
	if err != nil {
		return nil, err
	}
	s, err := ex.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return toStatsJSON(s), nil
}

// printStats writes stats as text.
func (a *app) printStats(w io.Writer, s *statsJSON) {
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
