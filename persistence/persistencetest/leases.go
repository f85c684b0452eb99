package persistencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

func (s *suite) testAcquireLease(t *testing.T) {
	t.Parallel()

	t.Run("Pending", func(t *testing.T) {
		b, ctx := s.setup(t)
		e := newExec("a")
		e.RunAt = time.Now().Add(time.Hour)
		create(t, ctx, b, e)
		got, err := b.AcquireLease(ctx, "a", owner, time.Minute)
		require.NoError(t, err)
		require.Equal(t, owner, got.Owner)
		require.Equal(t, int64(1), got.Epoch)
		require.Equal(t, persistence.StatusRunning, got.Status)
		require.True(t, got.RunAt.IsZero(), "RunAt is cleared")
		require.WithinDuration(t, time.Now().Add(time.Minute), got.LeaseExpiresAt, clockSlack)
		require.Equal(t, got.Epoch, get(t, ctx, b, "a").Epoch)
	})

	t.Run("HeldByOther", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		lease(t, ctx, b, "a")
		_, err := b.AcquireLease(ctx, "a", otherOwner, time.Minute)
		require.ErrorIs(t, err, persistence.ErrLeaseHeld)
		require.Equal(t, owner, get(t, ctx, b, "a").Owner)

		again, err := b.AcquireLease(ctx, "a", owner, time.Minute)
		require.NoError(t, err, "the holder may take its lease again")
		require.Equal(t, int64(2), again.Epoch)
	})

	t.Run("Expired", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		first, err := b.AcquireLease(ctx, "a", owner, shortTTL)
		require.NoError(t, err)
		var taken *persistence.Execution
		testutil.CheckFor(t, waitFor, 10*time.Millisecond, func() error {
			taken, err = b.AcquireLease(ctx, "a", otherOwner, time.Minute)
			return err
		})
		require.Equal(t, otherOwner, taken.Owner)
		require.Equal(t, first.Epoch+1, taken.Epoch)
	})

	t.Run("Released", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		epoch := lease(t, ctx, b, "a")
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "a", Epoch: epoch, Update: &persistence.Update{Status: persistence.StatusWaiting, Release: true}})
		got, err := b.AcquireLease(ctx, "a", otherOwner, time.Minute)
		require.NoError(t, err, "a released lease is free at once")
		require.Equal(t, epoch+1, got.Epoch)
	})

	t.Run("Terminal", func(t *testing.T) {
		b, ctx := s.setup(t)
		for _, st := range []persistence.Status{persistence.StatusCompleted, persistence.StatusFailed, persistence.StatusCanceled, persistence.StatusTimedOut} {
			e := newExec(string(st))
			e.Status = st
			create(t, ctx, b, e)
			_, err := b.AcquireLease(ctx, e.ID, owner, time.Minute)
			require.ErrorIs(t, err, persistence.ErrLeaseHeld, "status %s", st)
			require.Zero(t, get(t, ctx, b, e.ID).Epoch)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		b, ctx := s.setup(t)
		_, err := b.AcquireLease(ctx, "missing", owner, time.Minute)
		require.ErrorIs(t, err, persistence.ErrNotFound)
	})
}

func (s *suite) testClaimDue(t *testing.T) {
	t.Parallel()

	t.Run("DueOnly", func(t *testing.T) {
		b, ctx := s.setup(t)
		past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
		for _, e := range []struct {
			id     string
			status persistence.Status
			runAt  time.Time
		}{
			{"pending-now", persistence.StatusPending, time.Time{}},
			{"pending-past", persistence.StatusPending, past},
			{"pending-future", persistence.StatusPending, future},
			{"running-orphan", persistence.StatusRunning, time.Time{}},
			{"waiting-past", persistence.StatusWaiting, past},
			{"waiting-future", persistence.StatusWaiting, future},
			{"waiting-signal", persistence.StatusWaiting, time.Time{}},
			{"completed", persistence.StatusCompleted, time.Time{}},
			{"failed", persistence.StatusFailed, past},
		} {
			x := newExec(e.id)
			x.Status, x.RunAt = e.status, e.runAt
			create(t, ctx, b, x)
		}
		create(t, ctx, b, newExec("leased"))
		lease(t, ctx, b, "leased")

		got, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 100)
		require.NoError(t, err)
		claimed := ids(got)
		slices.Sort(claimed)
		require.Equal(t, []string{"pending-now", "pending-past", "running-orphan", "waiting-past"}, claimed)
		for _, e := range got {
			require.Equal(t, otherOwner, e.Owner)
			require.Equal(t, int64(1), e.Epoch)
			require.Equal(t, persistence.StatusRunning, e.Status)
			require.True(t, e.RunAt.IsZero())
			require.WithinDuration(t, time.Now().Add(time.Minute), e.LeaseExpiresAt, clockSlack)
			require.Equal(t, e.Epoch, get(t, ctx, b, e.ID).Epoch)
		}

		again, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 100)
		require.NoError(t, err)
		require.Empty(t, again, "claimed executions are leased")
	})

	t.Run("Queues", func(t *testing.T) {
		b, ctx := s.setup(t)
		for _, q := range []string{"q1", "q2", "q3"} {
			createN(t, ctx, b, q, 2, func(_ int, e *persistence.Execution) { e.Queue = q })
		}
		got, err := b.ClaimDue(ctx, owner, []string{"q1", "q3"}, nil, time.Minute, 100)
		require.NoError(t, err)
		claimed := ids(got)
		slices.Sort(claimed)
		require.Equal(t, []string{"q1-000", "q1-001", "q3-000", "q3-001"}, claimed)

		got, err = b.ClaimDue(ctx, owner, []string{"nobody"}, nil, time.Minute, 100)
		require.NoError(t, err)
		require.Empty(t, got)

		got, err = b.ClaimDue(ctx, owner, nil, nil, time.Minute, 100)
		require.NoError(t, err)
		claimed = ids(got)
		slices.Sort(claimed)
		require.Equal(t, []string{"q2-000", "q2-001"}, claimed, "no queues means every queue")
	})

	t.Run("PriorityThenAge", func(t *testing.T) {
		b, ctx := s.setup(t)
		base := time.Now().Add(-time.Hour)
		for i, p := range []struct {
			id       string
			priority int
		}{{"low-old", 0}, {"high-new", 10}, {"mid-old", 5}, {"high-old", 10}, {"mid-new", 5}} {
			e := newExec(p.id)
			e.Priority = p.priority
			e.CreatedAt = base.Add(time.Duration(i) * time.Minute)
			if p.id == "high-old" {
				e.CreatedAt = base.Add(-time.Minute)
			}
			create(t, ctx, b, e)
		}
		got, err := b.ClaimDue(ctx, owner, nil, nil, time.Minute, 3)
		require.NoError(t, err)
		require.Equal(t, []string{"high-old", "high-new", "mid-old"}, ids(got))
		got, err = b.ClaimDue(ctx, owner, nil, nil, time.Minute, 3)
		require.NoError(t, err)
		require.Equal(t, []string{"mid-new", "low-old"}, ids(got))
	})

	t.Run("ExpiredLeaseReclaimed", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("a"))
		got, err := b.ClaimDue(ctx, owner, nil, nil, shortTTL, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		testutil.CheckFor(t, waitFor, 10*time.Millisecond, func() error {
			got, err = b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 10)
			if err == nil && len(got) != 1 {
				err = errors.New("not reclaimed yet")
			}
			return err
		})
		require.Equal(t, otherOwner, got[0].Owner)
		require.Equal(t, int64(2), got[0].Epoch)
	})

	t.Run("ConcurrentClaimers", func(t *testing.T) {
		b, ctx := s.setup(t)
		const n, claimers = 100, 8
		createN(t, ctx, b, "job", n, nil)
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			counts = map[string]int{}
			errs   []error
		)
		for c := range claimers {
			wg.Go(func() {
				me := fmt.Sprintf("claimer-%d", c)
				for {
					got, err := b.ClaimDue(ctx, me, []string{testQueue}, nil, time.Minute, 7)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					for _, e := range got {
						counts[e.ID]++
						if e.Owner != me {
							errs = append(errs, fmt.Errorf("%s claimed %s owned by %s", me, e.ID, e.Owner))
						}
					}
					mu.Unlock()
					if err != nil || len(got) == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		require.Empty(t, errs)
		require.Len(t, counts, n)
		for id, c := range counts {
			require.Equal(t, 1, c, "%s claimed %d times", id, c)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		b, ctx := s.setup(t)
		createN(t, ctx, b, "j", 5, nil)
		got, err := b.ClaimDue(ctx, owner, nil, nil, time.Minute, 2)
		require.NoError(t, err)
		require.Len(t, got, 2)
	})
}

func (s *suite) testRenewAndRelease(t *testing.T) {
	b, ctx := s.setup(t)
	createN(t, ctx, b, "r", 3, nil)
	create(t, ctx, b, newExec("theirs"))
	_, err := b.AcquireLease(ctx, "theirs", otherOwner, time.Minute)
	require.NoError(t, err)
	claimed, err := b.ClaimDue(ctx, owner, nil, nil, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 3)
	done := claimed[0]
	apply(t, ctx, b, &persistence.Commit{ExecutionID: done.ID, Epoch: done.Epoch,
		Update: &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`1`)}})

	names := []string{claimed[0].ID, claimed[1].ID, claimed[2].ID, "theirs"}
	n, err := b.RenewLeases(ctx, owner, names, time.Hour)
	require.NoError(t, err)
	require.Equal(t, 2, n, "terminal executions are not counted")
	n, err = b.RenewLeases(ctx, owner, names[1:2], time.Hour)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the executions named are renewed")
	n, err = b.RenewLeases(ctx, owner, nil, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
	for _, e := range claimed[1:] {
		require.WithinDuration(t, time.Now().Add(time.Hour), get(t, ctx, b, e.ID).LeaseExpiresAt, clockSlack)
	}
	theirs := get(t, ctx, b, "theirs")
	require.WithinDuration(t, time.Now().Add(time.Minute), theirs.LeaseExpiresAt, clockSlack, "other owners' leases are untouched")

	n, err = b.RenewLeases(ctx, "nobody", names, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)

	held := []persistence.Lease{
		{ExecutionID: claimed[0].ID, Epoch: claimed[0].Epoch}, {ExecutionID: claimed[1].ID, Epoch: claimed[1].Epoch},
		{ExecutionID: claimed[2].ID, Epoch: claimed[2].Epoch}, {ExecutionID: "theirs", Epoch: 1},
	}
	lost, err := b.LostLeases(ctx, owner, append(held, persistence.Lease{ExecutionID: "no-such-execution", Epoch: 1}))
	require.NoError(t, err)
	require.Equal(t, []string{"theirs"}, lost, "the one finished at its epoch, the held ones and unknown IDs are not lost")
	lost, err = b.LostLeases(ctx, owner, nil)
	require.NoError(t, err)
	require.Empty(t, lost)
	// An activation at an older epoch lost its lease, though the owner is
	// the same (it claimed the execution again), and so did one whose
	// execution was finished at another epoch.
	lost, err = b.LostLeases(ctx, owner, []persistence.Lease{
		{ExecutionID: claimed[0].ID, Epoch: claimed[0].Epoch - 1}, {ExecutionID: claimed[1].ID, Epoch: claimed[1].Epoch - 1},
		{ExecutionID: claimed[2].ID, Epoch: claimed[2].Epoch},
	})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{claimed[0].ID, claimed[1].ID}, lost)

	finished := get(t, ctx, b, claimed[0].ID)
	require.True(t, finished.Status.Terminal())
	time.Sleep(5 * time.Millisecond) // so that a changed updated_at would differ
	require.NoError(t, b.ReleaseLeases(ctx, owner))
	require.Equal(t, finished.UpdatedAt, get(t, ctx, b, claimed[0].ID).UpdatedAt,
		"a finished execution's updated_at stays when it ended")
	for _, e := range claimed[1:] {
		got := get(t, ctx, b, e.ID)
		require.Empty(t, got.Owner)
		require.Equal(t, e.Epoch, got.Epoch, "release keeps the epoch")
	}
	lost, err = b.LostLeases(ctx, owner, held)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{claimed[1].ID, claimed[2].ID, "theirs"}, lost, "released leases are lost; the finished one is not")
	require.Equal(t, otherOwner, get(t, ctx, b, "theirs").Owner)

	reclaimed, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 10)
	require.NoError(t, err)
	require.ElementsMatch(t, ids(claimed[1:]), ids(reclaimed), "released executions can be claimed at once")
	for _, e := range reclaimed {
		require.Equal(t, int64(2), e.Epoch)
	}
}

func (s *suite) testNextRunAt(t *testing.T) {
	b, ctx := s.setup(t)
	next := func(queues ...string) time.Time {
		t.Helper()
		at, err := b.NextRunAt(ctx, queues)
		require.NoError(t, err)
		return at
	}
	require.True(t, next().IsZero(), "nothing scheduled")

	t1, t2, t3 := time.Now().Add(time.Hour).UTC(), time.Now().Add(2*time.Hour).UTC(), time.Now().Add(30*time.Minute).UTC()
	for _, e := range []struct {
		id, queue string
		status    persistence.Status
		runAt     time.Time
	}{
		{"pending-q1", "q1", persistence.StatusPending, t1},
		{"waiting-q2", "q2", persistence.StatusWaiting, t2},
		{"unscheduled", "q1", persistence.StatusWaiting, time.Time{}},
		{"done", "q1", persistence.StatusCompleted, t3},
	} {
		x := newExec(e.id)
		x.Queue, x.Status, x.RunAt = e.queue, e.status, e.runAt
		create(t, ctx, b, x)
	}
	require.WithinDuration(t, t1, next(), time.Millisecond)
	require.WithinDuration(t, t2, next("q2"), time.Millisecond)
	require.WithinDuration(t, t1, next("q2", "q1"), time.Millisecond)
	require.True(t, next("q3").IsZero())

	// An execution under an unexpired lease is its owner's business.
	leased := newExec("leased")
	leased.Queue = "q1"
	create(t, ctx, b, leased)
	epoch := lease(t, ctx, b, "leased")
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "leased", Epoch: epoch,
		Update: &persistence.Update{SetRunAt: true, RunAfter: time.Minute}})
	require.WithinDuration(t, t1, next("q1"), time.Millisecond)

	// Released, its timer counts.
	apply(t, ctx, b, &persistence.Commit{ExecutionID: "leased", Epoch: epoch,
		Update: &persistence.Update{Status: persistence.StatusWaiting, Release: true}})
	require.WithinDuration(t, time.Now().Add(time.Minute), next("q1"), clockSlack)
}

// contextDone is a context already canceled.
func contextDone() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
