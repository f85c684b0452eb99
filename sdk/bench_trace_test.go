package sdk_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/stent-go/stent/sdk"
)

// BenchmarkSeqTracing is BenchmarkSeq (100 sequential child calls) with a
// tracer provider: "noop" is go.opentelemetry.io/otel/trace/noop, "sdk" the
// OpenTelemetry SDK sampling every span into a batcher whose exporter
// drops them (the cost of recording, not of shipping). BenchmarkSeq itself
// runs with the default, the global provider, which records nothing while
// the program sets none.
func BenchmarkSeqTracing(b *testing.B) {
	for _, c := range []struct {
		name string
		tp   func(b *testing.B) sdk.ExecutorOption
	}{
		{"noop", func(*testing.B) sdk.ExecutorOption { return sdk.WithTracerProvider(noop.NewTracerProvider()) }},
		// Every span sampled and recorded, and no span processor: the
		// cost of recording alone.
		{"record", func(b *testing.B) sdk.ExecutorOption {
			tp := sdktrace.NewTracerProvider()
			b.Cleanup(func() {
				if err := tp.Shutdown(context.Background()); err != nil {
					b.Error(err)
				}
			})
			return sdk.WithTracerProvider(tp)
		}},
		{"sdk", benchTracerProvider},
		// Every span sampled, and handed at its end straight to an
		// exporter that drops it (no batcher's goroutine): what
		// recording and ending the spans cost.
		{"syncer", func(b *testing.B) sdk.ExecutorOption {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
			b.Cleanup(func() {
				if err := tp.Shutdown(context.Background()); err != nil {
					b.Error(err)
				}
			})
			return sdk.WithTracerProvider(tp)
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, _ := benchExecutor(b, c.tp(b))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				runSeq(b, ctx)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*seqSteps), "ms/step")
		})
	}
}

// BenchmarkObservabilityCost measures what turning on both metrics and
// tracing costs per step: BenchmarkSeq's workflow (100 sequential child
// calls) on two executors in one process, each on its own database, one
// with neither and one with benchMeterProvider and benchTracerProvider
// (every span sampled and recorded, batched to an exporter that drops
// them). Each iteration runs the workflow once on each, in alternating
// order, so that whatever else the machine does slows both alike. It
// reports the per-step time of each and on/off, the cost as a ratio.
//
//	go test -run '^$' -bench ObservabilityCost -benchtime 300x ./sdk/
func BenchmarkObservabilityCost(b *testing.B) {
	offCtx, _ := benchExecutor(b)
	onCtx, _ := benchExecutor(b, benchMeterProvider(b), benchTracerProvider(b))
	// One run of each before timing: the first pays for opening things.
	runSeq(b, offCtx)
	runSeq(b, onCtx)
	var off, on time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			off += runSeq(b, offCtx)
			on += runSeq(b, onCtx)
		} else {
			on += runSeq(b, onCtx)
			off += runSeq(b, offCtx)
		}
	}
	steps := float64(b.N * seqSteps)
	b.ReportMetric(float64(off.Microseconds())/1000/steps, "ms/step-off")
	b.ReportMetric(float64(on.Microseconds())/1000/steps, "ms/step-on")
	b.ReportMetric(float64(on)/float64(off), "on/off")
}
