// Command stent is Stent's command-line tool: `stent --help` lists its
// commands, docs/cli.md describes them, and `stent chaos` is described in
// docs/chaos.md.
package main

import (
	"os"

	"github.com/stent-go/stent/internal/stentcli"
)

func main() { os.Exit(stentcli.Main(os.Args[1:])) }
