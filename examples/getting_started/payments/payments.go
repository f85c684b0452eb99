// Package payments stands for your own payment code in the getting_started
// example: a card charge that is declined for amounts over 1,000,000 cents.
package payments

import (
	"context"
	"errors"
	"fmt"
)

// ErrDeclined is a final refusal of a charge.
var ErrDeclined = errors.New("payments: card declined")

// Charge charges cents for orderID and returns a receipt.
func Charge(ctx context.Context, orderID string, cents int) (string, error) {
	if cents > 1_000_000 {
		return "", fmt.Errorf("charging %s: %w", orderID, ErrDeclined)
	}
	return fmt.Sprintf("receipt-%s-%d", orderID, cents), ctx.Err()
}
