// Command simple_flow is Stent's quick example: a workflow that processes two
// orders, one durable child call each, on a SQLite file.
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
	"time"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// sample:begin functions
// Order is a processed order.
type Order struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// ProcessOrder is one step: a durable function called as a child.
var ProcessOrder = sdk.Durable("process_order", func(ctx context.Context, orderID string) (Order, error) {
	if err := sdk.Sleep(ctx, time.Second); err != nil { // simulate work: a durable timer
		return Order{}, err
	}
	fmt.Printf("  processed %s\n", orderID)
	return Order{OrderID: orderID, Status: "processed"}, nil
})

// OrderWorkflow processes orders one after the other.
var OrderWorkflow = sdk.Durable("order_workflow", func(ctx context.Context, orderIDs []string) ([]Order, error) {
	results := make([]Order, 0, len(orderIDs))
	for _, id := range orderIDs {
		o, err := ProcessOrder.Call(ctx, id)
		if err != nil {
			return nil, err
		}
		results = append(results, o)
	}
	return results, nil
})

// sample:end

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

	orders := []string{"ORD-001", "ORD-002"}
	fmt.Printf("running order_workflow(%s) on %s\n", strings.Join(orders, ", "), path)
	result, err := OrderWorkflow.Call(ctx, orders, sdk.WithIdempotencyKey("orders:"+strings.Join(orders, ",")))
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("%+v\n", result)
}

// sample:end
