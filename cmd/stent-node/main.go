// Command stent-node runs one node of Stent (package sdk/node) on a SQLite
// file or a PostgreSQL database, sharing the work with the other nodes on
// it. It serves the functions of the examples; `stent-node -h` lists the
// flags. A binary of your own with your functions is a main like this one
// that imports them: see docs/node.md.
package main

import (
	"os"

	_ "github.com/stent-go/stent/examples/batch_processing/batch" // batch_process_batch, batch_process_item
	_ "github.com/stent-go/stent/examples/media_pipeline/media"   // media_pipeline and its stages
	_ "github.com/stent-go/stent/examples/saga_trip_booking/trip" // trip_book_trip, its bookings and compensations
	_ "github.com/stent-go/stent/examples/simple_flow/orders"     // order_workflow, process_order
	"github.com/stent-go/stent/sdk/node"
)

func main() { os.Exit(node.Main(os.Args[1:])) }
