// Package trip is the saga of the saga_trip_booking example: a trip is a
// flight, a hotel and a car, booked one after the other by durable child
// calls; when one fails, the bookings already made are cancelled, newest
// first (compensation), so that nothing stays half booked. A node binary
// can register these functions by importing the package.
package trip

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/sdk"
)

// Request is a trip to book. FailAt names a step ("flight", "hotel" or
// "car") whose provider refuses it, to show the compensation.
type Request struct {
	TripID      string `json:"trip_id"`
	Destination string `json:"destination"`
	FailAt      string `json:"fail_at,omitempty"`
}

// Booking is one reservation a provider confirmed.
type Booking struct {
	Kind string `json:"kind"`
	Ref  string `json:"ref"`
}

// Outcome is what became of a trip: the bookings it holds, or, when a step
// failed, that step, its error and the bookings cancelled to undo it.
type Outcome struct {
	TripID    string    `json:"trip_id"`
	Booked    []Booking `json:"booked,omitempty"`
	FailedAt  string    `json:"failed_at,omitempty"`
	Error     string    `json:"error,omitempty"`
	Cancelled []Booking `json:"cancelled,omitempty"`
}

// errSoldOut is a provider's final refusal: retrying will not help.
var errSoldOut = errors.New("sold out")

// book is a provider's booking call, made a durable function per kind.
func book(kind, prefix string) func(context.Context, Request) (Booking, error) {
	return func(ctx context.Context, r Request) (Booking, error) {
		if r.FailAt == kind {
			return Booking{}, sdk.NonRetryable(fmt.Errorf("%s in %s: %w", kind, r.Destination, errSoldOut))
		}
		return Booking{Kind: kind, Ref: prefix + "-" + r.TripID}, nil
	}
}

// The steps and their compensation. Each is a durable function: once it
// completed, a crash and a replay never book or cancel twice.
var (
	BookFlight = sdk.Durable("trip_book_flight", book("flight", "FL"),
		sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 100 * time.Millisecond}))
	BookHotel = sdk.Durable("trip_book_hotel", book("hotel", "HT"),
		sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 100 * time.Millisecond}))
	BookCar = sdk.Durable("trip_book_car", book("car", "CR"),
		sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 100 * time.Millisecond}))
	CancelBooking = sdk.Durable("trip_cancel_booking", func(ctx context.Context, b Booking) (Booking, error) {
		return b, nil // the provider's cancellation call
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 10, InitialDelay: 100 * time.Millisecond}))
)

// BookTrip is the saga: book each step in turn; on a failure, cancel what
// was booked, newest first, and report it. The trip ends either fully
// booked or with nothing booked; only a failed compensation is an error.
var BookTrip = sdk.Durable("trip_book_trip", bookTrip)

// sample:begin compensate
func bookTrip(ctx context.Context, r Request) (Outcome, error) {
	out := Outcome{TripID: r.TripID}
	steps := []struct {
		kind string
		fn   *sdk.Func[Request, Booking]
	}{{"flight", BookFlight}, {"hotel", BookHotel}, {"car", BookCar}}
	for _, s := range steps {
		b, err := s.fn.Call(ctx, r)
		if err == nil {
			out.Booked = append(out.Booked, b)
			continue
		}
		out.FailedAt, out.Error = s.kind, err.Error()
		for i := len(out.Booked) - 1; i >= 0; i-- { // compensate, newest first
			c, err := CancelBooking.Call(ctx, out.Booked[i])
			if err != nil {
				return out, fmt.Errorf("cancelling %s: %w", out.Booked[i].Ref, err)
			}
			out.Cancelled = append(out.Cancelled, c)
		}
		out.Booked = nil
		return out, nil
	}
	return out, nil
}

// sample:end
