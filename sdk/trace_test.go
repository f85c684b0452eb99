package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// The traced workflow: three steps (the third blocks on its first run
// until its node is killed), a step that fails once and is retried, a Map
// of 10 children, a sleep that passivates and a signal wait.
var (
	traceFlakyRuns   atomic.Int32
	traceBlockerRuns atomic.Int32
	traceBlocked     = make(chan struct{}, 1)

	traceStep  = sdk.Durable("test_trace_step", func(ctx context.Context, n int) (int, error) { return n, nil })
	traceItem  = sdk.Durable("test_trace_item", func(ctx context.Context, n int) (int, error) { return n * n, nil })
	traceFlaky = sdk.Durable("test_trace_flaky", func(ctx context.Context, n int) (int, error) {
		if traceFlakyRuns.Add(1) == 1 {
			return 0, errors.New("transient failure")
		}
		return n, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 3, InitialDelay: 20 * time.Millisecond}))
	traceBlocker = sdk.Durable("test_trace_blocker", func(ctx context.Context, n int) (int, error) {
		if traceBlockerRuns.Add(1) == 1 {
			traceBlocked <- struct{}{}
			<-ctx.Done() // its node is killed here
			return 0, ctx.Err()
		}
		return n, nil
	})
	traceFlow = sdk.Durable("test_trace_flow", func(ctx context.Context, _ int) (int, error) {
		sum := 0
		for i := 1; i <= 2; i++ {
			v, err := traceStep.Call(ctx, i)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		v, err := traceFlaky.Call(ctx, 3)
		if err != nil {
			return 0, err
		}
		sum += v
		squares, err := traceItem.Map(ctx, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
		if err != nil {
			return 0, err
		}
		for _, s := range squares {
			sum += s
		}
		if err := sdk.Sleep(ctx, 1100*time.Millisecond); err != nil { // passivates, and wakes on either node
			return 0, err
		}
		got, err := sdk.WaitForSignal[int](ctx, "go")
		if err != nil {
			return 0, err
		}
		v, err = traceBlocker.Call(ctx, got)
		if err != nil {
			return 0, err
		}
		return sum + v, nil
	})
)

// TestTraceAcrossNodesAndAKill runs traceFlow on two in-process nodes on
// one database, each with its own tracer provider exporting to one
// in-memory exporter, kills the node that runs the blocking step, and
// checks that the spans make one trace whose tree is the execution tree:
// the caller's span, the start, each attempt of the root (on both nodes:
// before the sleep's passivation, after the wake-up, and the takeover
// after the kill), a call span per child under the attempt that called
// it, each child's attempts under its call span (the retried step's two),
// and no span whose parent is missing.
//
// The kill is Executor.Crash (export_test.go): the node's actor system is
// dropped at once (Runtime.Discard) without giving back its leases, as a
// crash would; the survivor takes the root over when its lease runs out.
// Unlike a real crash, the killed node's open spans still end (as
// "stopped") when its actors stop, so the exporter holds them.
func TestTraceAcrossNodesAndAKill(t *testing.T) {
	traceFlakyRuns.Store(0)
	traceBlockerRuns.Store(0)
	exp := tracetest.NewInMemoryExporter()
	_, open := testDatabase(t)
	node := func(name string) (*sdk.Executor, *sdktrace.TracerProvider) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { require.NoError(t, tp.Shutdown(context.Background())) })
		b := open(t)
		require.NoError(t, b.Init(context.Background()))
		ex, err := sdk.New(b, sdk.WithNodeID(name), sdk.WithTracerProvider(tp), sdk.WithLeaseDuration(time.Second),
			sdk.WithPollInterval(50*time.Millisecond), sdk.WithLogger(stenttest.Logger(t)))
		require.NoError(t, err)
		go func() { _ = ex.Serve(context.Background()) }()
		require.NoError(t, ex.WaitUntilReady(context.Background()))
		return ex, tp
	}
	exA, tpA := node("trace-a")
	exB, _ := node("trace-b")
	closed := map[*sdk.Executor]bool{}
	t.Cleanup(func() {
		for _, ex := range []*sdk.Executor{exA, exB} {
			if !closed[ex] {
				require.NoError(t, ex.Close())
			}
		}
	})

	// A caller with a span of its own: the root joins its trace.
	ctx, caller := tpA.Tracer("test").Start(context.Background(), "caller")
	h, err := traceFlow.Start(sdk.WithExecutor(ctx, exA), 0)
	require.NoError(t, err)
	caller.End()
	root := h.ID()

	testutil.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := exB.Execution(context.Background(), root)
		if err != nil {
			return err
		}
		if info.WaitingOn != "signal go" {
			return fmt.Errorf("waiting on %q", info.WaitingOn)
		}
		return nil
	})
	require.NoError(t, exB.SendSignal(context.Background(), root, "go", 7))
	select {
	case <-traceBlocked:
	case <-time.After(20 * time.Second):
		t.Fatal("the blocking step did not start")
	}
	// Kill the node that runs the root (and its blocking step in memory).
	victim, survivor := exA, exB
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		switch {
		case slices.Contains(exA.ActiveExecutions(), root):
			victim, survivor = exA, exB
		case slices.Contains(exB.ActiveExecutions(), root):
			victim, survivor = exB, exA
		default:
			return errors.New("no node runs the root")
		}
		return nil
	})
	killed := victim.NodeID()
	require.NoError(t, victim.Crash())
	closed[victim] = true

	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		info, err := survivor.Execution(context.Background(), root)
		if err != nil {
			return err
		}
		if info.Status != sdk.StatusCompleted {
			return fmt.Errorf("root is %s", info.Status)
		}
		return nil
	})
	out, err := survivor.Execution(context.Background(), root)
	require.NoError(t, err)
	require.JSONEq(t, `398`, string(out.Output)) // 1+2+3+385+7

	// The survivor's spans end as its actors stop, just after the outcome
	// is written: wait until the root's last attempt span is there.
	var spans tracetest.SpanStubs
	testutil.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		spans = exp.GetSpans()
		for _, s := range spans {
			if attr(s, actors.AttrExecutionID) == root && outcome(s) == "completed" {
				return nil
			}
		}
		return errors.New("the root's completed attempt span is not exported yet")
	})
	checkTraceTree(t, survivor, spans, caller.SpanContext(), root, killed)
}

// checkTraceTree checks the spans of the traced workflow against the
// execution tree in the database.
func checkTraceTree(t *testing.T, ex *sdk.Executor, spans tracetest.SpanStubs, caller trace.SpanContext, root, killed string) {
	t.Helper()
	ctx := context.Background()
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	attempts := map[string][]tracetest.SpanStub{} // by execution ID
	var tree strings.Builder
	for _, s := range spans {
		require.Equal(t, caller.TraceID(), s.SpanContext.TraceID(), "span %q is in another trace", s.Name)
		if p := s.Parent.SpanID(); s.Parent.IsValid() && p != caller.SpanID() {
			_, ok := byID[p]
			require.True(t, ok, "span %q (%s) is an orphan: its parent %s was not exported", s.Name, attr(s, actors.AttrExecutionID), p)
		}
		if strings.HasPrefix(s.Name, "run ") {
			id := attr(s, actors.AttrExecutionID)
			attempts[id] = append(attempts[id], s)
		}
	}
	var starts []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "start test_trace_flow" {
			starts = append(starts, s)
		}
	}
	require.Len(t, starts, 1)
	start := starts[0]
	require.Equal(t, caller.SpanID(), start.Parent.SpanID(), "the start is a child of the caller's span")

	// The root: every attempt (before the sleep, after the wake-up, the
	// takeover) is a child of the start, and both nodes ran it.
	nodes := map[string]bool{}
	outcomes := map[string]int{}
	for _, s := range attempts[root] {
		require.Equal(t, start.SpanContext.SpanID(), s.Parent.SpanID())
		nodes[attr(s, actors.AttrNode)] = true
		outcomes[outcome(s)]++
	}
	require.Len(t, nodes, 2, "the root ran on both nodes")
	require.Equal(t, 1, outcomes["completed"])
	require.GreaterOrEqual(t, outcomes["passivated"], 1, "the sleep passivated it")
	require.GreaterOrEqual(t, outcomes["stopped"], 1, "the kill stopped an attempt")

	// Every child: its attempts are children of an attempt of its parent,
	// directly for a step run in memory, else through the call span that
	// started it.
	journal, err := ex.Journal(ctx, root)
	require.NoError(t, err)
	children := 0
	for _, je := range journal {
		if je.Kind != "call" {
			continue
		}
		children++
		info, err := ex.Execution(ctx, je.ChildID)
		require.NoError(t, err)
		require.Equal(t, root, info.ParentID)
		require.NotEmpty(t, attempts[je.ChildID], "no attempt span of %s (%s)", je.ChildID, je.Name)
		for _, s := range attempts[je.ChildID] {
			parent, ok := byID[s.Parent.SpanID()]
			require.True(t, ok)
			if strings.HasPrefix(parent.Name, "call ") {
				// A child written for a claim: its attempts are children
				// of the call span that started it.
				require.Equal(t, "call "+je.Name, parent.Name)
				require.Equal(t, je.ChildID, attr(parent, actors.AttrChildID))
				require.Equal(t, root, attr(parent, actors.AttrExecutionID))
				parent, ok = byID[parent.Parent.SpanID()]
				require.True(t, ok)
			}
			// A step run in memory: a child of its parent's attempt.
			require.Equal(t, "run test_trace_flow", parent.Name, "%s's attempt is under an attempt of its parent", je.ChildID)
			require.Equal(t, root, attr(parent, actors.AttrExecutionID))
		}
	}
	require.Equal(t, 14, children, "two steps, the flaky step, 10 items and the blocking step")

	flaky := attemptsOf(attempts, "test_trace_flaky")
	require.Equal(t, []string{"1 retry", "2 completed"}, flaky, "the retry is a second attempt under the same call")
	blocker := attemptsOf(attempts, "test_trace_blocker")
	require.Contains(t, blocker, "1 stopped", "the blocking step's attempt on the killed node")
	require.Contains(t, blocker, "1 completed", "and its run on the survivor")
	items := 0
	for id, ss := range attempts {
		if attr(ss[0], actors.AttrFunction) == "test_trace_item" {
			items++
			require.Equal(t, "1 completed", attemptsOf(map[string][]tracetest.SpanStub{id: ss}, "test_trace_item")[len(ss)-1])
		}
	}
	require.Equal(t, 10, items)

	ops := map[string]int{}
	for _, s := range spans {
		if op := attr(s, actors.AttrOperation); op != "" {
			ops[s.Name]++
		}
	}
	require.Positive(t, ops["sleep"])
	require.Positive(t, ops["signal go"])
	// The Map's items run in memory as steps: no call span of their own.
	require.Zero(t, ops["call test_trace_item"])

	// The tree as a user would see it, in the test's log.
	printSpanTree(&tree, spans, caller.SpanID(), 0)
	t.Logf("killed %s; trace:\n%s", killed, tree.String())
}

// attemptsOf returns "<attempt> <outcome>" of the attempt spans of fn's
// executions, sorted.
func attemptsOf(attempts map[string][]tracetest.SpanStub, fn string) []string {
	var out []string
	for _, ss := range attempts {
		for _, s := range ss {
			if attr(s, actors.AttrFunction) == fn {
				out = append(out, fmt.Sprintf("%d %s", intAttr(s, actors.AttrAttempt), outcome(s)))
			}
		}
	}
	slices.Sort(out)
	return out
}

func attr(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// outcome is how the attempt of run span s ended: its stent.outcome, or
// "completed" for a span whose status is Ok.
func outcome(s tracetest.SpanStub) string {
	if o := attr(s, actors.AttrOutcome); o != "" {
		return o
	}
	if s.Status.Code == codes.Ok {
		return "completed"
	}
	return ""
}

func intAttr(s tracetest.SpanStub, k attribute.Key) int64 {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.AsInt64()
		}
	}
	return 0
}

// printSpanTree writes the spans below parent, indented, in start order.
func printSpanTree(w *strings.Builder, spans tracetest.SpanStubs, parent trace.SpanID, depth int) {
	var kids tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == parent {
			kids = append(kids, s)
		}
	}
	slices.SortFunc(kids, func(a, b tracetest.SpanStub) int { return a.StartTime.Compare(b.StartTime) })
	for _, s := range kids {
		fmt.Fprintf(w, "%s%s [%s] %s %s %s\n", strings.Repeat("  ", depth), s.Name, attr(s, actors.AttrNode),
			attr(s, actors.AttrExecutionID), outcome(s), s.Status.Description)
		printSpanTree(w, spans, s.SpanContext.SpanID(), depth+1)
	}
}
