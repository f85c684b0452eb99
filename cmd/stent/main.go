// Command stent is Stent's command-line tool. `stent help` lists its
// subcommands; `stent chaos` is described in docs/chaos.md.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/stent-go/stent/internal/chaos"
	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/sdk/node"
)

const usage = `Usage: stent <command> [flags]

Commands:
  chaos   run nodes on one database, kill and pause them, check the invariants
  help    print this help

Run 'stent <command> -h' for a command's flags.
`

func main() {
	switch cmd := append(os.Args[1:], "")[0]; cmd {
	case "chaos":
		os.Exit(chaos.Main(os.Args[2:]))
	case "node": // hidden: a stent-node with the ledger workload, run by chaos from this executable
		os.Exit(node.Main(os.Args[2:], node.WithSetup(func(_ context.Context, cfg node.Config) (func() error, error) {
			return ledger.Setup(cfg.DB, cfg.Schema, cfg.NodeID)
		})))
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}
