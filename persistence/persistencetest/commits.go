package persistencetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

func (s *suite) testApply(t *testing.T) {
	t.Parallel()

	t.Run("Journal", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		fireAt := time.Now().Add(time.Hour).UTC()
		failure := &persistence.ErrorInfo{Message: "boom", Kind: persistence.ErrorKindPanic, NonRetryable: true, Stack: "main.go:1"}
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Journal: []*persistence.JournalEntry{
			{Position: 0, Kind: persistence.EntryCall, Name: "child.fn", ChildID: "a/0"},
			{Position: 1, Kind: persistence.EntrySleep, FireAt: fireAt},
		}})
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Journal: []*persistence.JournalEntry{
			{Position: 0, Kind: persistence.EntryCall, Name: "child.fn", ChildID: "a/0", Done: true, Error: failure},
			{Position: 2, Kind: persistence.EntryNow, Done: true, Output: []byte(`"2030-01-01T00:00:00Z"`)},
		}})
		snap, entries := journal(t, ctx, b, "a")
		require.Nil(t, snap)
		require.Equal(t, []int{0, 1, 2}, positions(entries))
		require.Equal(t, "a", entries[0].ExecutionID)
		require.Equal(t, persistence.EntryCall, entries[0].Kind)
		require.Equal(t, "child.fn", entries[0].Name)
		require.Equal(t, "a/0", entries[0].ChildID)
		require.True(t, entries[0].Done, "an upsert by position replaces the intent")
		require.Equal(t, failure, entries[0].Error)
		require.Equal(t, persistence.EntrySleep, entries[1].Kind)
		require.False(t, entries[1].Done)
		require.WithinDuration(t, fireAt, entries[1].FireAt, time.Millisecond)
		require.Nil(t, entries[1].Error)
		require.JSONEq(t, `"2030-01-01T00:00:00Z"`, string(entries[2].Output))
	})

	t.Run("DeleteJournal", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Journal: []*persistence.JournalEntry{
			{Position: 0, Kind: persistence.EntryNow, Done: true}, {Position: 1, Kind: persistence.EntryNow, Done: true},
			{Position: 2, Kind: persistence.EntryNow, Done: true},
		}})
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, DeleteJournal: []int{1, 7}})
		_, entries := journal(t, ctx, b, "a")
		require.Equal(t, []int{0, 2}, positions(entries))
	})

	t.Run("CreateChildren", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("p"))
		epoch := lease(t, ctx, b, "p")
		child := newExec("p/0")
		child.ParentID, child.ParentPos, child.RootID, child.Priority = "p", 0, "p", 3
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Create: []*persistence.Execution{child},
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryCall, Name: testFunction, ChildID: "p/0"}}})
		got := get(t, ctx, b, "p/0")
		require.Equal(t, persistence.StatusPending, got.Status)
		require.Equal(t, "p", got.ParentID)
		require.Equal(t, "p", got.RootID)
		require.Equal(t, 3, got.Priority)

		replayed := newExec("p/0")
		replayed.Input = []byte(`{"changed":true}`)
		replayed.ParentID, replayed.RootID = "p", "p"
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Create: []*persistence.Execution{replayed}})
		require.JSONEq(t, `{"id":"p/0"}`, string(get(t, ctx, b, "p/0").Input), "a replayed start leaves the row as it is")

		// A child started already leased by its parent's node keeps that
		// lease: no other claimer takes it while it runs.
		leased := newExec("p/1")
		leased.ParentID, leased.ParentPos, leased.RootID = "p", 1, "p"
		leased.Status, leased.Owner, leased.Epoch = persistence.StatusRunning, "node-a", 1
		leased.LeaseExpiresAt = time.Now().Add(time.Hour).UTC()
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Create: []*persistence.Execution{leased}})
		got = get(t, ctx, b, "p/1")
		require.Equal(t, persistence.StatusRunning, got.Status)
		require.Equal(t, "node-a", got.Owner)
		require.EqualValues(t, 1, got.Epoch)
		require.WithinDuration(t, leased.LeaseExpiresAt, got.LeaseExpiresAt, time.Second)
		claimed, err := b.ClaimDue(ctx, "node-b", nil, nil, time.Minute, 10)
		require.NoError(t, err)
		for _, c := range claimed {
			require.NotEqual(t, "p/1", c.ID, "a leased child is not claimable")
		}
	})

	t.Run("Update", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		update := func(u *persistence.Update) *persistence.Execution {
			t.Helper()
			apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Update: u})
			return get(t, ctx, b, "a")
		}

		got := update(&persistence.Update{Status: persistence.StatusRunning, Output: []byte(`1`)})
		require.Empty(t, got.Output, "Output is stored only with StatusCompleted")

		failure := &persistence.ErrorInfo{Message: "try again", Kind: persistence.ErrorKindError}
		got = update(&persistence.Update{Error: failure, Attempts: 3, SetRunAt: true, RunAfter: time.Hour})
		require.Equal(t, persistence.StatusRunning, got.Status, "an empty Status keeps the status")
		require.Equal(t, failure, got.Error)
		require.Equal(t, 3, got.Attempts)
		require.WithinDuration(t, time.Now().Add(time.Hour), got.RunAt, clockSlack)

		got = update(&persistence.Update{Status: persistence.StatusWaiting})
		require.Equal(t, failure, got.Error, "zero fields keep their columns")
		require.Equal(t, 3, got.Attempts)
		require.False(t, got.RunAt.IsZero())

		got = update(&persistence.Update{ClearError: true, SetRunAt: true, NoRunAt: true})
		require.Nil(t, got.Error)
		require.True(t, got.RunAt.IsZero())

		got = update(&persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`{"ok":true}`)})
		require.Equal(t, persistence.StatusCompleted, got.Status)
		require.JSONEq(t, `{"ok":true}`, string(got.Output))
		require.Equal(t, owner, got.Owner)

		got = update(&persistence.Update{Release: true})
		require.Empty(t, got.Owner)
		require.Equal(t, epoch, got.Epoch, "Release keeps the epoch")
		require.WithinDuration(t, time.Now(), got.LeaseExpiresAt, clockSlack)
		require.False(t, got.UpdatedAt.Before(got.CreatedAt))
	})

	t.Run("Deliver", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("p"))
		parentEpoch := lease(t, ctx, b, "p")
		child := newExec("p/4")
		child.ParentID, child.ParentPos, child.RootID = "p", 4, "p"
		create(t, ctx, b, child)
		childEpoch := lease(t, ctx, b, "p/4")
		apply(t, ctx, b, &persistence.Commit{
			ExecutionID: "p/4", Epoch: childEpoch,
			Update:  &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`5`), Release: true},
			Deliver: &persistence.JournalEntry{ExecutionID: "p", Position: 4, Kind: persistence.EntryCall, ChildID: "p/4", Done: true, Output: []byte(`5`)},
		})
		_, entries := journal(t, ctx, b, "p")
		require.Len(t, entries, 1)
		require.Equal(t, 4, entries[0].Position)
		require.True(t, entries[0].Done)
		require.JSONEq(t, `5`, string(entries[0].Output))
		require.Equal(t, parentEpoch, get(t, ctx, b, "p").Epoch, "a delivery does not touch the parent's lease")
		require.Equal(t, persistence.StatusCompleted, get(t, ctx, b, "p/4").Status)
	})

	t.Run("Snapshot", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Snapshot: &persistence.Snapshot{Position: 1, Data: []byte("one")}})
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Snapshot: &persistence.Snapshot{Position: 2, Data: []byte("two")}})
		snap, entries := journal(t, ctx, b, "a")
		require.Empty(t, entries)
		require.Equal(t, &persistence.Snapshot{ExecutionID: "a", Position: 2, Data: []byte("two")}, snap, "a snapshot replaces the previous one")
	})

	t.Run("DeadLetter", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		failure := &persistence.ErrorInfo{Message: "gave up", NonRetryable: true}
		dl := &persistence.DeadLetter{ID: "dl-a", ExecutionID: "a", Function: testFunction, Input: []byte(`{"id":"a"}`), Error: failure, Attempts: 4}
		c := &persistence.Commit{ExecutionID: "a", Epoch: epoch, DeadLetter: dl,
			Update: &persistence.Update{Status: persistence.StatusFailed, Error: failure, Attempts: 4, Release: true}}
		apply(t, ctx, b, c)
		apply(t, ctx, b, c) // applied twice, as after an unknown outcome: same rows
		got, err := b.GetDeadLetter(ctx, "dl-a")
		require.NoError(t, err)
		require.Equal(t, "a", got.ExecutionID)
		require.Equal(t, testFunction, got.Function)
		require.JSONEq(t, `{"id":"a"}`, string(got.Input))
		require.Equal(t, failure, got.Error)
		require.Equal(t, 4, got.Attempts)
		require.WithinDuration(t, time.Now(), got.CreatedAt, clockSlack)
		list, err := b.ListDeadLetters(ctx, 0)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, persistence.StatusFailed, get(t, ctx, b, "a").Status)
	})

	t.Run("UnknownExecution", func(t *testing.T) {
		b, ctx := s.setup(t)
		errs, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: "missing", Epoch: 1, Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryNow}}}})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrNotFound)
		_, entries := journal(t, ctx, b, "missing")
		require.Empty(t, entries)
	})

	t.Run("Empty", func(t *testing.T) {
		b, ctx := s.setup(t)
		errs, err := b.Apply(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, errs)
	})

	t.Run("CanceledContext", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		_, err := b.Apply(contextDone(), []*persistence.Commit{{ExecutionID: "a", Update: &persistence.Update{Attempts: 1}}})
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, get(t, ctx, b, "a").Attempts, "nothing is written for a caller already gone")
	})

	t.Run("Concurrent", func(t *testing.T) {
		b, ctx := s.setup(t)
		const n = 16
		execs := createN(t, ctx, b, "c", n, nil)
		var wg sync.WaitGroup
		errc := make(chan error, n*10)
		for _, id := range execs {
			epoch := lease(t, ctx, b, id)
			wg.Go(func() {
				for pos := range 10 {
					errs, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: id, Epoch: epoch,
						Journal: []*persistence.JournalEntry{{Position: pos, Kind: persistence.EntryNow, Done: true}}}})
					if err == nil {
						err = errs[0]
					}
					if err != nil {
						errc <- err
					}
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
		for _, id := range execs {
			_, entries := journal(t, ctx, b, id)
			require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, positions(entries), "journal of %s", id)
		}
	})
}

func (s *suite) testEpochFence(t *testing.T) {
	t.Parallel()

	t.Run("StaleCommitWritesNothing", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		create(t, ctx, b, newExec("p"))
		stale := lease(t, ctx, b, "a")
		taken, err := b.AcquireLease(ctx, "a", owner, time.Minute) // a second activation
		require.NoError(t, err)
		require.Equal(t, stale+1, taken.Epoch)

		child := newExec("a/0")
		child.ParentID, child.RootID = "a", "a"
		errs, err := b.Apply(ctx, []*persistence.Commit{{
			ExecutionID: "a", Epoch: stale,
			Create:     []*persistence.Execution{child},
			Journal:    []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryCall, ChildID: "a/0"}},
			Update:     &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`1`), Release: true},
			Deliver:    &persistence.JournalEntry{ExecutionID: "p", Position: 0, Kind: persistence.EntryCall, Done: true},
			Snapshot:   &persistence.Snapshot{Position: 0, Data: []byte("x")},
			DeadLetter: &persistence.DeadLetter{ID: "dl", ExecutionID: "a", Function: testFunction},
		}})
		require.NoError(t, err)
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], persistence.ErrStaleEpoch)

		got := get(t, ctx, b, "a")
		require.Equal(t, persistence.StatusRunning, got.Status)
		require.Empty(t, got.Output)
		require.Equal(t, owner, got.Owner)
		require.Equal(t, taken.Epoch, got.Epoch)
		_, err = b.GetExecution(ctx, "a/0")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		snap, entries := journal(t, ctx, b, "a")
		require.Nil(t, snap)
		require.Empty(t, entries)
		_, entries = journal(t, ctx, b, "p")
		require.Empty(t, entries)
		_, err = b.GetDeadLetter(ctx, "dl")
		require.ErrorIs(t, err, persistence.ErrNotFound)
	})

	t.Run("OnlyStaleCommitFailsInBatch", func(t *testing.T) {
		b, ctx := s.setup(t)
		createN(t, ctx, b, "e", 3, nil)
		e0, e1, e2 := lease(t, ctx, b, "e-000"), lease(t, ctx, b, "e-001"), lease(t, ctx, b, "e-002")
		entry := func(pos int) []*persistence.JournalEntry {
			return []*persistence.JournalEntry{{Position: pos, Kind: persistence.EntryNow, Done: true}}
		}
		errs, err := b.Apply(ctx, []*persistence.Commit{
			{ExecutionID: "e-000", Epoch: e0, Journal: entry(0)},
			{ExecutionID: "e-001", Epoch: e1 + 5, Journal: entry(0)},
			{ExecutionID: "e-002", Epoch: e2, Journal: entry(0)},
			{ExecutionID: "e-000", Epoch: e0, Journal: entry(1)},
		})
		require.NoError(t, err)
		require.Len(t, errs, 4)
		require.NoError(t, errs[0])
		require.ErrorIs(t, errs[1], persistence.ErrStaleEpoch)
		require.NoError(t, errs[2])
		require.NoError(t, errs[3])
		_, entries := journal(t, ctx, b, "e-000")
		require.Equal(t, []int{0, 1}, positions(entries))
		_, entries = journal(t, ctx, b, "e-001")
		require.Empty(t, entries)
		_, entries = journal(t, ctx, b, "e-002")
		require.Equal(t, []int{0}, positions(entries))
	})

	t.Run("UnleasedExecutionHasEpochZero", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: 0, Update: &persistence.Update{Attempts: 1}})
		errs, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: "a", Epoch: 1, Update: &persistence.Update{Attempts: 2}}})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrStaleEpoch)
		require.Equal(t, 1, get(t, ctx, b, "a").Attempts)
	})
}

func (s *suite) testLoadJournal(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("a"))
	epoch := lease(t, ctx, b, "a")
	var entries []*persistence.JournalEntry
	for _, pos := range []int{3, 0, 4, 1, 2} {
		entries = append(entries, &persistence.JournalEntry{Position: pos, Kind: persistence.EntryNow, Done: true, Output: []byte(`0`)})
	}
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Journal: entries})

	snap, got := journal(t, ctx, b, "a")
	require.Nil(t, snap, "no snapshot yet")
	require.Equal(t, []int{0, 1, 2, 3, 4}, positions(got), "in position order")

	apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Snapshot: &persistence.Snapshot{Position: 2, Data: []byte(`{"upto":2}`)}})
	snap, got = journal(t, ctx, b, "a")
	require.NotNil(t, snap)
	require.Equal(t, "a", snap.ExecutionID)
	require.Equal(t, 2, snap.Position)
	require.Equal(t, []byte(`{"upto":2}`), snap.Data)
	require.Equal(t, []int{3, 4}, positions(got), "only the entries after the snapshot")

	create(t, ctx, b, newExec("other"))
	snap, got = journal(t, ctx, b, "other")
	require.Nil(t, snap)
	require.Empty(t, got, "journals are per execution")
}
