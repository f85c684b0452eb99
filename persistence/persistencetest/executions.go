package persistencetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

func (s *suite) testCreateExecution(t *testing.T) {
	t.Parallel()

	t.Run("StoresEveryField", func(t *testing.T) {
		b, ctx := s.setup(t)
		runAt := time.Now().Add(time.Hour).UTC()
		deadline := time.Now().Add(24 * time.Hour).UTC()
		created := time.Now().Add(-time.Minute).UTC()
		e := &persistence.Execution{
			ID:             "exec-1",
			Function:       testFunction,
			Queue:          "q1",
			Status:         persistence.StatusWaiting,
			Input:          []byte(`{"a":1}`),
			Error:          &persistence.ErrorInfo{Message: "earlier", Kind: persistence.ErrorKindError, Attempts: 2},
			IdempotencyKey: "key-1",
			Attempts:       2,
			Priority:       7,
			Version:        "v3",
			RunAt:          runAt,
			Deadline:       deadline,
			CreatedAt:      created,
		}
		got := create(t, ctx, b, e)
		for _, g := range []*persistence.Execution{got, get(t, ctx, b, "exec-1")} {
			require.Equal(t, "exec-1", g.ID)
			require.Equal(t, testFunction, g.Function)
			require.Equal(t, "q1", g.Queue)
			require.Equal(t, persistence.StatusWaiting, g.Status)
			require.JSONEq(t, `{"a":1}`, string(g.Input))
			require.Empty(t, g.Output)
			require.Equal(t, e.Error, g.Error)
			require.Empty(t, g.ParentID)
			require.Equal(t, "exec-1", g.RootID, "a root is its own root")
			require.Equal(t, "key-1", g.IdempotencyKey)
			require.Equal(t, 2, g.Attempts)
			require.Equal(t, 7, g.Priority)
			require.Equal(t, "v3", g.Version)
			require.Empty(t, g.Owner)
			require.Zero(t, g.Epoch)
			require.WithinDuration(t, runAt, g.RunAt, time.Millisecond)
			require.WithinDuration(t, deadline, g.Deadline, time.Millisecond)
			require.WithinDuration(t, created, g.CreatedAt, time.Millisecond, "a CreatedAt given is kept")
			require.Equal(t, time.UTC, g.RunAt.Location())
			require.False(t, g.UpdatedAt.IsZero())
		}
	})

	t.Run("ReturnsTheRowStored", func(t *testing.T) {
		b, ctx := s.setup(t)
		now := time.Now().UTC()
		for _, e := range []*persistence.Execution{
			{ID: "r-every", Function: testFunction, Queue: "q1", Status: persistence.StatusWaiting,
				Input: []byte(`{"a":1}`), Output: []byte(`2`),
				Error:          &persistence.ErrorInfo{Message: "earlier", Kind: persistence.ErrorKindError, Attempts: 2},
				IdempotencyKey: "key-r", Attempts: 2, Priority: -3, Version: "v3",
				RunAt: now.Add(time.Hour + 500*time.Microsecond), Deadline: now.Add(24 * time.Hour),
				CreatedAt: now.Add(-time.Minute), TraceContext: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			{ID: "r-owned", Function: testFunction, Status: persistence.StatusRunning, Owner: "node-1", Epoch: 4, LeaseTTL: time.Minute},
			{ID: "r-child", Function: testFunction, ParentID: "r-owned", ParentPos: 3, RootID: "r-owned", Input: []byte{}},
		} {
			got := create(t, ctx, b, e)
			require.Equal(t, get(t, ctx, b, e.ID), got, "CreateExecution of %s returns the row as Get reads it", e.ID)
		}
	})

	t.Run("Defaults", func(t *testing.T) {
		b, ctx := s.setup(t)
		got := create(t, ctx, b, &persistence.Execution{ID: "d", Function: testFunction})
		require.Equal(t, persistence.StatusPending, got.Status)
		require.Equal(t, "d", got.RootID)
		require.WithinDuration(t, time.Now(), got.CreatedAt, clockSlack)
		require.True(t, got.RunAt.IsZero())
		require.True(t, got.Deadline.IsZero())
		require.True(t, got.LeaseExpiresAt.IsZero())
		require.Nil(t, got.Error)
	})

	t.Run("SameIDReturnsExisting", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		again := newExec("a")
		again.Input = []byte(`{"other":true}`)
		got, created, err := b.CreateExecution(ctx, again)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, "a", got.ID)
		require.JSONEq(t, `{"id":"a"}`, string(got.Input), "the existing row is left as it is")
	})

	t.Run("IdempotencyKey", func(t *testing.T) {
		b, ctx := s.setup(t)
		first := newExec("first")
		first.IdempotencyKey = "order-42"
		create(t, ctx, b, first)

		same := newExec("second")
		same.IdempotencyKey = "order-42"
		same.Input = first.Input
		got, created, err := b.CreateExecution(ctx, same)
		require.NoError(t, err)
		require.False(t, created)
		require.Equal(t, "first", got.ID, "the same key and input return the existing execution")

		otherInput := newExec("third")
		otherInput.IdempotencyKey = "order-42"
		_, created, err = b.CreateExecution(ctx, otherInput)
		require.ErrorIs(t, err, persistence.ErrIdempotencyConflict)
		require.ErrorContains(t, err, "order-42")
		require.False(t, created)

		otherFunction := newExec("fourth")
		otherFunction.IdempotencyKey = "order-42"
		otherFunction.Input = first.Input
		otherFunction.Function = "other.fn"
		_, _, err = b.CreateExecution(ctx, otherFunction)
		require.ErrorIs(t, err, persistence.ErrIdempotencyConflict)

		for _, id := range []string{"second", "third", "fourth"} {
			_, err := b.GetExecution(ctx, id)
			require.ErrorIs(t, err, persistence.ErrNotFound, "nothing is inserted for %s", id)
		}
	})

	t.Run("IdempotencyKeyConcurrent", func(t *testing.T) {
		b, ctx := s.setup(t)
		const n = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
			found   = map[string]bool{}
			errs    []error
		)
		for i := range n {
			wg.Go(func() {
				e := newExec(fmt.Sprintf("racer-%02d", i))
				e.IdempotencyKey = "shared-key"
				e.Input = []byte(`{"same":true}`)
				got, c, err := b.CreateExecution(ctx, e)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				if c {
					created++
				}
				found[got.ID] = true
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		require.Equal(t, 1, created, "exactly one execution is created")
		require.Len(t, found, 1, "every caller gets the same execution")
	})

	t.Run("ChildOfParent", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("root"))
		child := newExec("child")
		child.ParentID, child.ParentPos, child.RootID = "root", 3, "root"
		got := create(t, ctx, b, child)
		require.Equal(t, "root", got.ParentID)
		require.Equal(t, 3, got.ParentPos)
		require.Equal(t, "root", got.RootID)
	})
}

func (s *suite) testGetExecution(t *testing.T) {
	b, ctx := s.setup(t)
	_, err := b.GetExecution(ctx, "missing")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	create(t, ctx, b, newExec("present"))
	require.Equal(t, "present", get(t, ctx, b, "present").ID)
}

func (s *suite) testListExecutions(t *testing.T) {
	b, ctx := s.setup(t)
	base := time.Now().Add(-time.Hour)
	createN(t, ctx, b, "p", 5, func(i int, e *persistence.Execution) {
		e.CreatedAt = base.Add(time.Duration(i) * time.Minute)
	})
	createN(t, ctx, b, "f", 3, func(i int, e *persistence.Execution) {
		e.Function = "other.fn"
		e.Status = persistence.StatusFailed
		e.CreatedAt = base.Add(time.Duration(10+i) * time.Minute)
	})
	createN(t, ctx, b, "c", 2, func(i int, e *persistence.Execution) {
		e.ParentID, e.ParentPos, e.RootID = "p-000", i, "p-000"
		e.CreatedAt = base.Add(time.Duration(20+i) * time.Minute)
	})

	all, err := b.ListExecutions(ctx, persistence.ListFilter{})
	require.NoError(t, err)
	require.Equal(t, []string{"c-001", "c-000", "f-002", "f-001", "f-000", "p-004", "p-003", "p-002", "p-001", "p-000"}, ids(all),
		"newest first")

	failed, err := b.ListExecutions(ctx, persistence.ListFilter{Status: persistence.StatusFailed})
	require.NoError(t, err)
	require.Equal(t, []string{"f-002", "f-001", "f-000"}, ids(failed))

	byFunction, err := b.ListExecutions(ctx, persistence.ListFilter{Function: "other.fn", Limit: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"f-002", "f-001"}, ids(byFunction))

	children, err := b.ListExecutions(ctx, persistence.ListFilter{ParentID: "p-000"})
	require.NoError(t, err)
	require.Equal(t, []string{"c-001", "c-000"}, ids(children))

	both, err := b.ListExecutions(ctx, persistence.ListFilter{Status: persistence.StatusPending, Function: testFunction, Limit: 3})
	require.NoError(t, err)
	require.Equal(t, []string{"c-001", "c-000", "p-004"}, ids(both))

	none, err := b.ListExecutions(ctx, persistence.ListFilter{Function: "nobody"})
	require.NoError(t, err)
	require.Empty(t, none)

	createN(t, ctx, b, "many", 120, nil)
	capped, err := b.ListExecutions(ctx, persistence.ListFilter{})
	require.NoError(t, err)
	require.Len(t, capped, 100, "a zero Limit means 100")
	require.True(t, slices.IsSortedFunc(capped, func(x, y *persistence.Execution) int { return y.CreatedAt.Compare(x.CreatedAt) }))
}
