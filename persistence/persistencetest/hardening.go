package persistencetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// testLeaseOnInsert: a row inserted leased by its creator with a LeaseTTL
// gets its lease from the backend's clock, whatever LeaseExpiresAt the
// creator computed (here an hour behind: a client clock that lags), so no
// other owner can claim it as expired on arrival.
func (s *suite) testLeaseOnInsert(t *testing.T) {
	t.Parallel()
	skewed := time.Now().Add(-time.Hour).UTC()

	t.Run("CreateExecution", func(t *testing.T) {
		b, ctx := s.setup(t)
		e := newExec("a")
		e.Status, e.Owner, e.Epoch = persistence.StatusRunning, owner, 1
		e.LeaseExpiresAt, e.LeaseTTL = skewed, time.Minute
		got := create(t, ctx, b, e)
		require.WithinDuration(t, time.Now().Add(time.Minute), got.LeaseExpiresAt, clockSlack)
		claimed, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, claimed, "a lease from the backend's clock has not expired")
	})

	t.Run("CommitCreate", func(t *testing.T) {
		b, ctx := s.setup(t)
		create(t, ctx, b, newExec("p"))
		epoch := lease(t, ctx, b, "p")
		c := newExec("c")
		c.ParentID, c.ParentPos = "p", 0
		c.Status, c.Owner, c.Epoch = persistence.StatusRunning, owner, 1
		c.LeaseExpiresAt, c.LeaseTTL = skewed, time.Minute
		apply(t, ctx, b, &persistence.Commit{ExecutionID: "p", Epoch: epoch, Create: []*persistence.Execution{c}})
		require.WithinDuration(t, time.Now().Add(time.Minute), get(t, ctx, b, "c").LeaseExpiresAt, clockSlack)
		claimed, err := b.ClaimDue(ctx, otherOwner, nil, nil, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, claimed)
	})

	t.Run("WithoutTTL", func(t *testing.T) {
		b, ctx := s.setup(t)
		e := newExec("a")
		e.Status, e.Owner, e.Epoch = persistence.StatusRunning, owner, 1
		e.LeaseExpiresAt = skewed
		got := create(t, ctx, b, e)
		require.WithinDuration(t, skewed, got.LeaseExpiresAt, time.Second, "kept as given")
	})
}
