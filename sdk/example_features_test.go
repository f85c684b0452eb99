package sdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// exampleWorker starts a serving executor on an in-memory SQLite database
// for one example and returns a context bound to it and a stop function.
func exampleWorker(opts ...sdk.ExecutorOption) (context.Context, *sdk.Executor, func()) {
	ctx := context.Background()
	backend, err := sqlite.Open(":memory:")
	if err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	all := append([]sdk.ExecutorOption{sdk.Serve(), sdk.WithLogger(quiet), sdk.WithPollInterval(20 * time.Millisecond)}, opts...)
	ex, err := sdk.Bootstrap(ctx, backend, all...)
	if err != nil {
		log.Fatal(err)
	}
	return sdk.WithExecutor(ctx, ex), ex, func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}
}

// sample:begin signals
var exApproval = sdk.Durable("ex_approval", func(ctx context.Context, doc string) (string, error) {
	by, err := sdk.WaitForSignal[string](ctx, "approved_by") // waits durably
	if err != nil {
		return "", err
	}
	return doc + " approved by " + by, nil
})

// A workflow waits for a signal; a signal sent before the wait is kept.
func ExampleWaitForSignal() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	h, err := exApproval.Start(ctx, "contract.pdf")
	if err != nil {
		log.Fatal(err)
	}
	if err := ex.SendSignal(ctx, h.ID(), "approved_by", "alice"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Result(ctx))
	// Output: contract.pdf approved by alice <nil>
}

// sample:end

// sample:begin map
var (
	exSquare     = sdk.Durable("ex_square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
	exSumSquares = sdk.Durable("ex_sum_squares", func(ctx context.Context, xs []int) (int, error) {
		squares, err := exSquare.Map(ctx, xs) // fan-out: one child per input; fan-in: outputs in input order
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, s := range squares {
			sum += s
		}
		return sum, nil
	})
)

// Map fans out to one durable child per input and returns the outputs in
// input order.
func ExampleFunc_Map() {
	ctx, _, stop := exampleWorker()
	defer stop()
	fmt.Println(exSumSquares.Call(ctx, []int{1, 2, 3, 4}))
	// Output: 30 <nil>
}

// sample:end

// sample:begin retries
var exFlakyCalls atomic.Int32

var exFlaky = sdk.Durable("ex_flaky", func(ctx context.Context, _ struct{}) (string, error) {
	if n := exFlakyCalls.Add(1); n < 3 {
		return "", fmt.Errorf("attempt %d: service unavailable", n) // retried
	}
	return "ok", nil
}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 5, InitialDelay: 10 * time.Millisecond}))

// A failed attempt is retried with backoff, as a durable timer.
func ExampleWithRetry() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	h, err := exFlaky.Start(ctx, struct{}{})
	if err != nil {
		log.Fatal(err)
	}
	out, err := h.Result(ctx)
	info, _ := ex.Execution(ctx, h.ID())
	fmt.Println(out, err, "after", info.Attempts, "attempts")
	// Output: ok <nil> after 3 attempts
}

// sample:end

// sample:begin deadletters
var exFixed atomic.Bool

var exCharge = sdk.Durable("ex_charge", func(ctx context.Context, card string) (string, error) {
	if !exFixed.Load() {
		return "", sdk.NonRetryable(errors.New("card declined")) // never retried
	}
	return "charged " + card, nil
})

// A function that failed for good lands in the dead-letter queue; once the
// cause is fixed, replaying its dead letter runs it again.
func ExampleExecutor_ReplayDeadLetter() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	h, err := exCharge.Start(ctx, "4242")
	if err != nil {
		log.Fatal(err)
	}
	_, err = h.Result(ctx)
	fmt.Println("first run:", err != nil)
	dls, err := ex.DeadLetters(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dead letter:", dls[0].Function, dls[0].Error)

	exFixed.Store(true)
	if err := ex.ReplayDeadLetter(ctx, dls[0].ID); err != nil { // the dead letter's ID
		log.Fatal(err)
	}
	fmt.Println(h.Result(ctx))
	// Output:
	// first run: true
	// dead letter: ex_charge card declined
	// charged 4242 <nil>
}

// sample:end

// sample:begin cancel
var exForever = sdk.Durable("ex_forever", func(ctx context.Context, _ struct{}) (string, error) {
	return sdk.WaitForSignal[string](ctx, "never")
})

// Cancel ends a pending, running or waiting execution and its children.
func ExampleExecutor_Cancel() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	h, err := exForever.Start(ctx, struct{}{})
	if err != nil {
		log.Fatal(err)
	}
	if err := ex.Cancel(ctx, h.ID()); err != nil {
		log.Fatal(err)
	}
	_, err = h.Result(ctx)
	info, _ := ex.Execution(ctx, h.ID())
	fmt.Println(errors.Is(err, sdk.ErrCanceled), info.Status)
	// Output: true canceled
}

// sample:end

// sample:begin idempotency
var exSendInvoice = sdk.Durable("ex_send_invoice", func(ctx context.Context, invoice string) (string, error) {
	return "sent " + invoice, nil
})

// Starting again with the same idempotency key returns the same execution.
func ExampleWithIdempotencyKey() {
	ctx, _, stop := exampleWorker()
	defer stop()
	a, err := exSendInvoice.Start(ctx, "INV-7", sdk.WithIdempotencyKey("invoice:INV-7"))
	if err != nil {
		log.Fatal(err)
	}
	b, err := exSendInvoice.Start(ctx, "INV-7", sdk.WithIdempotencyKey("invoice:INV-7"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.ID() == b.ID())
	fmt.Println(b.Result(ctx))
	// Output:
	// true
	// sent INV-7 <nil>
}

// sample:end

// sample:begin limits
var exRunning, exPeak atomic.Int32

var exLimited = sdk.Durable("ex_limited", func(ctx context.Context, x int) (int, error) {
	n := exRunning.Add(1)
	defer exRunning.Add(-1)
	for p := exPeak.Load(); n > p && !exPeak.CompareAndSwap(p, n); p = exPeak.Load() {
	}
	time.Sleep(10 * time.Millisecond)
	return x, nil
}, sdk.WithMaxConcurrent(2)) // at most 2 at once, across the cluster

// WithMaxConcurrent caps how many executions of a function run at once.
func ExampleWithMaxConcurrent() {
	ctx, _, stop := exampleWorker()
	defer stop()
	out, err := exLimited.Map(ctx, []int{1, 2, 3, 4, 5, 6})
	fmt.Println(out, err, "at most", exPeak.Load(), "at once")
	// Output: [1 2 3 4 5 6] <nil> at most 2 at once
}

// sample:end

// sample:begin queues
var exResize = sdk.Durable("ex_resize", func(ctx context.Context, img string) (string, error) {
	return img + " resized", nil
}, sdk.WithQueue("images"))

// A function on a queue runs only on executors that serve it.
func ExampleWithQueue() {
	ctx, ex, stop := exampleWorker(sdk.WithQueues("default", "images"))
	defer stop()
	h, err := exResize.Start(ctx, "cat.png")
	if err != nil {
		log.Fatal(err)
	}
	out, err := h.Result(ctx)
	info, _ := ex.Execution(ctx, h.ID())
	fmt.Println(out, err, "on queue", info.Queue)
	// Output: cat.png resized <nil> on queue images
}

// sample:end

// sample:begin cache
var exRate = sdk.Durable("ex_exchange_rate", func(ctx context.Context, pair string) (float64, error) {
	return 1.08, nil // an expensive lookup
}, sdk.WithCache(time.Hour))

// WithCache returns a completed result again, without running the body,
// for an hour.
func ExampleWithCache() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	first, err := exRate.Start(ctx, "EUR/USD")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Result(ctx))
	second, err := exRate.Start(ctx, "EUR/USD")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(second.Result(ctx))
	info, _ := ex.Execution(ctx, second.ID())
	fmt.Println("cached from the first:", info.CachedFrom == first.ID())
	// Output:
	// 1.08 <nil>
	// 1.08 <nil>
	// cached from the first: true
}

// sample:end

// sample:begin tags
var exTrain = sdk.Durable("ex_train", func(ctx context.Context, model string) (string, error) {
	return model + " trained", nil
}, sdk.WithTags("gpu"))

// A tagged function runs only on a worker that has its tags.
func ExampleWithTags() {
	ctx, _, stop := exampleWorker(sdk.WithWorkerTags("gpu", "eu"))
	defer stop()
	fmt.Println(exTrain.Call(ctx, "resnet"))
	// Output: resnet trained <nil>
}

// sample:end

// sample:begin counters
var exImport = sdk.Durable("ex_import", func(ctx context.Context, rows []string) (int, error) {
	for i := range rows {
		if err := sdk.Counter(ctx, "rows_done").Add(1); err != nil { // durable, replay-safe
			return 0, err
		}
		if err := sdk.SetState(ctx, "last_row", rows[i]); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
})

// Counters and state report progress, read back with Execution.
func ExampleCounter() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	h, err := exImport.Start(ctx, []string{"a", "b", "c"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := h.Result(ctx); err != nil {
		log.Fatal(err)
	}
	info, err := ex.Execution(ctx, h.ID())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Counters["rows_done"], string(info.State["last_row"]))
	// Output: 3 "c"
}

// sample:end

// sample:begin postgres
// On PostgreSQL: the same program with postgres.Open. This example is
// compiled, not run; it reads the DSN from STENT_POSTGRES.
func Example_postgres() {
	ctx := context.Background()
	backend, err := postgres.Open(ctx, os.Getenv("STENT_POSTGRES"), postgres.WithSchema("stent"))
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(), sdk.WithNodeID("node-1"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()
	fmt.Println(exSumSquares.Call(ctx, []int{1, 2, 3}))
}

// sample:end

// sample:begin startbyname
// StartByName starts a function by its registered name, with a JSON input:
// the caller needs neither the function nor its types (a CLI, a web
// handler that only starts work).
func ExampleExecutor_StartByName() {
	ctx, ex, stop := exampleWorker()
	defer stop()
	id, err := ex.StartByName(ctx, "ex_send_invoice", json.RawMessage(`"INV-9"`),
		sdk.WithIdempotencyKey("invoice:INV-9"))
	if err != nil {
		log.Fatal(err)
	}
	info := waitFor(ctx, ex, id)
	fmt.Println(info.Status, string(info.Output))
	// Output: completed "sent INV-9"
}

// sample:end

// waitFor polls execution id until it ends, for the examples.
func waitFor(ctx context.Context, ex *sdk.Executor, id string) sdk.ExecutionInfo {
	for {
		info, err := ex.Execution(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		if info.Status.Terminal() {
			return info
		}
		time.Sleep(10 * time.Millisecond)
	}
}
