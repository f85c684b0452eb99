package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

// canceledError is the error, as stored (persistence.ErrorInfo in JSON), of
// an execution RequestCancel ends at once, before ExecutionCancelTree fills
// in its identity.
const canceledError = `{"message":"canceled","kind":"canceled","non_retryable":true}`

// permitLockSpace is the first key of the advisory locks of AcquirePermit
// in this backend's schema (the second is the permit key's hash), so that
// acquisitions in different schemas do not wait for each other.
func (b *Backend) permitLockSpace() int32 {
	h := fnv.New32a()
	h.Write([]byte("stent permit " + b.schema)) // hash.Hash.Write never fails
	return int32(h.Sum32())
}

// SendSignal records s for its execution, as documented on
// persistence.Coordination, in one transaction that first locks the
// execution's row: concurrent sends to one execution commit one after the
// other, in the order of their Seq, and a waiting execution is made due
// (RunAt the server's now) in the same transaction. An error wrapping
// persistence.ErrNotFound, persistence.ErrFinished or persistence.ErrLimit
// names the execution. s.ID, s.ExecutionID and s.Name are required. On
// success s.Seq and s.CreatedAt are set and s.ConsumedPos is -1. Sending a
// signal whose ID is recorded already for the same execution (a retry)
// records nothing and returns the execution; an ID recorded for another
// execution gives an error wrapping persistence.ErrIdempotencyConflict.
func (b *Backend) SendSignal(ctx context.Context, s *persistence.Signal, maxPending int) (*persistence.Execution, error) {
	if s == nil || s.ID == "" || s.ExecutionID == "" || s.Name == "" {
		return nil, errors.New("sending signal: ID, ExecutionID and Name are required")
	}
	var (
		row              execRow
		seq, dupSeq      *int64
		createdAt, dupAt *time.Time
		dupExec          *string
		pending          int64
		found            bool
	)
	err := b.do(ctx, true, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		batch.Queue(b.q[qExecutionLock], s.ExecutionID)
		batch.Queue(b.q[qSignalSend], s.ID, s.ExecutionID, s.Name, s.Payload, int32(max(maxPending, 0)))
		br := b.pool.SendBatch(ctx, batch)
		if _, err := br.Exec(); err != nil {
			return errors.Join(err, br.Close())
		}
		err := br.QueryRow().Scan(append([]any{&seq, &createdAt, &dupExec, &dupSeq, &dupAt, &pending}, row.dest()...)...)
		found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
		if err != nil {
			return errors.Join(err, br.Close())
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("sending signal %q to %s: %w", s.Name, s.ExecutionID, interpretError(err))
	}
	if !found {
		return nil, fmt.Errorf("sending signal %q to %s: %w", s.Name, s.ExecutionID, persistence.ErrNotFound)
	}
	ex, err := persistence.TolerateUndecodableError(row.decode()) // the signal is recorded
	if err != nil {
		return nil, err
	}
	switch {
	case dupExec != nil && *dupExec == s.ExecutionID && dupSeq != nil && dupAt != nil:
		seq, createdAt = dupSeq, dupAt // a retry: recorded already
	case dupExec != nil:
		return nil, fmt.Errorf("sending signal %s to %s: the ID was sent to %s: %w",
			s.ID, s.ExecutionID, *dupExec, persistence.ErrIdempotencyConflict)
	case seq != nil && createdAt != nil:
	case ex.Status.Terminal():
		return nil, fmt.Errorf("sending signal %q to %s: execution is %s: %w", s.Name, s.ExecutionID, ex.Status, persistence.ErrFinished)
	case maxPending > 0 && pending >= int64(maxPending):
		return nil, fmt.Errorf("sending signal %q to %s: %d signals wait to be consumed: %w",
			s.Name, s.ExecutionID, pending, persistence.ErrLimit)
	default:
		return nil, fmt.Errorf("sending signal %s to %s: the ID was taken meanwhile: %w",
			s.ID, s.ExecutionID, persistence.ErrIdempotencyConflict)
	}
	s.Seq, s.CreatedAt, s.ConsumedPos = *seq, createdAt.UTC(), -1
	return ex, nil
}

// NextSignal returns the oldest unconsumed signal called name of execution
// executionID, or an error wrapping persistence.ErrNotFound.
func (b *Backend) NextSignal(ctx context.Context, executionID, name string) (*persistence.Signal, error) {
	var (
		s        persistence.Signal
		consumed *int32
	)
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qSignalNext], executionID, name).
			Scan(&s.ID, &s.ExecutionID, &s.Name, &s.Payload, &s.Seq, &s.CreatedAt, &consumed)
	})
	if err != nil {
		return nil, fmt.Errorf("reading signal %q of %s: %w", name, executionID, interpretError(err))
	}
	s.CreatedAt = s.CreatedAt.UTC()
	s.ConsumedPos = -1
	if consumed != nil {
		s.ConsumedPos = int(*consumed)
	}
	return &s, nil
}

// RequestCancel cancels execution id and the live executions below it, as
// documented on persistence.Coordination, in one transaction that first
// locks id's row. "No owner or an expired lease" is judged with the
// server's clock. An execution ended at once gets the error {Message
// "canceled", Kind canceled, NonRetryable, and its Function, ExecutionID
// and Attempts}; a child's is upserted into its parent's journal at
// ParentPos as the call's outcome. The executions are returned with id
// first, then by ID. An unknown id gives an error wrapping
// persistence.ErrNotFound, a terminal one persistence.ErrFinished. A call
// cut off by a connection loss after reaching the server is not retried.
func (b *Backend) RequestCancel(ctx context.Context, id string) ([]*persistence.Execution, error) {
	var (
		status string
		out    []*persistence.Execution
	)
	err := b.do(ctx, false, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		batch.Queue(b.q[qExecutionLock], id)
		batch.Queue(b.q[qExecutionCancelTree], id, canceledError)
		br := b.pool.SendBatch(ctx, batch)
		if err := br.QueryRow().Scan(&status); err != nil {
			return errors.Join(err, br.Close())
		}
		rows, err := br.Query()
		if err != nil {
			return errors.Join(err, br.Close())
		}
		if out, err = collectExecutions(rows, false); err != nil {
			return errors.Join(err, br.Close())
		}
		return br.Close()
	})
	if err != nil {
		return nil, fmt.Errorf("canceling %s: %w", id, interpretError(err))
	}
	if st := persistence.Status(status); st.Terminal() {
		return nil, fmt.Errorf("canceling %s: execution is %s: %w", id, st, persistence.ErrFinished)
	}
	slices.SortFunc(out, func(a, b *persistence.Execution) int {
		switch {
		case a.ID == id:
			return -1
		case b.ID == id:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// CancelRequested returns, sorted, those of ids whose cancel was requested
// and that are not terminal.
func (b *Backend) CancelRequested(ctx context.Context, ids []string) ([]string, error) {
	if err := b.checkOpen(); err != nil {
		return nil, fmt.Errorf("reading cancel requests: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out []string
	err := b.do(ctx, true, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.q[qExecutionCancelReq], ids)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading cancel requests: %w", interpretError(err))
	}
	return out, nil
}

// LostLeases returns the executions of leases that owner no longer holds at
// their epoch (see persistence.Coordination).
func (b *Backend) LostLeases(ctx context.Context, owner string, leases []persistence.Lease) ([]string, error) {
	if err := b.checkOpen(); err != nil {
		return nil, fmt.Errorf("checking the leases of %s: %w", owner, err)
	}
	if len(leases) == 0 {
		return nil, nil
	}
	ids, epochs := make([]string, len(leases)), make([]int64, len(leases))
	for i, l := range leases {
		ids[i], epochs[i] = l.ExecutionID, l.Epoch
	}
	var out []string
	err := b.do(ctx, true, func(ctx context.Context) error {
		rows, err := b.pool.Query(ctx, b.q[qExecutionLostLeases], ids, epochs, owner)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("checking the leases of %s: %w", owner, interpretError(err))
	}
	return out, nil
}

// AcquirePermit takes one of limit permits of key for holder, leased to
// owner for ttl from the server's clock, as documented on
// persistence.Coordination. Acquisitions of one key are serialised by a
// transaction-scoped advisory lock, and the permits of the key that have
// expired are deleted under it before the count, so that concurrent
// acquirers, and renewals racing them, never exceed limit. A limit below 1
// grants nothing.
func (b *Backend) AcquirePermit(ctx context.Context, key, holder, owner string, limit int, ttl time.Duration) (bool, error) {
	if key == "" || holder == "" || owner == "" || ttl <= 0 {
		return false, fmt.Errorf("acquiring permit of %q for %s: key, holder, owner and a positive ttl are required", key, holder)
	}
	if err := b.checkOpen(); err != nil {
		return false, fmt.Errorf("acquiring permit of %q for %s: %w", key, holder, err)
	}
	if limit < 1 {
		return false, nil
	}
	var ok bool
	err := b.do(ctx, true, func(ctx context.Context) error {
		batch := &pgx.Batch{}
		batch.Queue(b.q[qPermitLock], b.permitLockSpace(), key)
		batch.Queue(b.q[qPermitPurge], key)
		batch.Queue(b.q[qPermitAcquire], key, holder, owner, int32(limit), ttl.Microseconds())
		br := b.pool.SendBatch(ctx, batch)
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return errors.Join(err, br.Close())
			}
		}
		if err := br.QueryRow().Scan(&ok); err != nil {
			return errors.Join(err, br.Close())
		}
		return br.Close()
	})
	if err != nil {
		return false, fmt.Errorf("acquiring permit of %q for %s: %w", key, holder, interpretError(err))
	}
	return ok, nil
}

// ReleasePermit gives back holder's permit of key held by owner; there is
// no error when it holds none.
func (b *Backend) ReleasePermit(ctx context.Context, key, holder, owner string) error {
	err := b.do(ctx, true, func(ctx context.Context) error {
		_, err := b.pool.Exec(ctx, b.q[qPermitRelease], key, holder, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("releasing permit of %q for %s: %w", key, holder, interpretError(err))
	}
	return nil
}

// RenewPermits extends to ttl from the server's clock the unexpired permits
// owner holds for holders and returns how many. An expired permit is not
// renewed: another holder may have been given it.
func (b *Backend) RenewPermits(ctx context.Context, owner string, holders []string, ttl time.Duration) (int, error) {
	if owner == "" || ttl <= 0 {
		return 0, errors.New("renewing permits: owner and a positive ttl are required")
	}
	if err := b.checkOpen(); err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, err)
	}
	if len(holders) == 0 {
		return 0, nil
	}
	var n int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		tag, err := b.pool.Exec(ctx, b.q[qPermitRenew], owner, ttl.Microseconds(), holders)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, interpretError(err))
	}
	return int(n), nil
}

// CountPermits returns how many unexpired permits of key exist, by the
// server's clock.
func (b *Backend) CountPermits(ctx context.Context, key string) (int, error) {
	var n int64
	err := b.do(ctx, true, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q[qPermitCount], key).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("counting permits of %q: %w", key, interpretError(err))
	}
	return int(n), nil
}
