// Command nightly_report declares a schedule in code (package report) and
// shows what Bootstrap made of it: the schedule stored in the database and
// its next run. Then it triggers one run at once and prints its result.
//
//	go run ./examples/nightly_report [database]
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/stent-go/stent/examples/nightly_report/report"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func main() {
	path := "report.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	if err := run(context.Background(), os.Stdout, path); err != nil {
		log.Fatal(err)
	}
}

// run bootstraps on the database at path, prints the declared schedule and
// runs it once.
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
	info, err := ex.GetSchedule(ctx, "nightly-report")
	if err != nil {
		return err
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "schedule %s: %s, next at %s Paris time\n", info.Name, report.Report.Name(),
		info.NextRunAt.In(paris).Format("15:04"))
	id, err := ex.TriggerSchedule(ctx, "nightly-report")
	if err != nil {
		return err
	}
	for {
		x, err := ex.Execution(ctx, id)
		if err != nil {
			return err
		}
		if x.Status.Terminal() {
			fmt.Fprintf(w, "triggered now: %s %s\n", x.Status, x.Output)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
