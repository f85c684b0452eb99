// Package orders holds the durable functions of the simple_flow example:
// a workflow that processes orders, one durable child call each. Importing
// it registers them, so any binary that imports it runs them: the example's
// own main, and cmd/stent-node.
package orders

import (
	"context"
	"fmt"
	"time"

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
