package actors

import (
	"context"
	"encoding/hex"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/stent-go/stent/persistence"
)

// The attributes of Stent's spans (docs/observability.md, "Traces"). Every
// span has the execution's ID and function and the node's name; an attempt
// span also its attempt, queue and parent; an operation span its
// operation, journal position and what it names.
const (
	AttrExecutionID = attribute.Key("stent.execution.id")
	AttrFunction    = attribute.Key("stent.function")
	AttrAttempt     = attribute.Key("stent.attempt")
	AttrQueue       = attribute.Key("stent.queue")
	AttrNode        = attribute.Key("stent.node")
	AttrParentID    = attribute.Key("stent.parent.id")
	AttrRootID      = attribute.Key("stent.root.id")
	// AttrOutcome is how an attempt ended: completed, failed, canceled,
	// timed_out, retry, passivated, lease_lost, stopped or restarted.
	AttrOutcome = attribute.Key("stent.outcome")
	// AttrOperation is an operation span's kind: call, sleep, signal, now
	// or permit.
	AttrOperation = attribute.Key("stent.operation")
	AttrPosition  = attribute.Key("stent.journal.position")
	AttrChildID   = attribute.Key("stent.child.id")
	AttrCallee    = attribute.Key("stent.call.function")
	AttrSignal    = attribute.Key("stent.signal.name")
	// AttrReplayed marks an operation the journal held already: its
	// result came from the journal (or, for a call, the child was started
	// by an earlier attempt).
	AttrReplayed = attribute.Key("stent.replayed")
)

// The operations of operation spans (AttrOperation).
const (
	opCall   = "call"
	opSleep  = "sleep"
	opSignal = "signal"
	opNow    = "now"
	opPermit = "permit"
)

// tracing is the runtime's tracer, with the span names it has built.
type tracing struct {
	t trace.Tracer
	// off is set when the runtime has no tracer: no span is started.
	off bool
	// recording, when set, reports whether spans are recorded at all now
	// (the global provider, while the program has set none, records
	// nothing): when it says no, no span is started.
	recording func() bool
	node      attribute.KeyValue
	// names caches "<prefix> <name>" span names by prefix and name, so that
	// starting a span builds no string.
	mu    sync.RWMutex
	names map[string]map[string]string
}

// noSpan is the span of an operation when tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

func newTracing(t trace.Tracer, recording func() bool, node string) *tracing {
	tr := &tracing{t: t, recording: recording, node: AttrNode.String(node), names: make(map[string]map[string]string)}
	if t == nil {
		tr.t, tr.off = noop.NewTracerProvider().Tracer(""), true
	}
	return tr
}

// skip reports whether no span is to be started now.
func (tr *tracing) skip() bool {
	return tr.off || tr.recording != nil && !tr.recording()
}

// name returns "<prefix> <name>", built once.
func (tr *tracing) name(prefix, name string) string {
	tr.mu.RLock()
	v, ok := tr.names[prefix][name]
	tr.mu.RUnlock()
	if ok {
		return v
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := tr.names[prefix]
	if m == nil {
		m = make(map[string]string)
		tr.names[prefix] = m
	}
	if v, ok = m[name]; !ok {
		v = prefix + " " + name
		m[name] = v
	}
	return v
}

// FormatTraceParent returns sc as a W3C traceparent, or "" if sc is not
// valid.
func FormatTraceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	// One allocation: every child a step starts formats one.
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(b[:], "00-")
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	copy(b[52:], "-00")
	if sc.IsSampled() {
		b[54] = '1'
	}
	return string(b[:])
}

// ParseTraceParent returns the span context of a W3C traceparent; it is
// not valid if s is not one.
func ParseTraceParent(s string) trace.SpanContext {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}
	}
	tid, err := trace.TraceIDFromHex(s[3:35])
	if err != nil {
		return trace.SpanContext{}
	}
	sid, err := trace.SpanIDFromHex(s[36:52])
	if err != nil {
		return trace.SpanContext{}
	}
	var flags trace.TraceFlags
	if s[54] == '1' || s[54] == '3' {
		flags = trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

// StartRootSpan starts the span of a root's start, a child of ctx's span
// (a caller with a span joins its trace), and records it in rec as the
// parent of the root's attempts. The caller ends the span with the
// returned function once the start is recorded (or failed).
func (rt *Runtime) StartRootSpan(ctx context.Context, rec *persistence.Execution) func(error) {
	if rt.tr.skip() {
		// Still join the caller's trace, for nodes that record spans.
		rec.TraceContext = FormatTraceParent(trace.SpanContextFromContext(ctx))
		return func(error) {}
	}
	_, sp := rt.tr.t.Start(ctx, rt.tr.name("start", rec.Function), trace.WithSpanKind(trace.SpanKindProducer))
	rec.TraceContext = FormatTraceParent(sp.SpanContext())
	if sp.IsRecording() {
		sp.SetAttributes(AttrExecutionID.String(rec.ID), AttrFunction.String(rec.Function), AttrQueue.String(rec.Queue), rt.tr.node)
	}
	return func(err error) { endSpan(sp, err) }
}

// endSpan ends sp, recording err as its error.
func endSpan(sp trace.Span, err error) {
	if err != nil && sp.IsRecording() {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, err.Error())
	}
	sp.End()
}

// startAttemptSpan starts the span of the attempt about to run (or settle
// early), parented on the execution's stored trace context.
func (e *execution) startAttemptSpan() {
	if e.span != nil || e.rt.tr.skip() {
		return
	}
	rt := e.rt
	ctx := context.Background()
	if sc := ParseTraceParent(e.rec.TraceContext); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	rec := e.rec
	// Sized for all seven: an append past the capacity would copy them.
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, AttrExecutionID.String(e.id), AttrFunction.String(rec.Function), AttrAttempt.Int(e.attempt),
		AttrQueue.String(rec.Queue), rt.tr.node, AttrRootID.String(rec.RootID))
	if rec.ParentID != "" {
		attrs = append(attrs, AttrParentID.String(rec.ParentID))
	}
	_, sp := rt.tr.t.Start(ctx, rt.tr.name("run", rec.Function), trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrs...))
	e.span = sp
}

// traceBody returns the body's context with the attempt's span, so that
// the body's operations and the user's own spans are its children.
func (e *execution) traceBody(ctx context.Context) context.Context {
	if e.span == nil || !e.span.SpanContext().IsValid() {
		return ctx
	}
	return trace.ContextWithSpan(ctx, e.span)
}

// endAttemptSpan ends the attempt's span, if open, with its outcome.
func (e *execution) endAttemptSpan(outcome string, info *persistence.ErrorInfo) {
	sp := e.span
	if sp == nil {
		return
	}
	e.span = nil
	if sp.IsRecording() {
		if outcome == string(persistence.StatusCompleted) && info == nil {
			// The common end says so by its status alone: an attribute
			// added after the start makes the SDK copy the span's
			// attributes and deduplicate them, about a third of the
			// span's cost.
			sp.SetStatus(codes.Ok, "")
			sp.End()
			return
		}
		sp.SetAttributes(AttrOutcome.String(outcome))
		if info != nil {
			sp.AddEvent("exception", trace.WithAttributes(attribute.String("exception.type", string(info.Kind)),
				attribute.String("exception.message", info.Message)))
			sp.SetStatus(codes.Error, info.Message)
		}
	}
	sp.End()
}

// endAttemptSpanRecorded ends the attempt's span once its outcome is
// written: outcome is nil for a retry.
func (e *execution) endAttemptSpanRecorded(outcome *Outcome, info *persistence.ErrorInfo) {
	if e.span == nil {
		return
	}
	name := "retry"
	if outcome != nil {
		name = string(outcome.Status)
	}
	e.endAttemptSpan(name, info)
}

// endAttemptSpanStopped ends the span of an attempt whose activation stops
// without recording an outcome: passivated, its lease lost, the node
// stopping.
func (e *execution) endAttemptSpanStopped() {
	if e.span == nil {
		return
	}
	switch {
	case e.passivated || e.closed == errPassivated:
		e.endAttemptSpan("passivated", nil)
	case e.closed == errLeaseLost:
		e.endAttemptSpan("lease_lost", &persistence.ErrorInfo{Kind: "lease_lost", Message: errLeaseLost.Error()})
	case e.closed == errRestarted:
		e.endAttemptSpan("restarted", nil)
	default:
		e.endAttemptSpan("stopped", nil)
	}
}

// startOp starts the span of a durable operation of the body, a child of
// ctx's span (the attempt's, or one the user started).
func (h *handle) startOp(ctx context.Context, op, name string) trace.Span {
	tr := h.rt.tr
	if tr.skip() || !trace.SpanFromContext(ctx).IsRecording() {
		// No tracer, or the attempt's span is not recorded (not sampled,
		// or tracing began after it started): its operations are not.
		return noSpan
	}
	spanName := op
	if name != "" {
		spanName = tr.name(op, name)
	}
	// The attempt's span, the parent, has the function, attempt and node.
	var attrs trace.SpanStartEventOption
	switch op {
	case opSignal:
		attrs = trace.WithAttributes(AttrOperation.String(op), AttrExecutionID.String(h.id), AttrSignal.String(name))
	case opCall:
		attrs = trace.WithAttributes(AttrOperation.String(op), AttrExecutionID.String(h.id), AttrCallee.String(name))
	default:
		attrs = trace.WithAttributes(AttrOperation.String(op), AttrExecutionID.String(h.id))
	}
	_, sp := tr.t.Start(ctx, spanName, attrs)
	return sp
}

// opAt records the journal position of an operation's span, and whether
// the journal held the operation already.
func opAt(sp trace.Span, pos int, replayed bool) {
	if sp.IsRecording() {
		sp.SetAttributes(AttrPosition.Int(pos))
		if replayed {
			sp.SetAttributes(AttrReplayed.Bool(true))
		}
	}
}

// openCalls are the spans of calls started and not awaited yet, ended
// when the attempt's body ends.
type openCalls struct {
	mu    sync.Mutex
	spans map[trace.Span]struct{}
}

// trackCall remembers the span of a call until it is awaited.
func (h *handle) trackCall(sp trace.Span) {
	if !sp.IsRecording() {
		return
	}
	h.calls.mu.Lock()
	if h.calls.spans == nil {
		h.calls.spans = make(map[trace.Span]struct{})
	}
	h.calls.spans[sp] = struct{}{}
	h.calls.mu.Unlock()
}

// endCall ends the span of a call once it is awaited (once).
func (h *handle) endCall(sp trace.Span, err error) {
	if sp == nil || !sp.IsRecording() {
		return
	}
	h.calls.mu.Lock()
	_, open := h.calls.spans[sp]
	delete(h.calls.spans, sp)
	h.calls.mu.Unlock()
	if open {
		endSpan(sp, err)
	}
}

// endCalls ends the spans of calls the body never awaited.
func (h *handle) endCalls() {
	h.calls.mu.Lock()
	spans := h.calls.spans
	h.calls.spans = nil
	h.calls.mu.Unlock()
	for sp := range spans {
		sp.SetAttributes(attribute.Bool("stent.call.awaited", false))
		sp.End()
	}
}
