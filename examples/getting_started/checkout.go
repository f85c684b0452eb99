package main

import (
	"context"
	"errors"
	"time"

	"github.com/stent-go/stent/examples/getting_started/payments"
	"github.com/stent-go/stent/sdk"
)

// sample:begin define
type Charge struct {
	OrderID string `json:"order_id"`
	Cents   int    `json:"cents"`
}

var ChargeCard = sdk.Durable("charge_card",
	func(ctx context.Context, c Charge) (string, error) {
		receipt, err := payments.Charge(ctx, c.OrderID, c.Cents)
		if errors.Is(err, payments.ErrDeclined) {
			return "", sdk.NonRetryable(err) // retrying will not help
		}
		return receipt, err
	},
	sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 5, InitialDelay: time.Second}),
	sdk.WithTimeout(30*time.Second),
)

var Checkout = sdk.Durable("checkout",
	func(ctx context.Context, c Charge) (string, error) {
		receipt, err := ChargeCard.Call(ctx, c) // a durable child call
		if err != nil {
			return "", err
		}
		if err := sdk.Sleep(ctx, time.Second); err != nil { // a durable timer; 1s or more passivates
			return "", err
		}
		return receipt, nil
	})

// sample:end
