package stentcli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/ops"
)

func (a *app) membersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the nodes: addresses, functions, queues and tags served, executions owned, heartbeat",
		Long: `List the nodes that serve on this database, from the registry each node
keeps up to date: its addresses, the functions it has, the queues it
serves (all: every queue) and its worker tags (-: none), how many executions it holds leases on, and its
last heartbeat. A node that missed its heartbeats is shown as expired: it
stopped without a goodbye, or cannot reach the database.`,
		Example: "  stent members\n  stent members --json | jq '.[] | select(.alive) | .id'",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := a.members(cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(ms)
			}
			if len(ms) == 0 {
				fmt.Fprintln(a.stdout, "no nodes: none serves on this database (start stent-node, or your node binary)")
				return nil
			}
			a.printTable(a.stdout, membersTable(ms, time.Now()))
			return nil
		},
	}
}

// members reads the node registry: from the node's API with --node, else
// from the database.
func (a *app) members(ctx context.Context) ([]ops.Member, error) {
	return read(ctx, a, "/api/members", ops.Members)
}

// membersTable is the text table of members.
func membersTable(ms []ops.Member, now time.Time) table {
	t := table{head: []string{"NODE", "STATE", "OWNED", "HEARTBEAT", "UP", "QUEUES", "TAGS", "FUNCTIONS", "ADDRESSES"}, statusCol: 1}
	for _, n := range ms {
		state := "alive"
		if !n.Alive {
			state = "expired"
		}
		queues := "all"
		if len(n.Queues) > 0 {
			queues = strings.Join(n.Queues, ",")
		}
		tags := "-"
		if len(n.Tags) > 0 {
			tags = strings.Join(n.Tags, ",")
		}
		kinds := make([]string, 0, len(n.Addresses))
		for k := range n.Addresses {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		addrs := make([]string, len(kinds))
		for i, k := range kinds {
			addrs[i] = k + "=" + n.Addresses[k]
		}
		up := "-"
		if !n.StartedAt.IsZero() {
			up = ops.RoundDur(now.Sub(n.StartedAt)).String()
		}
		t.rows = append(t.rows, []string{n.ID, state, strconv.Itoa(n.Owned), ago(n.HeartbeatAt, now), up, queues, tags,
			strings.Join(n.Functions, ","), strings.Join(addrs, " ")})
	}
	return t
}
