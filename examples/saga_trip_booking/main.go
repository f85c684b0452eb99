// Command saga_trip_booking books two trips with a saga on a SQLite file:
// the first is booked in full; the second fails at the car rental, and the
// flight and hotel it had booked are cancelled. It prints what happened,
// including the failed step's dead letter.
//
//	go run ./examples/saga_trip_booking [database]
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/stent-go/stent/examples/saga_trip_booking/trip"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func main() {
	path := "trip.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(context.Background(), os.Stdout, path); err != nil {
		log.Fatal(err)
	}
}

// run books the two trips on the database at path and writes what
// happened to w.
func run(ctx context.Context, w io.Writer, path string) error {
	backend, err := sqlite.Open(path)
	if err != nil {
		return err
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(),
		sdk.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		return err
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()
	ctx = sdk.WithExecutor(ctx, ex)
	trips := []trip.Request{
		{TripID: "T-100", Destination: "Lisbon"},
		{TripID: "T-200", Destination: "Oslo", FailAt: "car"},
	}
	for _, r := range trips {
		// The key makes a second run of the program return the recorded
		// outcome instead of booking again.
		out, err := trip.BookTrip.Call(ctx, r, sdk.WithIdempotencyKey("trip:"+r.TripID))
		if err != nil {
			return err
		}
		report(w, r, out)
	}
	dls, err := ex.DeadLetters(ctx)
	if err != nil {
		return err
	}
	for _, d := range dls {
		fmt.Fprintf(w, "dead letter: %s after %d attempt(s): %s\n", d.Function, d.Attempts, d.Error)
	}
	return nil
}

// report writes one trip's outcome.
func report(w io.Writer, r trip.Request, out trip.Outcome) {
	fmt.Fprintf(w, "trip %s to %s\n", r.TripID, r.Destination)
	if out.FailedAt == "" {
		for _, b := range out.Booked {
			fmt.Fprintf(w, "  booked %-6s %s\n", b.Kind, b.Ref)
		}
		return
	}
	fmt.Fprintf(w, "  %s failed: %s\n", out.FailedAt, out.Error)
	for _, b := range out.Cancelled {
		fmt.Fprintf(w, "  cancelled %-6s %s\n", b.Kind, b.Ref)
	}
	fmt.Fprintln(w, "  nothing stays booked")
}
