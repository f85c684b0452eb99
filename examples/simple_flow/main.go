// Command simple_flow is Stent's quick example: a workflow that processes two
// orders, one durable child call each, on a SQLite file. The functions are
// in package orders, which cmd/stent-node serves too.
//
// Run it, kill it (Ctrl-C or kill -9) while it works, and run it again: the
// second run resumes the same workflow (same idempotency key) and finishes it
// without processing again an order that was done.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"strings"

	"github.com/stent-go/stent/examples/simple_flow/orders"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// sample:begin main
func main() {
	path := "workflow.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	ctx := context.Background()
	backend, err := sqlite.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(),
		sdk.WithNodeID("simple-flow"), // a restart takes back this node's work at once
		sdk.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()

	ids := []string{"ORD-001", "ORD-002"}
	fmt.Printf("running order_workflow(%s) on %s\n", strings.Join(ids, ", "), path)
	result, err := orders.OrderWorkflow.Call(ctx, ids, sdk.WithIdempotencyKey("orders:"+strings.Join(ids, ",")))
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("%+v\n", result)
}

// sample:end
