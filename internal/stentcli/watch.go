package stentcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

// Terminal control: cursor home, clear the screen.
const ansiHomeClear = "\x1b[H\x1b[2J"

// watchJSON is one refresh of watch --json: a JSON object per line.
type watchJSON struct {
	Stats   *ops.Stats      `json:"stats"`
	Members []ops.Member    `json:"members"`
	Recent  []ops.Execution `json:"recent"`
}

func (a *app) watchCmd() *cobra.Command {
	var every time.Duration
	var count, recent int
	c := &cobra.Command{
		Use:   "watch",
		Short: "A live view of counts, queues, nodes and recent executions",
		Long: `Show stats, the nodes and the latest executions, refreshed every --every.
On a terminal the view is redrawn in place; otherwise (a pipe, a file) each
refresh is printed after the last, and with --json each is one JSON object
on a line. Ctrl-C ends it.`,
		Example: "  stent watch\n  stent watch --every 5s --recent 20\n  stent watch --json --count 3",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every < 100*time.Millisecond {
				return usagef("--every %s is too short: 100ms at least", every)
			}
			if recent < 0 || recent > 1000 || count < 0 {
				return usagef("--recent wants 0 to 1000 and --count 0 or more")
			}
			return a.runWatch(cmd.Context(), every, count, recent)
		},
	}
	c.Flags().DurationVar(&every, "every", 2*time.Second, "time between refreshes")
	c.Flags().IntVar(&count, "count", 0, "stop after this many refreshes (0: until Ctrl-C)")
	c.Flags().IntVar(&recent, "recent", 10, "latest executions shown")
	return c
}

func (a *app) runWatch(ctx context.Context, every time.Duration, count, recent int) error {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 1; ; i++ {
		var buf bytes.Buffer
		if err := a.renderWatch(ctx, &buf, recent); err != nil {
			if ctx.Err() != nil {
				return nil // Ctrl-C
			}
			return err
		}
		switch {
		case a.term.tty && !a.jsonOut:
			fmt.Fprint(a.stdout, ansiHomeClear+buf.String())
		case a.jsonOut:
			a.stdout.Write(buf.Bytes()) //nolint:errcheck // a closed stdout ends the watch at the next refresh's ctx check at worst
		default:
			fmt.Fprintf(a.stdout, "--- %s\n%s\n", time.Now().UTC().Format(time.RFC3339), buf.String())
		}
		if count > 0 && i >= count {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil // Ctrl-C ends a watch normally
		case <-tick.C:
		}
	}
}

// renderWatch writes one refresh into buf.
func (a *app) renderWatch(ctx context.Context, buf *bytes.Buffer, recent int) error {
	s, err := a.readStats(ctx)
	if err != nil {
		return err
	}
	nodes, err := a.members(ctx)
	if err != nil {
		return err
	}
	rows := []ops.Execution{}
	if recent > 0 {
		page, err := a.listPage(ctx, listFlags{limit: recent}, sdk.ListFilter{Limit: recent})
		if err != nil {
			return err
		}
		rows = page.Executions
	}
	if a.jsonOut {
		w := watchJSON{Stats: s, Members: nodes, Recent: rows}
		line, err := json.Marshal(w)
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
		return nil
	}
	now := time.Now()
	fmt.Fprintf(buf, "%s  %s\n\n", a.paint(ansiBold, "stent watch"), now.UTC().Format("15:04:05 UTC"))
	a.printStats(buf, s)
	fmt.Fprintln(buf)
	if len(nodes) == 0 {
		fmt.Fprintln(buf, "no nodes")
	} else {
		a.printTable(buf, membersTable(nodes, now))
	}
	if len(rows) > 0 {
		fmt.Fprintln(buf)
		t := table{head: []string{"ID", "FUNCTION", "STATUS", "ATTEMPTS", "CREATED", "UPDATED"}, statusCol: 2}
		for _, r := range rows {
			t.rows = append(t.rows, []string{r.ID, r.Function, string(r.Status), fmt.Sprint(r.Attempts), ago(r.CreatedAt, now), ago(r.UpdatedAt, now)})
		}
		a.printTable(buf, t)
	}
	return nil
}
