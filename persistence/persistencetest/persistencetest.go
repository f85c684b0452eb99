// Package persistencetest is the conformance suite of persistence.Backend:
// every backend runs Exercise from its own tests, so that all of them keep
// the contract the same way.
//
//	func TestBackend(t *testing.T) {
//		t.Parallel()
//		persistencetest.Exercise(t, func(t *testing.T) persistence.Backend { return openTestDB(t) })
//	}
package persistencetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// Exercise runs the conformance suite against the backends newBackend
// returns. Every subtest calls newBackend once and runs in parallel with the
// others, so newBackend must return a fresh, empty database on which Init has
// already been called, and must register its own cleanup (t.Cleanup) to
// close it. Some subtests close the backend themselves, so that cleanup
// must accept a second Close (the SQLite backend returns nil for it).
//
// The suite waits for real leases to expire in a few places, with TTLs of
// 50ms; it never sleeps to make an assertion hold.
func Exercise(t *testing.T, newBackend func(t *testing.T) persistence.Backend) {
	t.Helper()
	s := &suite{newBackend: newBackend}
	t.Run("Init", s.testInit)
	t.Run("Close", s.testClose)
	t.Run("CreateExecution", s.testCreateExecution)
	t.Run("GetExecution", s.testGetExecution)
	t.Run("ListExecutions", s.testListExecutions)
	t.Run("Apply", s.testApply)
	t.Run("EpochFence", s.testEpochFence)
	t.Run("LoadJournal", s.testLoadJournal)
	t.Run("AcquireLease", s.testAcquireLease)
	t.Run("ClaimDue", s.testClaimDue)
	t.Run("RenewAndReleaseLeases", s.testRenewAndRelease)
	t.Run("NextRunAt", s.testNextRunAt)
	t.Run("DeadLetters", s.testDeadLetters)
	t.Run("ReplayDeadLetter", s.testReplayDeadLetter)
	t.Run("Signals", s.testSignals)
	t.Run("SignalsConcurrent", s.testSignalsConcurrent)
	t.Run("Cancel", s.testCancel)
	t.Run("Permits", s.testPermits)
	t.Run("CoordinationClosed", s.testCoordinationClosed)
	t.Run("Operations", s.testOperations)
	t.Run("SchedulesCRUD", s.testSchedulesCRUD)
	t.Run("SchedulesClaim", s.testSchedulesClaim)
	t.Run("SchedulesTicks", s.testSchedulesTicks)
	t.Run("Cache", s.testCache)
	t.Run("Progress", s.testProgress)
	t.Run("Tags", s.testTags)
	t.Run("LeaseOnInsert", s.testLeaseOnInsert)
	t.Run("TraceContext", s.testTraceContext)
}

// Values the subtests share.
const (
	testFunction = "test.fn"
	testQueue    = "default"
	owner        = "node-a"
	otherOwner   = "node-b"
	// shortTTL is a lease that a subtest waits out, polling.
	shortTTL = 50 * time.Millisecond
	// waitFor bounds every poll for something that must happen.
	waitFor = 5 * time.Second
	// clockSlack is how far the backend's clock may be from this
	// process's (a database server's clock, millisecond storage).
	clockSlack = 2 * time.Second
)

type suite struct {
	newBackend func(t *testing.T) persistence.Backend
}

// setup returns a fresh backend and the test's context; the subtest runs
// in parallel with the others.
func (s *suite) setup(t *testing.T) (persistence.Backend, context.Context) {
	t.Helper()
	t.Parallel()
	return s.newBackend(t), t.Context()
}

// newExec returns a root execution of testFunction in testQueue.
func newExec(id string) *persistence.Execution {
	return &persistence.Execution{
		ID:       id,
		Function: testFunction,
		Queue:    testQueue,
		Input:    []byte(`{"id":"` + id + `"}`),
	}
}

// create inserts e and requires that it was created.
func create(t *testing.T, ctx context.Context, b persistence.Backend, e *persistence.Execution) *persistence.Execution {
	t.Helper()
	got, created, err := b.CreateExecution(ctx, e)
	require.NoError(t, err)
	require.True(t, created, "execution %s was not created", e.ID)
	return got
}

// createN inserts n executions prefix-0 ... prefix-(n-1), changed by edit
// when it is not nil.
func createN(t *testing.T, ctx context.Context, b persistence.Backend, prefix string, n int, edit func(i int, e *persistence.Execution)) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		e := newExec(fmt.Sprintf("%s-%03d", prefix, i))
		if edit != nil {
			edit(i, e)
		}
		create(t, ctx, b, e)
		ids[i] = e.ID
	}
	return ids
}

// lease acquires the lease of id for owner and returns its epoch.
func lease(t *testing.T, ctx context.Context, b persistence.Backend, id string) int64 {
	t.Helper()
	e, err := b.AcquireLease(ctx, id, owner, time.Minute)
	require.NoError(t, err)
	return e.Epoch
}

// apply applies commits and requires every one of them to succeed.
func apply(t *testing.T, ctx context.Context, b persistence.Backend, commits ...*persistence.Commit) {
	t.Helper()
	errs, err := b.Apply(ctx, commits)
	require.NoError(t, err)
	require.Len(t, errs, len(commits))
	for i, e := range errs {
		require.NoError(t, e, "commit %d", i)
	}
}

// get returns execution id, which must exist.
func get(t *testing.T, ctx context.Context, b persistence.Backend, id string) *persistence.Execution {
	t.Helper()
	e, err := b.GetExecution(ctx, id)
	require.NoError(t, err)
	return e
}

// journal returns the snapshot and entries of id.
func journal(t *testing.T, ctx context.Context, b persistence.Backend, id string) (*persistence.Snapshot, []*persistence.JournalEntry) {
	t.Helper()
	s, entries, err := b.LoadJournal(ctx, id)
	require.NoError(t, err)
	return s, entries
}

// positions lists the positions of entries.
func positions(entries []*persistence.JournalEntry) []int {
	out := []int{}
	for _, e := range entries {
		out = append(out, e.Position)
	}
	return out
}

// ids lists the IDs of executions.
func ids(execs []*persistence.Execution) []string {
	out := []string{}
	for _, e := range execs {
		out = append(out, e.ID)
	}
	return out
}

func (s *suite) testInit(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("a"))
	require.NoError(t, b.Init(ctx), "a second Init must be a no-op")
	require.NoError(t, b.Init(ctx))
	require.Equal(t, "a", get(t, ctx, b, "a").ID, "Init must keep the data")
}

func (s *suite) testClose(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("a"))
	require.NoError(t, b.Close())

	_, _, err := b.CreateExecution(ctx, newExec("b"))
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.Apply(ctx, []*persistence.Commit{{ExecutionID: "a"}})
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.GetExecution(ctx, "a")
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.ListExecutions(ctx, persistence.ListFilter{})
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, _, err = b.LoadJournal(ctx, "a")
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.AcquireLease(ctx, "a", owner, time.Minute)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.ClaimDue(ctx, owner, nil, nil, time.Minute, 10)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.RenewLeases(ctx, owner, []string{"x"}, time.Minute)
	require.ErrorIs(t, err, persistence.ErrClosed)
	require.ErrorIs(t, b.ReleaseLeases(ctx, owner), persistence.ErrClosed)
	_, err = b.NextRunAt(ctx, nil)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.ListDeadLetters(ctx, 0)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.GetDeadLetter(ctx, "d")
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.ReplayDeadLetter(ctx, "d")
	require.ErrorIs(t, err, persistence.ErrClosed)
	require.ErrorIs(t, b.DeleteDeadLetter(ctx, "d"), persistence.ErrClosed)
	require.ErrorIs(t, b.Init(ctx), persistence.ErrClosed)
}
