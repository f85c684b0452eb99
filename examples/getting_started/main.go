// Command getting_started is the program of the getting-started guide
// (docs/getting-started.md): a checkout workflow that charges a card, on
// a SQLite file. Its other functions hold the guide's other samples, so
// that they compile.
//
//	go run ./examples/getting_started
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/redisnotify"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// sample:begin main
func main() {
	ctx := context.Background()
	backend, err := sqlite.Open("app.db")
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(), sdk.WithNodeID("app-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()

	receipt, err := Checkout.Call(ctx, Charge{OrderID: "ORD-7", Cents: 1999},
		sdk.WithIdempotencyKey("checkout:ORD-7"))
	if err != nil {
		var ee *sdk.ExecutionError
		if errors.As(err, &ee) {
			log.Printf("%s failed after %d attempts: %s", ee.Function, ee.Attempts, ee.Message)
		}
		return
	}
	fmt.Println(receipt)
}

// sample:end

// startAndMap holds the guide's other ways to start.
func startAndMap(ctx context.Context, in Charge, charges []Charge) error {
	// sample:begin start
	h, err := Checkout.Start(ctx, in) // start without waiting
	if err != nil {
		return err
	}
	log.Printf("started %s", h.ID()) // the execution ID
	receipt, err := h.Result(ctx)    // wait for it later
	if err != nil {
		return err
	}

	receipts, err := ChargeCard.Map(ctx, charges) // one execution per input, in parallel, outputs in input order
	if err != nil {
		return err // the first failure by index, once all have finished
	}
	results, err := ChargeCard.MapResults(ctx, charges) // one sdk.Result per input: failures one by one
	// sample:end
	fmt.Println(receipt, receipts, results)
	return err
}

// manualSetup is the guide's setup by hand.
func manualSetup(ctx context.Context) *sdk.Executor {
	// sample:begin manual
	backend, err := sqlite.Open("app.db")
	if err != nil {
		log.Fatal(err)
	}
	if err := backend.Init(ctx); err != nil { // create or migrate the schema
		log.Fatal(err)
	}
	ex := sdk.Use(backend, sdk.WithNodeID("app-1")) // the process default; panics only on invalid options
	go func() {
		if err := ex.Serve(ctx); err != nil { // blocks until ctx ends or ex.Close
			log.Print(err)
		}
	}()
	if err := ex.WaitUntilReady(ctx); err != nil {
		log.Fatal(err)
	}
	// sample:end
	return ex
}

// onPostgres is the guide's PostgreSQL setup.
func onPostgres(ctx context.Context) (*sdk.Executor, error) {
	// sample:begin postgres
	backend, err := postgres.Open(ctx, "postgres://user:pass@host:5432/app?sslmode=disable",
		postgres.WithSchema("stent")) // default "public"; Init creates it
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve())
	// sample:end
	return ex, err
}

// withRedis is the guide's Redis notifier.
func withRedis(ctx context.Context, backend persistence.Backend) (*sdk.Executor, error) {
	// sample:begin redis
	n, err := redisnotify.New(&redis.Options{Addr: "127.0.0.1:6379"}, "myapp:") // go-redis v9
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := n.Close(); err != nil { // the executor does not close a notifier you pass
			log.Print(err)
		}
	}()
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(), sdk.WithNotifications(n))
	// sample:end
	return ex, err
}

// The guide's other samples are compiled but not run by main.
var _ = []any{startAndMap, manualSetup, onPostgres, withRedis}
