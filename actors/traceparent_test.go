package actors

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestTraceParentMatchesW3CPropagator(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled} {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags})
		carrier := propagation.MapCarrier{}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), carrier)
		got := FormatTraceParent(sc)
		if want := carrier.Get("traceparent"); got != want {
			t.Fatalf("FormatTraceParent = %q, the W3C propagator writes %q", got, want)
		}
		back := ParseTraceParent(got)
		if back.TraceID() != tid || back.SpanID() != sid || back.IsSampled() != sc.IsSampled() || !back.IsRemote() {
			t.Fatalf("ParseTraceParent(%q) = %v", got, back)
		}
	}
	if FormatTraceParent(trace.SpanContext{}) != "" {
		t.Fatal("an invalid span context formats as a traceparent")
	}
	for _, bad := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if ParseTraceParent(bad).IsValid() {
			t.Fatalf("ParseTraceParent(%q) is valid", bad)
		}
	}
}
