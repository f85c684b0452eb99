package sdk_test

import (
	"context"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stent-go/stent/sdk"
)

// benchObservability returns the executor options that turn on what the
// environment asks for, so that every benchmark can measure the cost of
// recording metrics and spans:
//
//   - STENT_BENCH_METRICS=prometheus: a real OpenTelemetry meter provider
//     exporting to a Prometheus registry, as a stent-node has;
//   - STENT_BENCH_TRACING=sdk: the OpenTelemetry SDK sampling every span
//     into a batcher whose exporter drops them (the cost of recording, not
//     of shipping).
//
// For example:
//
//	go test -run xxx -bench 'Seq$|Fanout' -count 5 ./sdk/                                                        # off
//	STENT_BENCH_METRICS=prometheus STENT_BENCH_TRACING=sdk go test -run xxx -bench 'Seq$|Fanout' -count 5 ./sdk/  # on
func benchObservability(b *testing.B) []sdk.ExecutorOption {
	var opts []sdk.ExecutorOption
	if os.Getenv("STENT_BENCH_METRICS") == "prometheus" {
		opts = append(opts, benchMeterProvider(b))
	}
	if os.Getenv("STENT_BENCH_TRACING") == "sdk" {
		opts = append(opts, benchTracerProvider(b))
	}
	return opts
}

// benchMeterProvider is the option of a real OpenTelemetry meter provider
// exporting to a Prometheus registry, shut down with the benchmark.
func benchMeterProvider(b *testing.B) sdk.ExecutorOption {
	exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	b.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	return sdk.WithMeterProvider(mp)
}

// benchTracerProvider is the option of the OpenTelemetry SDK sampling
// every span into a batcher whose exporter drops them, shut down with the
// benchmark.
func benchTracerProvider(b *testing.B) sdk.ExecutorOption {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	})
	return sdk.WithTracerProvider(tp)
}
