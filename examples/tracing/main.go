// Command tracing runs the simple_flow workflow (two orders, one durable
// child call each, each sleeping a second) with OpenTelemetry tracing on,
// and prints every span to stdout with the stdout exporter, one JSON
// object per span. A caller span ("checkout") starts the workflow, so the
// whole run is one trace under it. docs/observability.md shows its output.
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/stent-go/stent/examples/simple_flow/orders"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// sample:begin main
func run() error {
	ctx := context.Background()
	exporter, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	defer func() {
		if err := tp.Shutdown(ctx); err != nil { // flushes the spans
			log.Print(err)
		}
	}()
	otel.SetTracerProvider(tp) // Stent uses the global provider unless given one (sdk.WithTracerProvider)

	backend, err := sqlite.Open(":memory:")
	if err != nil {
		return err
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(), sdk.WithNodeID("tracing-example"),
		sdk.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return err
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()

	ctx, span := tp.Tracer("checkout").Start(ctx, "checkout") // the caller's span: the workflow joins its trace
	defer span.End()
	result, err := orders.OrderWorkflow.Call(ctx, []string{"ORD-001", "ORD-002"})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%+v\n", result)
	return nil
}

// sample:end
