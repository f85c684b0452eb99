// Command stent-node runs one node of Stent: a serving executor on a SQLite
// file or a PostgreSQL database, sharing the work with the other nodes on
// it. It serves the built-in ledger workload; `stent-node -h` lists the
// flags. To host your own functions, see the doc of internal/nodecli.
package main

import (
	"os"

	"github.com/stent-go/stent/internal/nodecli"
)

func main() { os.Exit(nodecli.Main(os.Args[1:])) }
