package persistencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

// signal sends a signal called name with payload to execution id, with no
// limit, and requires it to be recorded.
func signal(t *testing.T, ctx context.Context, b persistence.Backend, sigID, id, name, payload string) *persistence.Signal {
	t.Helper()
	s := &persistence.Signal{ID: sigID, ExecutionID: id, Name: name, Payload: []byte(payload)}
	_, err := b.SendSignal(ctx, s, 0)
	require.NoError(t, err)
	return s
}

// nextSignal returns the next signal called name of id, which must exist.
func nextSignal(t *testing.T, ctx context.Context, b persistence.Backend, id, name string) *persistence.Signal {
	t.Helper()
	s, err := b.NextSignal(ctx, id, name)
	require.NoError(t, err)
	return s
}

// claimed reports whether a ClaimDue of every queue by otherOwner claims id.
func claimed(t *testing.T, ctx context.Context, b persistence.Backend, id string) bool {
	t.Helper()
	got, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 100)
	require.NoError(t, err)
	return slices.Contains(ids(got), id)
}

// consume returns a commit of id at epoch that records signal sig at pos
// in the journal and consumes it.
func consume(id string, epoch int64, sig *persistence.Signal, pos int) *persistence.Commit {
	return &persistence.Commit{
		ExecutionID: id, Epoch: epoch,
		Journal:       []*persistence.JournalEntry{{Position: pos, Kind: persistence.EntrySignal, Name: sig.Name, Done: true, Output: sig.Payload}},
		ConsumeSignal: sig.ID, ConsumePos: pos,
	}
}

func (s *suite) testSignals(t *testing.T) {
	t.Parallel()

	t.Run("OrderAndConsumeOnce", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		create(t, ctx, b, newExec("other"))
		epoch := lease(t, ctx, b, "a")
		s1 := signal(t, ctx, b, "s1", "a", "go", `1`)
		s2 := signal(t, ctx, b, "s2", "a", "go", `2`)
		x := signal(t, ctx, b, "x", "a", "stop", `"x"`)
		s3 := signal(t, ctx, b, "s3", "a", "go", `3`)
		signal(t, ctx, b, "o1", "other", "go", `"other"`)
		require.Less(t, s1.Seq, s2.Seq, "Seq is assigned in send order")
		require.Less(t, s2.Seq, x.Seq)
		require.Less(t, x.Seq, s3.Seq)
		require.WithinDuration(t, time.Now(), s1.CreatedAt, clockSlack)
		require.Equal(t, -1, s1.ConsumedPos)

		got := nextSignal(t, ctx, b, "a", "go")
		require.Equal(t, "s1", got.ID)
		require.Equal(t, "a", got.ExecutionID)
		require.Equal(t, "go", got.Name)
		require.JSONEq(t, `1`, string(got.Payload))
		require.Equal(t, s1.Seq, got.Seq)
		require.Equal(t, -1, got.ConsumedPos)
		require.WithinDuration(t, s1.CreatedAt, got.CreatedAt, time.Millisecond)
		require.Equal(t, "s1", nextSignal(t, ctx, b, "a", "go").ID, "reading does not consume")

		first := consume("a", epoch, got, 0)
		apply(t, ctx, b, first)
		require.Equal(t, "s2", nextSignal(t, ctx, b, "a", "go").ID)
		apply(t, ctx, b, first) // applied twice, as after an unknown outcome: same rows

		errs, err := b.Apply(ctx, []*persistence.Commit{consume("a", epoch, got, 1)})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrNotFound, "a signal is consumed once")
		_, entries := journal(t, ctx, b, "a")
		require.Equal(t, []int{0}, positions(entries), "the refused commit wrote nothing")

		apply(t, ctx, b, consume("a", epoch, nextSignal(t, ctx, b, "a", "go"), 1))
		require.Equal(t, "s3", nextSignal(t, ctx, b, "a", "go").ID)
		apply(t, ctx, b, consume("a", epoch, s3, 2))
		_, err = b.NextSignal(ctx, "a", "go")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		require.Equal(t, "x", nextSignal(t, ctx, b, "a", "stop").ID, "signals are per name")
		require.Equal(t, "o1", nextSignal(t, ctx, b, "other", "go").ID, "and per execution")

		errs, err = b.Apply(ctx, []*persistence.Commit{consume("a", epoch, &persistence.Signal{ID: "o1", Name: "go"}, 3)})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrNotFound, "another execution's signal cannot be consumed")
		_, err = b.NextSignal(ctx, "missing", "go")
		require.ErrorIs(t, err, persistence.ErrNotFound)
	})

	t.Run("RefusedConsumeWritesNothing", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		create(t, ctx, b, newExec("b"))
		create(t, ctx, b, newExec("p"))
		ea, eb := lease(t, ctx, b, "a"), lease(t, ctx, b, "b")
		child := newExec("a/0")
		child.ParentID, child.RootID = "a", "a"
		errs, err := b.Apply(ctx, []*persistence.Commit{
			{
				ExecutionID: "a", Epoch: ea,
				Create:        []*persistence.Execution{child},
				Journal:       []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntrySignal, Name: "go", Done: true}},
				Update:        &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`1`), Release: true},
				Deliver:       &persistence.JournalEntry{ExecutionID: "p", Position: 0, Kind: persistence.EntryCall, Done: true},
				Snapshot:      &persistence.Snapshot{Position: 0, Data: []byte("x")},
				DeadLetter:    &persistence.DeadLetter{ID: "dl", ExecutionID: "a", Function: testFunction},
				ConsumeSignal: "no-such-signal",
			},
			{ExecutionID: "b", Epoch: eb, Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryNow, Done: true}}},
		})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrNotFound)
		require.NoError(t, errs[1], "a refused commit does not affect the others")

		got := get(t, ctx, b, "a")
		require.Equal(t, persistence.StatusRunning, got.Status)
		require.Equal(t, owner, got.Owner)
		_, err = b.GetExecution(ctx, "a/0")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		snap, entries := journal(t, ctx, b, "a")
		require.Nil(t, snap)
		require.Empty(t, entries)
		_, entries = journal(t, ctx, b, "p")
		require.Empty(t, entries)
		_, err = b.GetDeadLetter(ctx, "dl")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		_, entries = journal(t, ctx, b, "b")
		require.Equal(t, []int{0}, positions(entries))
	})

	t.Run("StaleEpochBeforeSignal", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		stale := lease(t, ctx, b, "a")
		lease(t, ctx, b, "a")
		sig := signal(t, ctx, b, "s1", "a", "go", `1`)
		errs, err := b.Apply(ctx, []*persistence.Commit{consume("a", stale, sig, 0)})
		require.NoError(t, err)
		require.ErrorIs(t, errs[0], persistence.ErrStaleEpoch)
		require.Equal(t, "s1", nextSignal(t, ctx, b, "a", "go").ID, "a stale commit consumes nothing")
	})

	t.Run("SendErrors", func(t *testing.T) {
		b, ctx := s.setup(t)
		_, err := b.SendSignal(ctx, &persistence.Signal{ID: "s", ExecutionID: "missing", Name: "go"}, 0)
		require.ErrorIs(t, err, persistence.ErrNotFound)
		require.ErrorContains(t, err, "missing")

		for _, st := range []persistence.Status{persistence.StatusCompleted, persistence.StatusFailed, persistence.StatusCanceled, persistence.StatusTimedOut} {
			e := newExec("done-" + string(st))
			e.Status = st
			create(t, ctx, b, e)
			_, err := b.SendSignal(ctx, &persistence.Signal{ID: "s-" + e.ID, ExecutionID: e.ID, Name: "go"}, 0)
			require.ErrorIs(t, err, persistence.ErrFinished, "status %s", st)
			require.ErrorContains(t, err, e.ID)
			_, err = b.NextSignal(ctx, e.ID, "go")
			require.ErrorIs(t, err, persistence.ErrNotFound, "nothing was recorded")
		}
	})

	t.Run("Limit", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		for i, name := range []string{"one", "two"} {
			_, err := b.SendSignal(ctx, &persistence.Signal{ID: fmt.Sprint("s", i), ExecutionID: "a", Name: name}, 2)
			require.NoError(t, err)
		}
		_, err := b.SendSignal(ctx, &persistence.Signal{ID: "s2", ExecutionID: "a", Name: "three"}, 2)
		require.ErrorIs(t, err, persistence.ErrLimit, "the limit counts the signals of every name")
		require.ErrorContains(t, err, "a")
		_, err = b.NextSignal(ctx, "a", "three")
		require.ErrorIs(t, err, persistence.ErrNotFound)

		apply(t, ctx, b, consume("a", epoch, nextSignal(t, ctx, b, "a", "one"), 0))
		_, err = b.SendSignal(ctx, &persistence.Signal{ID: "s2", ExecutionID: "a", Name: "three"}, 2)
		require.NoError(t, err, "a consumed signal no longer counts")
		for i := range 5 {
			_, err = b.SendSignal(ctx, &persistence.Signal{ID: fmt.Sprint("u", i), ExecutionID: "a", Name: "three"}, 0)
			require.NoError(t, err, "maxPending 0 is no limit")
		}
	})

	t.Run("SameIDRecordedOnce", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		create(t, ctx, b, newExec("b"))
		epoch := lease(t, ctx, b, "a")
		first := signal(t, ctx, b, "s1", "a", "go", `1`)
		again := signal(t, ctx, b, "s1", "a", "go", `1`) // a retry
		require.Equal(t, first.Seq, again.Seq)
		apply(t, ctx, b, consume("a", epoch, first, 0))
		_, err := b.NextSignal(ctx, "a", "go")
		require.ErrorIs(t, err, persistence.ErrNotFound, "the retried send recorded nothing")
		_, err = b.SendSignal(ctx, &persistence.Signal{ID: "s1", ExecutionID: "b", Name: "go"}, 0)
		require.ErrorIs(t, err, persistence.ErrIdempotencyConflict)
	})

	t.Run("WakesWaiting", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch,
			Update: &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: "go", Release: true}})
		require.True(t, get(t, ctx, b, "a").RunAt.IsZero(), "no signal: waiting for one, not for a time")
		require.False(t, claimed(t, ctx, b, "a"))

		got, err := b.SendSignal(ctx, &persistence.Signal{ID: "s1", ExecutionID: "a", Name: "go"}, 0)
		require.NoError(t, err)
		require.Equal(t, "a", got.ID)
		require.Equal(t, persistence.StatusWaiting, got.Status)
		require.WithinDuration(t, time.Now(), got.RunAt, clockSlack, "the execution is due now")
		require.True(t, claimed(t, ctx, b, "a"), "ClaimDue finds it at once")
	})

	t.Run("RunningNotWoken", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		lease(t, ctx, b, "a")
		got, err := b.SendSignal(ctx, &persistence.Signal{ID: "s1", ExecutionID: "a", Name: "go"}, 0)
		require.NoError(t, err)
		require.Equal(t, persistence.StatusRunning, got.Status)
		require.Equal(t, owner, got.Owner)
		require.True(t, got.RunAt.IsZero())
	})

	t.Run("WaitSignal", func(t *testing.T) {
		b, ctx := s.setup(t)
		epochs := map[string]int64{}
		for _, id := range createN(t, ctx, b, "w", 4, nil) {
			epochs[id] = lease(t, ctx, b, id) // before any claim below takes them
		}
		passivate := func(id, name string, extra func(c *persistence.Commit)) *persistence.Execution {
			t.Helper()
			c := &persistence.Commit{ExecutionID: id, Epoch: epochs[id],
				Update: &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: name, SetRunAt: true, RunAfter: time.Hour, Release: true}}
			if extra != nil {
				extra(c)
			}
			apply(t, ctx, b, c)
			return get(t, ctx, b, id)
		}

		signal(t, ctx, b, "s0", "w-000", "go", `0`)
		got := passivate("w-000", "go", nil)
		require.WithinDuration(t, time.Now(), got.RunAt, clockSlack, "a pending signal makes it due now")
		require.True(t, claimed(t, ctx, b, "w-000"))

		got = passivate("w-001", "go", nil)
		require.WithinDuration(t, time.Now().Add(time.Hour), got.RunAt, clockSlack, "no signal: RunAt as asked")
		require.False(t, claimed(t, ctx, b, "w-001"))

		signal(t, ctx, b, "s2", "w-002", "other", `0`)
		got = passivate("w-002", "go", nil)
		require.WithinDuration(t, time.Now().Add(time.Hour), got.RunAt, clockSlack, "a signal of another name does not count")

		sig := signal(t, ctx, b, "s3", "w-003", "go", `0`)
		got = passivate("w-003", "go", func(c *persistence.Commit) {
			c.Journal = []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntrySignal, Name: "go", Done: true}}
			c.ConsumeSignal, c.ConsumePos = sig.ID, 0
		})
		require.WithinDuration(t, time.Now().Add(time.Hour), got.RunAt, clockSlack, "the signal the commit consumes does not count")
	})
}

func (s *suite) testSignalsConcurrent(t *testing.T) {
	t.Parallel()

	t.Run("SendsKeepSeqOrder", func(t *testing.T) {
		// A consumer that reads while senders commit sees signals in Seq
		// order: a lower Seq never commits after a higher one was read.
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		const senders, each = 8, 25
		var wg sync.WaitGroup
		errc := make(chan error, senders)
		for g := range senders {
			wg.Go(func() {
				for i := range each {
					sig := &persistence.Signal{ID: fmt.Sprintf("s-%d-%d", g, i), ExecutionID: "a", Name: "go"}
					if _, err := b.SendSignal(ctx, sig, 0); err != nil {
						errc <- err
						return
					}
				}
			})
		}
		var seqs []int64
		testutil.CheckFor(t, 2*waitFor, time.Millisecond, func() error {
			for {
				sig, err := b.NextSignal(ctx, "a", "go")
				if errors.Is(err, persistence.ErrNotFound) {
					break
				}
				if err != nil {
					return err
				}
				errs, err := b.Apply(ctx, []*persistence.Commit{consume("a", epoch, sig, len(seqs))})
				if err == nil {
					err = errs[0]
				}
				if err != nil {
					return err
				}
				seqs = append(seqs, sig.Seq)
			}
			if len(seqs) < senders*each {
				return fmt.Errorf("consumed %d of %d signals", len(seqs), senders*each)
			}
			return nil
		})
		wg.Wait()
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
		require.Len(t, seqs, senders*each)
		require.True(t, slices.IsSorted(seqs), "signals were consumed out of Seq order")
		require.Len(t, slices.Compact(seqs), senders*each, "each signal was consumed once")
	})

	t.Run("WaitSignalRacesSend", func(t *testing.T) {
		// A signal sent while its execution passivates to wait for it is
		// never missed: whichever commits second makes the execution due.
		b, ctx := s.setup(t)
		const rounds = 30
		for i := range rounds {
			id := fmt.Sprintf("a-%02d", i)
			create(t, ctx, b, newExec(id))
			epoch := lease(t, ctx, b, id)
			var wg sync.WaitGroup
			var sendErr error
			wg.Go(func() {
				_, sendErr = b.SendSignal(ctx, &persistence.Signal{ID: "s-" + id, ExecutionID: id, Name: "go"}, 0)
			})
			apply(t, ctx, b, &persistence.Commit{ExecutionID: id, Epoch: epoch,
				Update: &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: "go", Release: true}})
			wg.Wait()
			require.NoError(t, sendErr)
			got := get(t, ctx, b, id)
			require.Equal(t, persistence.StatusWaiting, got.Status)
			require.False(t, got.RunAt.IsZero(), "round %d: the execution waits for a signal that has arrived", i)
			require.WithinDuration(t, time.Now(), got.RunAt, clockSlack)
		}
	})
}

func (s *suite) testCancel(t *testing.T) {
	t.Parallel()

	t.Run("WhilePassivating", func(t *testing.T) {
		// The cancel finds the execution leased (its activation is
		// writing its passivation): only requested. The passivation's
		// commit then leaves it due, so that it is claimed again and its
		// next activation ends it canceled, rather than waiting for a
		// signal forever.
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		touched, err := b.RequestCancel(ctx, "a")
		require.NoError(t, err)
		require.Len(t, touched, 1)
		require.Equal(t, persistence.StatusRunning, touched[0].Status)
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch,
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntrySignal, Name: "never"}},
			Update:  &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: "never", SetRunAt: true, NoRunAt: true, Release: true}})
		got := get(t, ctx, b, "a")
		require.Equal(t, persistence.StatusWaiting, got.Status)
		require.True(t, got.CancelRequested)
		require.True(t, claimed(t, ctx, b, "a"), "due at once, run at %v", got.RunAt)

		// Without a cancel, the same passivation waits.
		create(t, ctx, b, newExec("b"))
		epoch = lease(t, ctx, b, "b")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "b", Epoch: epoch,
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntrySignal, Name: "never"}},
			Update:  &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: "never", SetRunAt: true, NoRunAt: true, Release: true}})
		require.False(t, claimed(t, ctx, b, "b"))
	})

	t.Run("Tree", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("r"))
		rootEpoch := lease(t, ctx, b, "r") // run by a node with a live lease
		child := newExec("r/0")
		child.ParentID, child.ParentPos, child.RootID = "r", 0, "r"
		done := newExec("r/1")
		done.ParentID, done.ParentPos, done.RootID, done.Status = "r", 1, "r", persistence.StatusCompleted
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "r", Epoch: rootEpoch,
			Create: []*persistence.Execution{child, done},
			Journal: []*persistence.JournalEntry{
				{Position: 0, Kind: persistence.EntryCall, Name: testFunction, ChildID: "r/0"},
				{Position: 1, Kind: persistence.EntryCall, Name: testFunction, ChildID: "r/1", Done: true, Output: []byte(`1`)},
			}})
		grandchild := newExec("r/0/2")
		grandchild.ParentID, grandchild.ParentPos, grandchild.RootID = "r/0", 2, "r"
		grandchild.Status, grandchild.RunAt = persistence.StatusWaiting, time.Now().Add(time.Hour)
		create(t, ctx, b, grandchild)
		other := create(t, ctx, b, newExec("unrelated"))

		touched, err := b.RequestCancel(ctx, "r")
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"r", "r/0", "r/0/2"}, ids(touched))
		byID := map[string]*persistence.Execution{}
		for _, e := range touched {
			byID[e.ID] = e
			require.Equal(t, e.Status, get(t, ctx, b, e.ID).Status, "returned as it was left")
		}

		root := get(t, ctx, b, "r")
		require.Equal(t, persistence.StatusRunning, root.Status, "an owned execution is left to its owner")
		require.True(t, root.CancelRequested)
		require.True(t, byID["r"].CancelRequested)
		require.Equal(t, owner, root.Owner)
		require.Equal(t, rootEpoch, root.Epoch)

		for _, id := range []string{"r/0", "r/0/2"} {
			got := get(t, ctx, b, id)
			require.Equal(t, persistence.StatusCanceled, got.Status, id)
			require.True(t, got.CancelRequested, id)
			require.Empty(t, got.Owner, id)
			require.True(t, got.RunAt.IsZero(), id)
			require.NotNil(t, got.Error, id)
			require.Equal(t, persistence.ErrorKindCanceled, got.Error.Kind, id)
			require.Equal(t, id, got.Error.ExecutionID, id)
			require.Equal(t, testFunction, got.Error.Function, id)
			require.Equal(t, persistence.StatusCanceled, byID[id].Status, id)
		}

		_, entries := journal(t, ctx, b, "r")
		require.Equal(t, []int{0, 1}, positions(entries))
		require.True(t, entries[0].Done, "the canceled child's outcome is in its parent's journal")
		require.Equal(t, persistence.EntryCall, entries[0].Kind)
		require.Equal(t, "r/0", entries[0].ChildID)
		require.NotNil(t, entries[0].Error)
		require.Equal(t, persistence.ErrorKindCanceled, entries[0].Error.Kind)
		require.Equal(t, "r/0", entries[0].Error.ExecutionID)
		require.Nil(t, entries[1].Error, "a finished child's outcome is left as it is")
		_, entries = journal(t, ctx, b, "r/0")
		require.Equal(t, []int{2}, positions(entries))
		require.True(t, entries[0].Done)
		require.Equal(t, "r/0/2", entries[0].Error.ExecutionID)

		finished := get(t, ctx, b, "r/1")
		require.Equal(t, persistence.StatusCompleted, finished.Status, "terminal executions are not touched")
		require.False(t, finished.CancelRequested)
		require.False(t, get(t, ctx, b, other.ID).CancelRequested)
		require.False(t, claimed(t, ctx, b, "r/0/2"), "a canceled execution is not claimable")

		requested, err := b.CancelRequested(ctx, []string{"r", "r/0", "r/0/2", "r/1", "unrelated", "missing"})
		require.NoError(t, err)
		require.Equal(t, []string{"r"}, requested, "only non-terminal executions")
		requested, err = b.CancelRequested(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, requested)

		// The owner ends it; a second request finds it finished.
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "r", Epoch: rootEpoch, Update: &persistence.Update{
			Status: persistence.StatusCanceled, Error: &persistence.ErrorInfo{Message: "canceled", Kind: persistence.ErrorKindCanceled}, Release: true}})
		requested, err = b.CancelRequested(ctx, []string{"r"})
		require.NoError(t, err)
		require.Empty(t, requested)
		_, err = b.RequestCancel(ctx, "r")
		require.ErrorIs(t, err, persistence.ErrFinished)
		require.ErrorContains(t, err, "r")
	})

	t.Run("ExpiredLease", func(t *testing.T) {
		b, ctx := s.setup(t)
		e := newExec("a")
		e.Status, e.Owner, e.Epoch = persistence.StatusRunning, "node-gone", 3
		e.LeaseExpiresAt = time.Now().Add(-time.Minute)
		create(t, ctx, b, e)
		touched, err := b.RequestCancel(ctx, "a")
		require.NoError(t, err)
		require.Len(t, touched, 1)
		require.Equal(t, persistence.StatusCanceled, touched[0].Status, "an expired lease is no owner")
		require.Empty(t, touched[0].Owner)
		require.EqualValues(t, 3, touched[0].Epoch, "the epoch is kept")
	})

	t.Run("Errors", func(t *testing.T) {
		b, ctx := s.setup(t)
		_, err := b.RequestCancel(ctx, "missing")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		require.ErrorContains(t, err, "missing")
		e := newExec("done")
		e.Status = persistence.StatusCompleted
		create(t, ctx, b, e)
		_, err = b.RequestCancel(ctx, "done")
		require.ErrorIs(t, err, persistence.ErrFinished)
		require.ErrorContains(t, err, "done")
		require.False(t, get(t, ctx, b, "done").CancelRequested)
	})
}

func (s *suite) testPermits(t *testing.T) {
	t.Parallel()

	t.Run("Limit", func(t *testing.T) {
		b, ctx := s.setup(t)
		acquire := func(key, holder string) bool {
			t.Helper()
			ok, err := b.AcquirePermit(ctx, key, holder, owner, 2, time.Minute)
			require.NoError(t, err)
			return ok
		}
		count := func(key string) int {
			t.Helper()
			n, err := b.CountPermits(ctx, key)
			require.NoError(t, err)
			return n
		}
		require.True(t, acquire("k", "h1"))
		require.True(t, acquire("k", "h2"))
		require.False(t, acquire("k", "h3"), "the limit is reached")
		require.Equal(t, 2, count("k"))
		require.True(t, acquire("k", "h1"), "a holder keeps its permit")
		require.Equal(t, 2, count("k"))
		ok, err := b.AcquirePermit(ctx, "k", "h1", otherOwner, 5, time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "another owner's permit for the holder is not taken over")
		require.Equal(t, 2, count("k"))
		require.True(t, acquire("k2", "h3"), "keys are counted apart")
		require.Equal(t, 1, count("k2"))

		require.NoError(t, b.ReleasePermit(ctx, "k", "h1", otherOwner))
		require.Equal(t, 2, count("k"), "only the owner's permit is released")
		require.NoError(t, b.ReleasePermit(ctx, "k", "h1", owner))
		require.Equal(t, 1, count("k"))
		require.NoError(t, b.ReleasePermit(ctx, "k", "h1", owner), "releasing a permit not held is no error")
		require.True(t, acquire("k", "h3"))
		require.False(t, acquire("k", "h1"))
		require.Equal(t, 0, count("nobody"))
	})

	t.Run("Expiry", func(t *testing.T) {
		b, ctx := s.setup(t)
		ok, err := b.AcquirePermit(ctx, "k", "h1", owner, 1, shortTTL)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = b.AcquirePermit(ctx, "k", "h2", otherOwner, 1, time.Minute)
		require.NoError(t, err)
		require.False(t, ok)
		testutil.CheckFor(t, waitFor, 10*time.Millisecond, func() error {
			ok, err := b.AcquirePermit(ctx, "k", "h2", otherOwner, 1, time.Minute)
			if err == nil && !ok {
				err = errors.New("permit not granted yet")
			}
			return err
		})
		n, err := b.CountPermits(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, 1, n, "the expired permit no longer counts")
		renewed, err := b.RenewPermits(ctx, owner, []string{"h1", "h2"}, time.Minute)
		require.NoError(t, err)
		require.Zero(t, renewed, "an expired permit is not renewed")
	})

	t.Run("Renew", func(t *testing.T) {
		b, ctx := s.setup(t)
		for _, p := range []struct{ key, holder, owner string }{
			{"k1", "h1", owner}, {"k2", "h2", owner}, {"k1", "h3", otherOwner},
		} {
			ok, err := b.AcquirePermit(ctx, p.key, p.holder, p.owner, 5, time.Minute)
			require.NoError(t, err)
			require.True(t, ok)
		}
		all := []string{"h1", "h2", "h3"}
		n, err := b.RenewPermits(ctx, owner, all, time.Minute)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		n, err = b.RenewPermits(ctx, otherOwner, all, time.Minute)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = b.RenewPermits(ctx, "node-none", all, time.Minute)
		require.NoError(t, err)
		require.Zero(t, n)
		n, err = b.RenewPermits(ctx, owner, []string{"h2", "h3"}, time.Minute)
		require.NoError(t, err)
		require.Equal(t, 1, n, "only the holders named (h3 is another owner's)")
		n, err = b.RenewPermits(ctx, owner, nil, time.Minute)
		require.NoError(t, err)
		require.Zero(t, n)

		// A renewed short permit outlives its first ttl.
		ok, err := b.AcquirePermit(ctx, "short", "h", owner, 1, shortTTL)
		require.NoError(t, err)
		require.True(t, ok)
		_, err = b.RenewPermits(ctx, owner, []string{"h"}, time.Hour)
		require.NoError(t, err)
		time.Sleep(2 * shortTTL) // waiting out the first ttl is the point of the check
		ok, err = b.AcquirePermit(ctx, "short", "other", otherOwner, 1, time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "the renewed permit still counts")
	})

	t.Run("Concurrent", func(t *testing.T) {
		b, ctx := s.setup(t)
		const n, limit = 20, 3
		var granted atomic.Int32
		stop := make(chan struct{})
		var over atomic.Int32
		var wg sync.WaitGroup
		checkErr := make(chan error, 1)
		go func() {
			defer close(checkErr)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := b.CountPermits(ctx, "k")
				if err != nil {
					checkErr <- err
					return
				}
				if c > limit {
					over.Store(int32(c))
				}
			}
		}()
		errc := make(chan error, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				ok, err := b.AcquirePermit(ctx, "k", fmt.Sprintf("h%02d", i), owner, limit, time.Minute)
				if err != nil {
					errc <- err
					return
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		close(stop)
		close(errc)
		for err := range errc {
			require.NoError(t, err)
		}
		require.NoError(t, <-checkErr)
		require.Zero(t, over.Load(), "CountPermits never saw more than the limit")
		require.EqualValues(t, limit, granted.Load())
		c, err := b.CountPermits(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, limit, c)
	})
}

func (s *suite) testCoordinationClosed(t *testing.T) {
	b, ctx := s.setup(t)
	create(t, ctx, b, newExec("a"))
	require.NoError(t, b.Close())
	_, err := b.SendSignal(ctx, &persistence.Signal{ID: "s", ExecutionID: "a", Name: "go"}, 0)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.NextSignal(ctx, "a", "go")
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.RequestCancel(ctx, "a")
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.CancelRequested(ctx, []string{"a"})
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.AcquirePermit(ctx, "k", "a", owner, 1, time.Minute)
	require.ErrorIs(t, err, persistence.ErrClosed)
	require.ErrorIs(t, b.ReleasePermit(ctx, "k", "a", owner), persistence.ErrClosed)
	_, err = b.RenewPermits(ctx, owner, []string{"a"}, time.Minute)
	require.ErrorIs(t, err, persistence.ErrClosed)
	_, err = b.CountPermits(ctx, "k")
	require.ErrorIs(t, err, persistence.ErrClosed)
}
