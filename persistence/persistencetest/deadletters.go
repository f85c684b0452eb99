package persistencetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// failWithDeadLetter fails execution id for good, as its owner would: the
// status, the error and a dead letter dlID in one commit at epoch.
func failWithDeadLetter(t *testing.T, ctx context.Context, b persistence.Backend, id, dlID string, epoch int64, journal ...*persistence.JournalEntry) {
	t.Helper()
	failure := &persistence.ErrorInfo{Message: id + " failed", Kind: persistence.ErrorKindError}
	apply(t, ctx, b, &persistence.Commit{
		ExecutionID: id, Epoch: epoch, Journal: journal,
		Update:     &persistence.Update{Status: persistence.StatusFailed, Error: failure, Attempts: 3},
		DeadLetter: &persistence.DeadLetter{ID: dlID, ExecutionID: id, Function: testFunction, Error: failure, Attempts: 3},
	})
}

// childFailure is the journal entry of a parent holding a child's failure.
func childFailure(pos int, childID string) *persistence.JournalEntry {
	return &persistence.JournalEntry{Position: pos, Kind: persistence.EntryCall, Name: testFunction, ChildID: childID, Done: true,
		Error: &persistence.ErrorInfo{Message: childID + " failed", ExecutionID: childID, Function: testFunction, Attempts: 3}}
}

// childOf returns a child execution of parent at pos.
func childOf(id, parent string, pos int, root string) *persistence.Execution {
	e := newExec(id)
	e.ParentID, e.ParentPos, e.RootID = parent, pos, root
	return e
}

func (s *suite) testDeadLetters(t *testing.T) {
	b, ctx := s.setup(t)
	_, err := b.GetDeadLetter(ctx, "missing")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	require.ErrorIs(t, b.DeleteDeadLetter(ctx, "missing"), persistence.ErrNotFound)
	list, err := b.ListDeadLetters(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, list)

	for _, id := range []string{"a", "b", "c"} {
		create(t, ctx, b, newExec(id))
		failWithDeadLetter(t, ctx, b, id, "dl-"+id, lease(t, ctx, b, id))
	}
	list, err = b.ListDeadLetters(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"dl-a", "dl-b", "dl-c"}, deadLetterIDs(list), "oldest first")
	list, err = b.ListDeadLetters(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"dl-a", "dl-b"}, deadLetterIDs(list))

	got, err := b.GetDeadLetter(ctx, "dl-b")
	require.NoError(t, err)
	require.Equal(t, "b", got.ExecutionID)
	require.Equal(t, 3, got.Attempts)
	require.Equal(t, "b failed", got.Error.Message)

	require.NoError(t, b.DeleteDeadLetter(ctx, "dl-b"))
	_, err = b.GetDeadLetter(ctx, "dl-b")
	require.ErrorIs(t, err, persistence.ErrNotFound)
	require.ErrorIs(t, b.DeleteDeadLetter(ctx, "dl-b"), persistence.ErrNotFound)
	list, err = b.ListDeadLetters(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []string{"dl-a", "dl-c"}, deadLetterIDs(list))
	require.Equal(t, persistence.StatusFailed, get(t, ctx, b, "b").Status, "deleting leaves the execution failed")
}

func deadLetterIDs(list []*persistence.DeadLetter) []string {
	out := []string{}
	for _, d := range list {
		out = append(out, d.ID)
	}
	return out
}

func (s *suite) testReplayDeadLetter(t *testing.T) {
	t.Parallel()

	t.Run("Execution", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch,
			Snapshot: &persistence.Snapshot{Position: 0, Data: []byte("s")}})
		failWithDeadLetter(t, ctx, b, "a", "dl-a", epoch,
			&persistence.JournalEntry{Position: 0, Kind: persistence.EntryNow, Done: true, Output: []byte(`1`)},
			childFailure(1, "a/1"),
			&persistence.JournalEntry{Position: 2, Kind: persistence.EntrySleep, FireAt: time.Now()},
		)

		got, err := b.ReplayDeadLetter(ctx, "dl-a")
		require.NoError(t, err)
		require.Equal(t, "a", got.ID)
		for _, e := range []*persistence.Execution{got, get(t, ctx, b, "a")} {
			require.Equal(t, persistence.StatusPending, e.Status)
			require.Zero(t, e.Attempts)
			require.Nil(t, e.Error)
			require.Empty(t, e.Output)
			require.Empty(t, e.Owner)
			require.Equal(t, epoch, e.Epoch, "the epoch is kept; the next lease moves past it")
		}
		_, err = b.GetDeadLetter(ctx, "dl-a")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		snap, entries := journal(t, ctx, b, "a")
		require.Nil(t, snap, "the snapshot is removed")
		require.Equal(t, []int{0, 2}, positions(entries), "failed outcomes are removed, the rest kept")

		claimed, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, ids(claimed), "a replayed execution is due at once")
		require.Equal(t, epoch+1, claimed[0].Epoch)

		_, err = b.ReplayDeadLetter(ctx, "dl-a")
		require.ErrorIs(t, err, persistence.ErrNotFound)
	})

	t.Run("WalksUpFailedParents", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("g"))
		create(t, ctx, b, childOf("p", "g", 1, "g"))
		create(t, ctx, b, childOf("c", "p", 2, "g"))
		create(t, ctx, b, childOf("sibling", "g", 4, "g"))
		failWithDeadLetter(t, ctx, b, "c", "dl-c", lease(t, ctx, b, "c"))
		failWithDeadLetter(t, ctx, b, "p", "dl-p", lease(t, ctx, b, "p"),
			&persistence.JournalEntry{Position: 0, Kind: persistence.EntryNow, Done: true, Output: []byte(`0`)},
			childFailure(2, "c"))
		failWithDeadLetter(t, ctx, b, "g", "dl-g", lease(t, ctx, b, "g"),
			childFailure(1, "p"), childFailure(4, "sibling"))

		got, err := b.ReplayDeadLetter(ctx, "dl-c")
		require.NoError(t, err)
		require.Equal(t, "c", got.ID)
		require.Equal(t, persistence.StatusPending, got.Status)

		for _, id := range []string{"c", "p", "g"} {
			e := get(t, ctx, b, id)
			require.Equal(t, persistence.StatusPending, e.Status, "%s is replayed", id)
			require.Zero(t, e.Attempts, id)
			require.Nil(t, e.Error, id)
		}
		list, err := b.ListDeadLetters(ctx, 0)
		require.NoError(t, err)
		require.Empty(t, list, "the parents' dead letters are removed too")

		_, entries := journal(t, ctx, b, "p")
		require.Equal(t, []int{0, 2}, positions(entries))
		require.False(t, entries[1].Done, "the child's failure goes back to an intent")
		require.Nil(t, entries[1].Error)
		require.Equal(t, "c", entries[1].ChildID)
		_, entries = journal(t, ctx, b, "g")
		require.Equal(t, []int{1}, positions(entries), "the grandparent's other failed outcome is removed")
		require.False(t, entries[0].Done)
		require.Equal(t, "p", entries[0].ChildID)
	})

	t.Run("ParentNotFailed", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("p"))
		pEpoch := lease(t, ctx, b, "p")
		failure := childFailure(0, "c")
		failure.Input, failure.Attempts = []byte(`{"n":1}`), 3
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: pEpoch, Journal: []*persistence.JournalEntry{failure},
			Update: &persistence.Update{Status: persistence.StatusWaiting, Release: true}})
		create(t, ctx, b, childOf("c", "p", 0, "p"))
		failWithDeadLetter(t, ctx, b, "c", "dl-c", lease(t, ctx, b, "c"))

		_, err := b.ReplayDeadLetter(ctx, "dl-c")
		require.NoError(t, err)
		p := get(t, ctx, b, "p")
		require.Equal(t, persistence.StatusWaiting, p.Status, "a parent that has not failed keeps its status")
		require.Equal(t, pEpoch, p.Epoch)
		_, entries := journal(t, ctx, b, "p")
		require.Len(t, entries, 1)
		require.False(t, entries[0].Done)
		require.Nil(t, entries[0].Error)
		entries, err = b.JournalEntries(ctx, "p")
		require.NoError(t, err)
		require.Len(t, entries, 1)
		require.JSONEq(t, `{"n":1}`, string(entries[0].Input), "the call's input stays")
		require.Zero(t, entries[0].Attempts, "the intent has taken no attempts yet")
		require.True(t, entries[0].EndedAt.IsZero(), "the intent has not ended")
	})

	t.Run("ParentFailedForAnotherReason", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("p"))
		create(t, ctx, b, childOf("c", "p", 0, "p"))
		failWithDeadLetter(t, ctx, b, "c", "dl-c", lease(t, ctx, b, "c"))
		// The parent's journal holds an intent at 0, not the failure.
		failWithDeadLetter(t, ctx, b, "p", "dl-p", lease(t, ctx, b, "p"),
			&persistence.JournalEntry{Position: 0, Kind: persistence.EntryCall, ChildID: "c"})

		_, err := b.ReplayDeadLetter(ctx, "dl-c")
		require.NoError(t, err)
		require.Equal(t, persistence.StatusFailed, get(t, ctx, b, "p").Status)
		_, err = b.GetDeadLetter(ctx, "dl-p")
		require.NoError(t, err, "the parent's dead letter stays")
	})
}
