// Command custom_node is a user's own node binary: a stent-node (package
// sdk/node) that runs two durable functions of its own, ship_order and the
// quote_item step it calls for each item. Build it, run several on one
// PostgreSQL database, and drive it with the stent CLI; README.md shows how.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/node"
)

// Order is the input of ship_order.
type Order struct {
	ID    string   `json:"id"`
	Items []string `json:"items"`
	// WorkMS is how long each quote works (a durable timer), in
	// milliseconds; 0 is 200.
	WorkMS int `json:"work_ms,omitempty"`
}

// Quote is the price of one item.
type Quote struct {
	Item  string `json:"item"`
	Cents int    `json:"cents"`
}

// Shipment is the output of ship_order.
type Shipment struct {
	Order  string  `json:"order"`
	Quotes []Quote `json:"quotes"`
	Total  int     `json:"total_cents"`
}

// quoteInput is the input of quote_item.
type quoteInput struct {
	Item   string `json:"item"`
	WorkMS int    `json:"work_ms"`
}

// sample:begin functions
// QuoteItem prices one item: a step whose work is a durable timer, so a
// node that dies while it runs loses nothing.
var QuoteItem = sdk.Durable("quote_item", func(ctx context.Context, in quoteInput) (Quote, error) {
	if err := sdk.Sleep(ctx, time.Duration(in.WorkMS)*time.Millisecond); err != nil {
		return Quote{}, err
	}
	cents := 0
	for _, r := range in.Item {
		cents += int(r)
	}
	return Quote{Item: in.Item, Cents: cents}, nil
})

// ShipOrder quotes each item of an order, one after the other, and adds
// them up. Each quote is recorded once done: after a crash the workflow
// resumes on another node from the first item not yet quoted.
var ShipOrder = sdk.Durable("ship_order", func(ctx context.Context, o Order) (Shipment, error) {
	if len(o.Items) == 0 {
		return Shipment{}, sdk.NonRetryable(fmt.Errorf("order %q has no items", o.ID))
	}
	work := o.WorkMS
	if work <= 0 {
		work = 200
	}
	s := Shipment{Order: o.ID}
	for _, item := range o.Items {
		q, err := QuoteItem.Call(ctx, quoteInput{Item: item, WorkMS: work})
		if err != nil {
			return Shipment{}, err
		}
		s.Quotes = append(s.Quotes, q)
		s.Total += q.Cents
	}
	return s, nil
})

// sample:end

// sample:begin main
func main() { os.Exit(node.Main(os.Args[1:])) }

// sample:end
