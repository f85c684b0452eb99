package stentcli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/sdk"
)

// memberJSON is a node in the --json output of members.
type memberJSON struct {
	ID          string            `json:"id"`
	Alive       bool              `json:"alive"`
	Addresses   map[string]string `json:"addresses"`
	Functions   []string          `json:"functions"`
	Queues      []string          `json:"queues"`
	Owned       int               `json:"owned"`
	Version     string            `json:"version,omitempty"`
	StartedAt   time.Time         `json:"started_at"`
	HeartbeatAt time.Time         `json:"heartbeat_at"`
}

func (a *app) membersCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "members",
		Short: "List the nodes: addresses, functions and queues served, executions owned, heartbeat",
		Long: `List the nodes that serve on this database, from the registry each node
keeps up to date: its addresses, the functions it has and the queues it
serves (all: every queue), how many executions it holds leases on, and its
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

// members opens the database and reads the node registry.
func (a *app) members(ctx context.Context) ([]memberJSON, error) {
	ex, err := a.executor(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := ex.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]memberJSON, len(ms))
	for i, m := range ms {
		out[i] = toMemberJSON(m)
	}
	return out, nil
}

func toMemberJSON(n sdk.Member) memberJSON {
	m := memberJSON{ID: n.ID, Alive: n.Alive, Addresses: n.Addresses, Functions: n.Functions, Queues: n.Queues,
		Owned: n.Owned, Version: n.Version, StartedAt: n.StartedAt, HeartbeatAt: n.HeartbeatAt}
	if m.Addresses == nil {
		m.Addresses = map[string]string{}
	}
	if m.Functions == nil {
		m.Functions = []string{}
	}
	if m.Queues == nil {
		m.Queues = []string{}
	}
	return m
}

// membersTable is the text table of members.
func membersTable(ms []memberJSON, now time.Time) table {
	t := table{head: []string{"NODE", "STATE", "OWNED", "HEARTBEAT", "UP", "QUEUES", "FUNCTIONS", "ADDRESSES"}, statusCol: 1}
	for _, n := range ms {
		state := "alive"
		if !n.Alive {
			state = "expired"
		}
		queues := "all"
		if len(n.Queues) > 0 {
			queues = strings.Join(n.Queues, ",")
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
			up = roundDur(now.Sub(n.StartedAt)).String()
		}
		t.rows = append(t.rows, []string{n.ID, state, strconv.Itoa(n.Owned), ago(n.HeartbeatAt, now), up, queues,
			strings.Join(n.Functions, ","), strings.Join(addrs, " ")})
	}
	return t
}
