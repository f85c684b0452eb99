package sdk

import (
	"reflect"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of Stent's spans.
const tracerName = "github.com/stent-go/stent"

// WithTracerProvider sets the OpenTelemetry tracer provider the executor
// records its spans with: one per root start ("start <function>"), one per
// attempt of an execution ("run <function>") and one per durable operation
// of a body ("call <function>", "sleep", "signal <name>", "now", "permit
// <function>"), parented across child calls, retries, takeovers and nodes
// (docs/observability.md, "Traces"). The default is the global provider,
// otel.GetTracerProvider(), which records nothing until the program sets
// one (otel.SetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) ExecutorOption {
	return func(o *executorOptions) { o.tracerProvider = tp }
}

// tracer returns the executor's tracer, or nil for the no-op provider:
// then the runtime starts no span at all (a root still records the
// caller's span context, for nodes that trace).
// globalDelegate is the type of the global tracer provider while the
// program has set none (otel's delegating provider, which records
// nothing), or nil if one was set before this package initialised.
var globalDelegate = func() reflect.Type {
	t := reflect.TypeOf(otel.GetTracerProvider())
	if t.String() != "*global.tracerProvider" {
		return nil
	}
	return t
}()

// tracerRecording reports, for an executor on the global provider, whether
// the program has set one: until then the runtime starts no span (the
// delegate's spans record nothing and cost an allocation each).
func (o *executorOptions) tracerRecording() func() bool {
	if o.tracerProvider != nil || globalDelegate == nil {
		return nil
	}
	return func() bool { return reflect.TypeOf(otel.GetTracerProvider()) != globalDelegate }
}

func (o *executorOptions) tracer() trace.Tracer {
	tp := o.tracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if _, ok := tp.(noop.TracerProvider); ok {
		return nil
	}
	return tp.Tracer(tracerName)
}
