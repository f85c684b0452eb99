// Command media_pipeline runs a video through a multi-stage pipeline on a
// SQLite file: validation, three renditions in parallel, a thumbnail, then
// a durable wait for an editor's approval signal (which this program sends
// once the pipeline waits for it) and a durable one-second embargo before
// publishing. It prints each stage as it sees it and the release.
//
//	go run ./examples/media_pipeline [database]
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/stent-go/stent/examples/media_pipeline/media"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func main() {
	path := "media.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(context.Background(), os.Stdout, path); err != nil {
		log.Fatal(err)
	}
}

// run publishes one upload on the database at path and writes what
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
	u := media.Upload{ID: "VID-42", Name: "launch.mp4", Embargo: time.Second}
	h, err := media.Pipeline.Start(ctx, u, sdk.WithIdempotencyKey("media:"+u.ID))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "pipeline %s started for %s\n", h.ID(), u.Name)
	if err := waitForStage(ctx, w, ex, h.ID(), "awaiting approval"); err != nil {
		return err
	}
	info, err := ex.Execution(ctx, h.ID())
	if err != nil {
		return err
	}
	if info.Status != sdk.StatusCompleted { // a second run finds it done
		fmt.Fprintln(w, "sending the editor's approval")
		if err := ex.SendSignal(ctx, h.ID(), media.ApprovalSignal, media.Approval{Approved: true, By: "editor@example.com"}); err != nil {
			return err
		}
	}
	rel, err := h.Result(ctx)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rel, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "release:\n%s\n", b)
	return nil
}

// waitForStage polls the pipeline's "stage" state, printing each new
// stage, until it reaches want or the pipeline ends.
func waitForStage(ctx context.Context, w io.Writer, ex *sdk.Executor, id, want string) error {
	last := ""
	for {
		info, err := ex.Execution(ctx, id)
		if err != nil {
			return err
		}
		var stage string
		if s, ok := info.State["stage"]; ok {
			if err := json.Unmarshal(s, &stage); err != nil {
				return err
			}
		}
		if stage != last && stage != "" {
			fmt.Fprintf(w, "stage: %s\n", stage)
			last = stage
		}
		if stage == want || info.Status.Terminal() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
