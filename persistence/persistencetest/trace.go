package persistencetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// Two W3C traceparents (version, trace ID, parent span ID, flags).
const (
	rootTrace  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	childTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd8ad8-01"
)

// testTraceContext checks that an execution's TraceContext is stored on
// insert, by CreateExecution and by a Commit's Create, and read back by
// every read that returns executions, unchanged by leases and updates.
func (s *suite) testTraceContext(t *testing.T) {
	t.Parallel()

	t.Run("KeptFromInsertToEnd", func(t *testing.T) {
		b, ctx := s.setup(t)
		root := newExec("traced")
		root.TraceContext = rootTrace
		require.Equal(t, rootTrace, create(t, ctx, b, root).TraceContext)
		require.Equal(t, rootTrace, get(t, ctx, b, "traced").TraceContext)

		acquired, err := b.AcquireLease(ctx, "traced", owner, time.Minute)
		require.NoError(t, err)
		require.Equal(t, rootTrace, acquired.TraceContext)

		child := newExec("traced/0")
		child.ParentID, child.ParentPos, child.RootID, child.TraceContext = "traced", 0, "traced", childTrace
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "traced", Epoch: acquired.Epoch, Create: []*persistence.Execution{child},
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryCall, Name: testFunction, ChildID: "traced/0"}},
			Update:  &persistence.Update{Status: persistence.StatusPending, Release: true, Attempts: 1}})
		require.Equal(t, childTrace, get(t, ctx, b, "traced/0").TraceContext)
		require.Equal(t, rootTrace, get(t, ctx, b, "traced").TraceContext, "an update keeps it")

		claimed, err := b.ClaimDue(ctx, "node-b", nil, nil, time.Minute, 10)
		require.NoError(t, err)
		byID := map[string]string{}
		for _, e := range claimed {
			byID[e.ID] = e.TraceContext
		}
		require.Equal(t, map[string]string{"traced": rootTrace, "traced/0": childTrace}, byID)

		list, err := b.ListExecutions(ctx, persistence.ListFilter{})
		require.NoError(t, err)
		require.Len(t, list, 2)
		for _, e := range list {
			require.Equal(t, byID[e.ID], e.TraceContext)
		}
	})

	t.Run("EmptyWhenNone", func(t *testing.T) {
		b, ctx := s.setup(t)
		require.Empty(t, create(t, ctx, b, newExec("untraced")).TraceContext)
		require.Empty(t, get(t, ctx, b, "untraced").TraceContext)
	})
}
