package stentcli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/chaos"
	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/sdk/node"
)

// nodeCmd is the hidden `stent node`: a stent-node (sdk/node) with the
// ledger workload registered, which is what `stent chaos` runs. Its flags
// are the node's own, parsed by node.Main.
func (a *app) nodeCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "node [node flags]",
		Short:              "Run a stent-node that serves the ledger workload of stent chaos",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return exitCode(node.Main(args, node.WithSetup(ledgerSetup)))
		},
	}
}

// ledgerSetup opens the node's ledger (its tables in the node's database)
// and registers it for the ledger workload's functions.
func ledgerSetup(_ context.Context, cfg node.Config) (func() error, error) {
	return ledger.Setup(cfg.DB, cfg.Schema, cfg.NodeID)
}

// chaosCmd is `stent chaos`, whose flags internal/chaos parses itself.
func (a *app) chaosCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "chaos [chaos flags]",
		Short: "Run nodes on one database, kill and pause them, check the invariants",
		Long: `Run nodes on one database, kill and pause them, and check the invariants.

chaos starts stent-node processes (this executable's hidden node command,
serving the ledger workload) on a SQLite file or a PostgreSQL database, runs
workflows on them while it kills and pauses random nodes, then checks that
every workflow ended exactly once. Its flags are listed by 'stent chaos -h';
docs/chaos.md describes them and the report.`,
		Example:            "  stent chaos --nodes 3 --workflows 200 --kill-every 2s\n  stent chaos --db postgres://postgres@127.0.0.1:5432/test",
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			return exitCode(chaos.Main(args))
		},
	}
}
