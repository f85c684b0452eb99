package sdk_test

import (
	"context"
	"fmt"
	"log"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

var (
	exampleDouble = sdk.Durable("example_double", func(ctx context.Context, x int) (int, error) {
		return 2 * x, nil
	})
	exampleSum = sdk.Durable("example_sum", func(ctx context.Context, xs []int) (int, error) {
		doubled, err := exampleDouble.Map(ctx, xs) // fan-out: one durable child per input
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, d := range doubled {
			sum += d
		}
		return sum, nil
	})
)

// A workflow that fans out to durable children, on an in-memory SQLite
// database, set up by hand: Init, Use, Serve, WaitUntilReady.
func Example_durable() {
	ctx := context.Background()
	backend, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	if err := backend.Init(ctx); err != nil {
		log.Fatal(err)
	}
	ex := sdk.Use(backend)
	go func() {
		if err := ex.Serve(ctx); err != nil {
			log.Print(err)
		}
	}()
	if err := ex.WaitUntilReady(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()

	sum, err := exampleSum.Call(ctx, []int{1, 2, 3})
	fmt.Println(sum, err)
	// Output: 12 <nil>
}
