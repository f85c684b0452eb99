package stenttest_test

import (
	"context"
	"testing"

	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// sample:begin stenttest
var double = sdk.Durable("stenttest_example_double", func(ctx context.Context, x int) (int, error) {
	return 2 * x, nil
})

// In a test, Worker gives a serving executor on a fresh SQLite database;
// the context it returns runs calls on it. (Compiled, not run: an example
// has no *testing.T.)
func ExampleWorker() {
	testDouble := func(t *testing.T) {
		ctx, ex := stenttest.Worker(t)
		h, err := double.Start(ctx, 21)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := h.Result(ctx); err != nil || got != 42 {
			t.Fatalf("double(21) = %d, %v", got, err)
		}
		info, err := ex.Execution(ctx, h.ID())
		if err != nil || info.Status != sdk.StatusCompleted {
			t.Fatalf("status %s, %v", info.Status, err)
		}
	}
	_ = testDouble
}

// sample:end
