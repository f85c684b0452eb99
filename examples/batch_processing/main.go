// Command batch_processing processes a batch of 20 items on a SQLite file:
// one durable execution per item, at most batch.MaxConcurrent at once,
// two invalid items that fail without failing the batch, and a counter of
// processed items. It prints the summary and the progress recorded.
//
//	go run ./examples/batch_processing [database]
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/stent-go/stent/examples/batch_processing/batch"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func main() {
	path := "batch.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(context.Background(), os.Stdout, path); err != nil {
		log.Fatal(err)
	}
}

// run processes the batch on the database at path and writes what
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
	items := make([]batch.Item, 20)
	for i := range items {
		items[i] = batch.Item{ID: i + 1, Value: i + 1}
	}
	items[6].Value, items[13].Value = -1, -1 // items 7 and 14 are invalid

	h, err := batch.ProcessBatch.Start(ctx, items, sdk.WithIdempotencyKey("batch:example"))
	if err != nil {
		return err
	}
	s, err := h.Result(ctx)
	if err != nil {
		return err
	}
	info, err := ex.Execution(ctx, h.ID())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "batch of %d items: %d succeeded, %d failed %v\n", s.Items, s.Succeeded, len(s.Failed), s.Failed)
	fmt.Fprintf(w, "sum of squares: %d\n", s.Total)
	fmt.Fprintf(w, "counter processed: %v, stage: %s\n", info.Counters["processed"], info.State["stage"])
	if p := batch.Peak(); p > 0 { // 0 when a second run found the batch done
		fmt.Fprintf(w, "at most %d items ran at once (limit %d)\n", p, batch.MaxConcurrent)
	}
	return nil
}
