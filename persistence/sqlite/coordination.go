package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stent-go/stent/persistence"
)

// coordination holds the writer's prepared statements of signals,
// cancellation and permits.
type coordination struct {
	signalGet, signalInsert, signalCountPending, signalPending, signalConsume *sql.Stmt
	executionWake, executionCancelTree, journalDeliverOutcome                 *sql.Stmt
	permitExtend, permitPurge, permitCount, permitInsert, permitDelete        *sql.Stmt
	permitRenew                                                               *sql.Stmt
}

// statements maps the names of queries.sql to the fields they prepare into.
func (c *coordination) statements() map[string]**sql.Stmt {
	return map[string]**sql.Stmt{
		"SignalGet":             &c.signalGet,
		"SignalInsert":          &c.signalInsert,
		"SignalCountPending":    &c.signalCountPending,
		"SignalPending":         &c.signalPending,
		"SignalConsume":         &c.signalConsume,
		"ExecutionWake":         &c.executionWake,
		"ExecutionCancelTree":   &c.executionCancelTree,
		"JournalDeliverOutcome": &c.journalDeliverOutcome,
		"PermitExtend":          &c.permitExtend,
		"PermitPurge":           &c.permitPurge,
		"PermitCount":           &c.permitCount,
		"PermitInsert":          &c.permitInsert,
		"PermitDelete":          &c.permitDelete,
		"PermitRenew":           &c.permitRenew,
	}
}

func (c *coordination) close() error {
	return closeAll(c.signalGet, c.signalInsert, c.signalCountPending, c.signalPending, c.signalConsume,
		c.executionWake, c.executionCancelTree, c.journalDeliverOutcome,
		c.permitExtend, c.permitPurge, c.permitCount, c.permitInsert, c.permitDelete, c.permitRenew)
}

// canceledError is the error, as stored (persistence.ErrorInfo in JSON), of
// an execution RequestCancel ends at once, before ExecutionCancelTree fills
// in its identity.
const canceledError = `{"message":"canceled","kind":"canceled","non_retryable":true}`

// SendSignal records s for its execution, as documented on
// persistence.Coordination, through the writer in one transaction: an
// error wrapping persistence.ErrNotFound, persistence.ErrFinished or
// persistence.ErrLimit names the execution. s.ID, s.ExecutionID and s.Name
// are required. On success s.Seq and s.CreatedAt are set and s.ConsumedPos
// is -1. Sending a signal whose ID is recorded already for the same
// execution (a retry) records nothing and returns the execution; an ID
// recorded for another execution gives an error wrapping
// persistence.ErrIdempotencyConflict.
func (b *Backend) SendSignal(ctx context.Context, s *persistence.Signal, maxPending int) (*persistence.Execution, error) {
	if s == nil || s.ID == "" || s.ExecutionID == "" || s.Name == "" {
		return nil, errors.New("sending signal: ID, ExecutionID and Name are required")
	}
	r := newRequest(ctx, opSendSignal)
	r.signal, r.limit = s, maxPending
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("sending signal %q to %s: %w", s.Name, s.ExecutionID, err)
	}
	out, seq, at, err := r.out, r.seq, r.at, r.err
	r.release()
	if err != nil {
		return nil, err
	}
	s.Seq, s.CreatedAt, s.ConsumedPos = seq, time.UnixMilli(at).UTC(), -1
	return out, nil
}

func (w *writer) sendSignal(s *persistence.Signal, maxPending int) (*persistence.Execution, int64, int64, error) {
	ex, err := persistence.TolerateUndecodableError(scanExecution(w.s.executionGet.QueryRowContext(bg, s.ExecutionID)))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("sending signal %q to %s: %w", s.Name, s.ExecutionID, err)
	}
	prev, err := scanSignal(w.s.signalGet.QueryRowContext(bg, s.ID))
	switch {
	case err == nil && prev.ExecutionID == s.ExecutionID:
		return ex, prev.Seq, prev.CreatedAt.UnixMilli(), nil
	case err == nil:
		return nil, 0, 0, fmt.Errorf("sending signal %s to %s: the ID was sent to %s: %w",
			s.ID, s.ExecutionID, prev.ExecutionID, persistence.ErrIdempotencyConflict)
	case !errors.Is(err, persistence.ErrNotFound):
		return nil, 0, 0, fmt.Errorf("looking up signal %s: %w", s.ID, err)
	}
	if ex.Status.Terminal() {
		return nil, 0, 0, fmt.Errorf("sending signal %q to %s: execution is %s: %w", s.Name, s.ExecutionID, ex.Status, persistence.ErrFinished)
	}
	if maxPending > 0 {
		var n int64
		if err := w.s.signalCountPending.QueryRowContext(bg, s.ExecutionID).Scan(&n); err != nil {
			return nil, 0, 0, fmt.Errorf("counting signals of %s: %w", s.ExecutionID, interpretError(err))
		}
		if n >= int64(maxPending) {
			return nil, 0, 0, fmt.Errorf("sending signal %q to %s: %d signals wait to be consumed: %w",
				s.Name, s.ExecutionID, n, persistence.ErrLimit)
		}
	}
	now := nowMillis()
	var seq int64
	if err := w.s.signalInsert.QueryRowContext(bg, s.ID, s.ExecutionID, s.Name, nullBlob(s.Payload), now).Scan(&seq); err != nil {
		return nil, 0, 0, fmt.Errorf("inserting signal %s of %s: %w", s.ID, s.ExecutionID, interpretError(err))
	}
	if ex.Status == persistence.StatusWaiting {
		if ex, err = persistence.TolerateUndecodableError(scanExecution(w.s.executionWake.QueryRowContext(bg, s.ExecutionID, now))); err != nil {
			return nil, 0, 0, fmt.Errorf("waking execution %s: %w", s.ExecutionID, err)
		}
	}
	return ex, seq, now, nil
}

// consumeSignal marks signal sig consumed by execution id at pos, or
// returns an error wrapping persistence.ErrNotFound when it is not an
// unconsumed signal of id (nor one id consumed at pos already).
func (w *writer) consumeSignal(id, sig string, pos int) error {
	res, err := w.s.signalConsume.ExecContext(bg, sig, id, int64(pos))
	if err != nil {
		return fmt.Errorf("consuming signal %s of %s: %w", sig, id, interpretError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("consuming signal %s of %s: %w", sig, id, interpretError(err))
	}
	if n == 0 {
		return fmt.Errorf("consuming signal %s of %s at position %d: no such unconsumed signal: %w",
			sig, id, pos, persistence.ErrNotFound)
	}
	return nil
}

// signalPending reports whether a signal called name waits, unconsumed,
// for execution id.
func (w *writer) signalPending(id, name string) (bool, error) {
	var pending bool
	if err := w.s.signalPending.QueryRowContext(bg, id, name).Scan(&pending); err != nil {
		return false, fmt.Errorf("looking up signals %q of %s: %w", name, id, interpretError(err))
	}
	return pending, nil
}

// NextSignal returns the oldest unconsumed signal called name of execution
// executionID, or an error wrapping persistence.ErrNotFound.
func (b *Backend) NextSignal(ctx context.Context, executionID, name string) (*persistence.Signal, error) {
	rs, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("reading signal %q of %s: %w", name, executionID, err)
	}
	defer b.endRead()
	s, err := scanSignal(rs.signalNext.QueryRowContext(ctx, executionID, name))
	if err != nil {
		return nil, fmt.Errorf("reading signal %q of %s: %w", name, executionID, err)
	}
	return s, nil
}

// scanSignal reads one row in the column order of SignalGet.
func scanSignal(s scanner) (*persistence.Signal, error) {
	var (
		sig      persistence.Signal
		created  int64
		consumed sql.NullInt64
	)
	if err := s.Scan(&sig.ID, &sig.ExecutionID, &sig.Name, &sig.Payload, &sig.Seq, &created, &consumed); err != nil {
		return nil, interpretError(err)
	}
	sig.CreatedAt = time.UnixMilli(created).UTC()
	sig.ConsumedPos = -1
	if consumed.Valid {
		sig.ConsumedPos = int(consumed.Int64)
	}
	return &sig, nil
}

// RequestCancel cancels execution id and the live executions below it, in
// one transaction, as documented on persistence.Coordination. An execution
// ended at once gets the error {Message "canceled", Kind canceled,
// NonRetryable, and its Function, ExecutionID and Attempts}; a child's is
// upserted into its parent's journal at ParentPos as the call's outcome.
// The executions are returned with id first, then by ID. An unknown id
// gives an error wrapping persistence.ErrNotFound, a terminal one
// persistence.ErrFinished.
func (b *Backend) RequestCancel(ctx context.Context, id string) ([]*persistence.Execution, error) {
	r := newRequest(ctx, opRequestCancel)
	r.id = id
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("canceling %s: %w", id, err)
	}
	out, err := r.outs, r.err
	r.release()
	return out, err
}

func (w *writer) requestCancel(id string) ([]*persistence.Execution, error) {
	root, err := scanExecution(w.s.executionGet.QueryRowContext(bg, id))
	if err != nil {
		return nil, fmt.Errorf("canceling %s: %w", id, err)
	}
	if root.Status.Terminal() {
		return nil, fmt.Errorf("canceling %s: execution is %s: %w", id, root.Status, persistence.ErrFinished)
	}
	rows, err := w.s.executionCancelTree.QueryContext(bg, id, nowMillis(), canceledError)
	if err != nil {
		return nil, fmt.Errorf("canceling %s: %w", id, interpretError(err))
	}
	var out []*persistence.Execution
	for rows.Next() {
		ex, err := scanExecution(rows)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("canceling %s: %w", id, err), rows.Close())
		}
		out = append(out, ex)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("canceling %s: %w", id, interpretError(err))
	}
	for _, ex := range out {
		if ex.Status != persistence.StatusCanceled || ex.ParentID == "" {
			continue
		}
		errJSON, err := encodeError(ex.Error)
		if err != nil {
			return nil, fmt.Errorf("encoding error of %s: %w", ex.ID, err)
		}
		if _, err := w.s.journalDeliverOutcome.ExecContext(bg, ex.ParentID, int64(ex.ParentPos), ex.Function, ex.ID, errJSON, nowMillis()); err != nil {
			return nil, fmt.Errorf("delivering cancellation of %s to journal entry %d of %s: %w",
				ex.ID, ex.ParentPos, ex.ParentID, interpretError(err))
		}
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
	out, err := selectIDs(ctx, b, ids, func(rs *readStmts) *sql.Stmt { return rs.cancelRequested })
	if err != nil {
		return nil, fmt.Errorf("reading cancel requests: %w", err)
	}
	return out, nil
}

// LostLeases returns the executions of leases that owner no longer holds at
// their epoch (see persistence.Coordination).
func (b *Backend) LostLeases(ctx context.Context, owner string, leases []persistence.Lease) ([]string, error) {
	pairs := make([]any, len(leases))
	for i, l := range leases {
		pairs[i] = [2]any{l.ExecutionID, l.Epoch}
	}
	out, err := selectIDs(ctx, b, pairs, func(rs *readStmts) *sql.Stmt { return rs.lostLeases }, owner)
	if err != nil {
		return nil, fmt.Errorf("checking the leases of %s: %w", owner, err)
	}
	return out, nil
}

// selectIDs runs a read statement that takes items as a JSON array (its
// first parameter, then args) and returns one ID per row.
func selectIDs[T any](ctx context.Context, b *Backend, items []T, stmt func(*readStmts) *sql.Stmt, args ...any) ([]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(items)
	if err != nil {
		return nil, err
	}
	rs, err := b.read()
	if err != nil {
		return nil, err
	}
	defer b.endRead()
	rows, err := stmt(rs).QueryContext(ctx, append([]any{string(list)}, args...)...)
	if err != nil {
		return nil, interpretError(err)
	}
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, errors.Join(interpretError(err), rows.Close())
		}
		out = append(out, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, interpretError(err)
	}
	return out, nil
}

// AcquirePermit takes one of limit permits of key for holder, leased to
// owner for ttl, as documented on persistence.Coordination. The writer runs
// one acquisition at a time (and SQLite one writer per file), so
// concurrent acquirers never exceed limit. A limit below 1 grants nothing.
func (b *Backend) AcquirePermit(ctx context.Context, key, holder, owner string, limit int, ttl time.Duration) (bool, error) {
	if key == "" || holder == "" || owner == "" || ttl <= 0 {
		return false, fmt.Errorf("acquiring permit of %q for %s: key, holder, owner and a positive ttl are required", key, holder)
	}
	if limit < 1 {
		return false, nil
	}
	r := newRequest(ctx, opAcquirePermit)
	r.key, r.id, r.owner, r.limit, r.ttl = key, holder, owner, limit, ttl
	if err := b.write(ctx, r); err != nil {
		return false, fmt.Errorf("acquiring permit of %q for %s: %w", key, holder, err)
	}
	ok, err := r.ok, r.err
	r.release()
	return ok, err
}

func (w *writer) acquirePermit(key, holder, owner string, limit int, ttl time.Duration) (bool, error) {
	now := nowMillis()
	expires := now + ttl.Milliseconds()
	wrap := func(err error) error {
		return fmt.Errorf("acquiring permit of %q for %s: %w", key, holder, interpretError(err))
	}
	res, err := w.s.permitExtend.ExecContext(bg, key, holder, owner, expires, now)
	if err != nil {
		return false, wrap(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap(err)
	}
	if n == 1 {
		return true, nil
	}
	if _, err := w.s.permitPurge.ExecContext(bg, key, now); err != nil {
		return false, wrap(err)
	}
	var held int64
	if err := w.s.permitCount.QueryRowContext(bg, key, now).Scan(&held); err != nil {
		return false, wrap(err)
	}
	if held >= int64(limit) {
		return false, nil
	}
	res, err = w.s.permitInsert.ExecContext(bg, key, holder, owner, expires)
	if err != nil {
		return false, wrap(err)
	}
	if n, err = res.RowsAffected(); err != nil {
		return false, wrap(err)
	}
	return n == 1, nil // 0: another owner holds the holder's permit
}

// ReleasePermit gives back holder's permit of key held by owner; there is
// no error when it holds none.
func (b *Backend) ReleasePermit(ctx context.Context, key, holder, owner string) error {
	r := newRequest(ctx, opReleasePermit)
	r.key, r.id, r.owner = key, holder, owner
	if err := b.write(ctx, r); err != nil {
		return fmt.Errorf("releasing permit of %q for %s: %w", key, holder, err)
	}
	err := r.err
	r.release()
	return err
}

func (w *writer) releasePermit(key, holder, owner string) error {
	if _, err := w.s.permitDelete.ExecContext(bg, key, holder, owner); err != nil {
		return fmt.Errorf("releasing permit of %q for %s: %w", key, holder, interpretError(err))
	}
	return nil
}

// RenewPermits extends to ttl from now the unexpired permits owner holds
// for holders and returns how many. An expired permit is not renewed:
// another holder may have been given it.
func (b *Backend) RenewPermits(ctx context.Context, owner string, holders []string, ttl time.Duration) (int, error) {
	if owner == "" || ttl <= 0 {
		return 0, errors.New("renewing permits: owner and a positive ttl are required")
	}
	if len(holders) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(holders)
	if err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, err)
	}
	r := newRequest(ctx, opRenewPermits)
	r.owner, r.ttl, r.queues = owner, ttl, string(list) // the holder list rides in the queues field
	if err := b.write(ctx, r); err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, err)
	}
	n, err := r.n, r.err
	r.release()
	return n, err
}

func (w *writer) renewPermits(owner string, ttl time.Duration, holders any) (int, error) {
	now := nowMillis()
	res, err := w.s.permitRenew.ExecContext(bg, owner, now+ttl.Milliseconds(), now, holders)
	if err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, interpretError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("renewing permits of %s: %w", owner, interpretError(err))
	}
	return int(n), nil
}

// CountPermits returns how many unexpired permits of key exist.
func (b *Backend) CountPermits(ctx context.Context, key string) (int, error) {
	rs, err := b.read()
	if err != nil {
		return 0, fmt.Errorf("counting permits of %q: %w", key, err)
	}
	defer b.endRead()
	var n int64
	if err := rs.permitCount.QueryRowContext(ctx, key, nowMillis()).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting permits of %q: %w", key, interpretError(err))
	}
	return int(n), nil
}
