package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stent-go/stent/persistence"
)

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepareAll prepares the named queries of queries.sql into their
// destinations, closing what it prepared if one fails.
func prepareAll(ctx context.Context, p preparer, dst map[string]**sql.Stmt) error {
	var done []*sql.Stmt
	for name, d := range dst {
		q, err := query(name)
		if err == nil {
			*d, err = p.PrepareContext(ctx, q)
		}
		if err != nil {
			errs := []error{fmt.Errorf("preparing %s: %w", name, interpretError(err))}
			for _, s := range done {
				errs = append(errs, s.Close())
			}
			return errors.Join(errs...)
		}
		done = append(done, *d)
	}
	return nil
}

// closeAll closes prepared statements.
func closeAll(stmts ...*sql.Stmt) error {
	var errs []error
	for _, s := range stmts {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// writeStmts are the writer's prepared statements.
type writeStmts struct {
	executionInsert, executionInsertChild, executionGet, executionGetByKey  *sql.Stmt
	executionEpoch, executionUpdate, executionReplay                        *sql.Stmt
	leaseAcquire, leaseClaim, leaseRenew, leaseRelease                      *sql.Stmt
	journalUpsert, journalDelete, journalDeleteFailed, journalReopen        *sql.Stmt
	journalUpsertFenced                                                     *sql.Stmt
	snapshotUpsert, snapshotDelete                                          *sql.Stmt
	deadLetterInsert, deadLetterGet, deadLetterDelete, deadLetterDeleteByEx *sql.Stmt
	coordination
}

func prepareWrites(ctx context.Context, p preparer) (*writeStmts, error) {
	s := new(writeStmts)
	err := prepareAll(ctx, p, map[string]**sql.Stmt{
		"ExecutionInsert":             &s.executionInsert,
		"ExecutionInsertChild":        &s.executionInsertChild,
		"ExecutionGet":                &s.executionGet,
		"ExecutionGetByKey":           &s.executionGetByKey,
		"ExecutionEpoch":              &s.executionEpoch,
		"ExecutionUpdate":             &s.executionUpdate,
		"ExecutionReplay":             &s.executionReplay,
		"LeaseAcquire":                &s.leaseAcquire,
		"LeaseClaim":                  &s.leaseClaim,
		"LeaseRenew":                  &s.leaseRenew,
		"LeaseRelease":                &s.leaseRelease,
		"JournalUpsert":               &s.journalUpsert,
		"JournalUpsertFenced":         &s.journalUpsertFenced,
		"JournalDelete":               &s.journalDelete,
		"JournalDeleteFailed":         &s.journalDeleteFailed,
		"JournalReopen":               &s.journalReopen,
		"SnapshotUpsert":              &s.snapshotUpsert,
		"SnapshotDelete":              &s.snapshotDelete,
		"DeadLetterInsert":            &s.deadLetterInsert,
		"DeadLetterGet":               &s.deadLetterGet,
		"DeadLetterDelete":            &s.deadLetterDelete,
		"DeadLetterDeleteByExecution": &s.deadLetterDeleteByEx,
	})
	if err != nil {
		return nil, err
	}
	if err := prepareAll(ctx, p, s.coordination.statements()); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

func (s *writeStmts) close() error {
	return errors.Join(closeAll(s.executionInsert, s.executionInsertChild, s.executionGet, s.executionGetByKey,
		s.executionEpoch, s.executionUpdate, s.executionReplay,
		s.leaseAcquire, s.leaseClaim, s.leaseRenew, s.leaseRelease,
		s.journalUpsert, s.journalDelete, s.journalDeleteFailed, s.journalReopen, s.journalUpsertFenced,
		s.snapshotUpsert, s.snapshotDelete,
		s.deadLetterInsert, s.deadLetterGet, s.deadLetterDelete, s.deadLetterDeleteByEx),
		s.coordination.close())
}

// nowMillis is the backend's clock: this host's, in unix milliseconds.
func nowMillis() int64 { return time.Now().UnixMilli() }

// maxParentDepth bounds the walk up a tree of executions in
// ReplayDeadLetter, against a cycle in corrupt parent links.
const maxParentDepth = 10_000

var bg = context.Background()

func (w *writer) createExecution(e *persistence.Execution) (*persistence.Execution, bool, error) {
	now := nowMillis()
	created := now
	if !e.CreatedAt.IsZero() {
		created = e.CreatedAt.UnixMilli()
	}
	status := e.Status
	if status == "" {
		status = persistence.StatusPending
	}
	errJSON, err := encodeError(e.Error)
	if err != nil {
		return nil, false, fmt.Errorf("encoding error of execution %s: %w", e.ID, err)
	}
	args := executionArgs(e, status, errJSON, created, now)
	if e.RootID == "" && e.ParentID == "" {
		args[argRootID] = e.ID // what the statement would make it
	}
	res, err := w.s.executionInsert.ExecContext(bg, args...)
	if err != nil {
		return nil, false, fmt.Errorf("inserting execution %s: %w", e.ID, interpretError(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, false, fmt.Errorf("inserting execution %s: %w", e.ID, interpretError(err))
	} else if n == 1 {
		if args[argRootID] == "" {
			// Its root is its parent's, which the statement looked up.
			ex, err := scanExecution(w.s.executionGet.QueryRowContext(bg, e.ID))
			if err != nil {
				return nil, false, fmt.Errorf("reading execution %s back: %w", e.ID, err)
			}
			return ex, true, nil
		}
		ex, err := scanExecution(insertedRow(args))
		if err != nil {
			return nil, false, fmt.Errorf("inserting execution %s: %w", e.ID, err)
		}
		return ex, true, nil
	}
	// A conflict: the row of the same ID or idempotency key.
	if e.IdempotencyKey != "" {
		ex, err := scanExecution(w.s.executionGetByKey.QueryRowContext(bg, e.IdempotencyKey))
		switch {
		case err == nil:
			if ex.Function != e.Function || !bytes.Equal(ex.Input, e.Input) {
				return nil, false, fmt.Errorf("creating execution %s with idempotency key %q, taken by execution %s of %s: %w",
					e.ID, e.IdempotencyKey, ex.ID, ex.Function, persistence.ErrIdempotencyConflict)
			}
			return ex, false, nil
		case !errors.Is(err, persistence.ErrNotFound):
			return nil, false, fmt.Errorf("looking up idempotency key %q: %w", e.IdempotencyKey, err)
		}
	}
	ex, err := scanExecution(w.s.executionGet.QueryRowContext(bg, e.ID))
	if err != nil {
		return nil, false, fmt.Errorf("looking up execution %s: %w", e.ID, err)
	}
	return ex, false, nil
}

// validateCommit rejects a commit that cannot be applied as it stands.
func validateCommit(c *persistence.Commit) error {
	if c == nil {
		return errors.New("applying commit: nil commit")
	}
	id := c.ExecutionID
	if id == "" && (len(c.Journal) > 0 || len(c.DeleteJournal) > 0 || c.Update != nil || c.Snapshot != nil || c.ConsumeSignal != "") {
		return errors.New("applying commit: a commit without ExecutionID cannot write a journal, an update, a snapshot or consume a signal")
	}
	for _, e := range c.Create {
		if e == nil || e.ID == "" || e.Function == "" {
			return fmt.Errorf("applying commit of %s: created execution without ID or function", id)
		}
		if e.Status != "" && !e.Status.Valid() {
			return fmt.Errorf("applying commit of %s: created execution %s has invalid status %q", id, e.ID, e.Status)
		}
	}
	for _, je := range c.Journal {
		if je == nil || (je.ExecutionID != "" && je.ExecutionID != id) {
			return fmt.Errorf("applying commit of %s: journal entry of another execution", id)
		}
	}
	if c.Update != nil && c.Update.Status != "" && !c.Update.Status.Valid() {
		return fmt.Errorf("applying commit of %s: invalid status %q", id, c.Update.Status)
	}
	if c.Deliver != nil && c.Deliver.ExecutionID == "" {
		return fmt.Errorf("applying commit of %s: delivery without ExecutionID", id)
	}
	if c.Snapshot != nil && c.Snapshot.ExecutionID != "" && c.Snapshot.ExecutionID != id {
		return fmt.Errorf("applying commit of %s: snapshot of another execution %s", id, c.Snapshot.ExecutionID)
	}
	if d := c.DeadLetter; d != nil && (d.ID == "" || (d.ExecutionID == "" && id == "")) {
		return fmt.Errorf("applying commit of %s: dead letter without ID or execution", id)
	}
	return nil
}

// applyCommit writes one commit. The fence is checked first, so a stale
// commit writes nothing.
func (w *writer) applyCommit(c *persistence.Commit) error {
	if err := validateCommit(c); err != nil {
		return err
	}
	id := c.ExecutionID
	now := nowMillis()
	journal := c.Journal
	switch {
	case id != "" && journalOnly(c):
		// The most common commit (a step's outcome): its one statement
		// is its fence.
		je := journal[0]
		written, err := w.upsertEntryFenced(id, c.Epoch, je)
		if err != nil {
			return fmt.Errorf("writing journal entry %d of %s: %w", je.Position, id, err)
		}
		if !written {
			return w.fence(id, c.Epoch, true)
		}
		journal = journal[1:]
	case id != "":
		if err := w.fence(id, c.Epoch, false); err != nil {
			return err
		}
	}
	if c.ConsumeSignal != "" {
		if err := w.consumeSignal(id, c.ConsumeSignal, c.ConsumePos); err != nil {
			return err
		}
	}
	for _, e := range c.Create {
		if err := w.insertChild(e, now); err != nil {
			return fmt.Errorf("creating execution %s: %w", e.ID, err)
		}
	}
	for _, pos := range c.DeleteJournal {
		if _, err := w.s.journalDelete.ExecContext(bg, id, int64(pos)); err != nil {
			return fmt.Errorf("deleting journal entry %d of %s: %w", pos, id, interpretError(err))
		}
	}
	for _, je := range journal {
		if err := w.upsertEntry(id, je); err != nil {
			return fmt.Errorf("writing journal entry %d of %s: %w", je.Position, id, err)
		}
	}
	if u := c.Update; u != nil {
		if err := w.update(id, u, now); err != nil {
			return fmt.Errorf("updating execution %s: %w", id, err)
		}
	}
	if d := c.Deliver; d != nil {
		if err := w.upsertEntry(d.ExecutionID, d); err != nil {
			return fmt.Errorf("delivering to journal entry %d of %s: %w", d.Position, d.ExecutionID, err)
		}
	}
	if s := c.Snapshot; s != nil {
		if _, err := w.s.snapshotUpsert.ExecContext(bg, id, int64(s.Position), nullBlob(s.Data), now); err != nil {
			return fmt.Errorf("writing snapshot of %s: %w", id, interpretError(err))
		}
	}
	if d := c.DeadLetter; d != nil {
		if err := w.insertDeadLetter(id, d, now); err != nil {
			return fmt.Errorf("inserting dead letter %s: %w", d.ID, err)
		}
	}
	return nil
}

// fence returns nil if execution id is at lease epoch epoch, else an
// error wrapping persistence.ErrStaleEpoch or persistence.ErrNotFound.
// refused says that a fenced write found it at another epoch already.
func (w *writer) fence(id string, epoch int64, refused bool) error {
	var now int64
	if err := w.s.executionEpoch.QueryRowContext(bg, id).Scan(&now); err != nil {
		return fmt.Errorf("fencing commit of %s: %w", id, interpretError(err))
	}
	if now != epoch {
		return fmt.Errorf("committing to %s at epoch %d, now %d: %w", id, epoch, now, persistence.ErrStaleEpoch)
	}
	if refused {
		// Not possible inside one transaction: the epoch read is the one
		// the write saw.
		return fmt.Errorf("committing to %s at epoch %d: the journal entry was not written", id, epoch)
	}
	return nil
}

// journalOnly reports whether c writes journal entries and nothing else.
func journalOnly(c *persistence.Commit) bool {
	return len(c.Journal) > 0 && c.ConsumeSignal == "" && len(c.Create) == 0 && len(c.DeleteJournal) == 0 &&
		c.Update == nil && c.Deliver == nil && c.Snapshot == nil && c.DeadLetter == nil
}

func (w *writer) insertChild(e *persistence.Execution, now int64) error {
	created := now
	if !e.CreatedAt.IsZero() {
		created = e.CreatedAt.UnixMilli()
	}
	status := e.Status
	if status == "" {
		status = persistence.StatusPending
	}
	errJSON, err := encodeError(e.Error)
	if err != nil {
		return err
	}
	_, err = w.s.executionInsertChild.ExecContext(bg, executionArgs(e, status, errJSON, created, now)...)
	return interpretError(err)
}

func (w *writer) upsertEntry(id string, je *persistence.JournalEntry) error {
	args, err := entryArgs(id, je)
	if err != nil {
		return err
	}
	_, err = w.s.journalUpsert.ExecContext(bg, args...)
	return interpretError(err)
}

// upsertEntryFenced writes je only while execution id is at lease epoch
// epoch, and reports whether it did.
func (w *writer) upsertEntryFenced(id string, epoch int64, je *persistence.JournalEntry) (bool, error) {
	args, err := entryArgs(id, je)
	if err != nil {
		return false, err
	}
	res, err := w.s.journalUpsertFenced.ExecContext(bg, append(args, epoch)...)
	if err != nil {
		return false, interpretError(err)
	}
	n, err := res.RowsAffected()
	return n == 1, interpretError(err)
}

// entryArgs are the arguments of JournalUpsert for je of execution id.
func entryArgs(id string, je *persistence.JournalEntry) ([]any, error) {
	errJSON, err := encodeError(je.Error)
	if err != nil {
		return nil, err
	}
	var attempts any
	if je.Attempts > 0 {
		attempts = int64(je.Attempts)
	}
	args := make([]any, 14, 15)
	args[0], args[1], args[2], args[3], args[4] = id, int64(je.Position), string(je.Kind), je.Name, je.ChildID
	args[5], args[6], args[7], args[8], args[9] = nullTime(je.FireAt), je.Done, nullBlob(je.Output), errJSON, nowMillis()
	args[10], args[11], args[12], args[13] = nullTime(je.StartedAt), nullTime(je.EndedAt), nullBlob(je.Input), attempts
	return args, nil
}

func (w *writer) update(id string, u *persistence.Update, now int64) error {
	var status any
	if u.Status != "" {
		status = string(u.Status)
	}
	errJSON, err := encodeError(u.Error)
	if err != nil {
		return err
	}
	setRunAt := u.SetRunAt
	var runAt any
	if u.SetRunAt && !u.NoRunAt {
		runAt = dueMillis(dueAt(w.clock, u.RunAfter)) // rounded up: never due early
	}
	if u.Status == persistence.StatusWaiting && u.WaitSignal != "" {
		pending, err := w.signalPending(id, u.WaitSignal)
		if err != nil {
			return err
		}
		if pending { // it arrived while the execution was passivating
			setRunAt, runAt = true, now
		}
	}
	_, err = w.s.executionUpdate.ExecContext(bg, id, status,
		u.Status == persistence.StatusCompleted, nullBlob(u.Output),
		u.Error != nil || u.ClearError, errJSON,
		int64(u.Attempts), setRunAt, runAt, u.Release, now)
	return interpretError(err)
}

func (w *writer) insertDeadLetter(id string, d *persistence.DeadLetter, now int64) error {
	execID := d.ExecutionID
	if execID == "" {
		execID = id
	}
	created := now
	if !d.CreatedAt.IsZero() {
		created = d.CreatedAt.UnixMilli()
	}
	errJSON, err := encodeError(d.Error)
	if err != nil {
		return err
	}
	_, err = w.s.deadLetterInsert.ExecContext(bg, d.ID, execID, d.Function, nullBlob(d.Input), errJSON,
		int64(d.Attempts), created)
	return interpretError(err)
}

func (w *writer) acquireLease(id, owner string, ttl time.Duration) (*persistence.Execution, error) {
	now := nowMillis()
	ex, err := persistence.TolerateUndecodableError(scanExecution(w.s.leaseAcquire.QueryRowContext(bg, id, owner, now+ttl.Milliseconds(), now)))
	if err == nil {
		return ex, nil
	}
	if !errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("acquiring lease of %s: %w", id, err)
	}
	cur, err := scanExecution(w.s.executionGet.QueryRowContext(bg, id))
	if err != nil {
		return nil, fmt.Errorf("acquiring lease of %s: %w", id, err)
	}
	if cur.Status.Terminal() {
		return nil, fmt.Errorf("acquiring lease of %s: execution is %s: %w", id, cur.Status, persistence.ErrLeaseHeld)
	}
	return nil, fmt.Errorf("acquiring lease of %s: held by %s until %s: %w",
		id, cur.Owner, cur.LeaseExpiresAt.Format(time.RFC3339Nano), persistence.ErrLeaseHeld)
}

func (w *writer) claimDue(owner string, queues, functions, tags any, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	now := nowMillis()
	rows, err := w.s.leaseClaim.QueryContext(bg, owner, now+ttl.Milliseconds(), now, queues, int64(limit), functions, tags, dueNow(w.clock))
	if err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", interpretError(err))
	}
	var out []*persistence.Execution
	for rows.Next() {
		ex, err := persistence.TolerateUndecodableError(scanExecution(rows))
		if err != nil {
			return nil, errors.Join(fmt.Errorf("claiming due executions: %w", err), rows.Close())
		}
		out = append(out, ex)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", interpretError(err))
	}
	slices.SortFunc(out, func(a, b *persistence.Execution) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

func (w *writer) renewLeases(owner string, ids any, ttl time.Duration) (int, error) {
	res, err := w.s.leaseRenew.ExecContext(bg, owner, nowMillis()+ttl.Milliseconds(), ids)
	if err != nil {
		return 0, fmt.Errorf("renewing leases of %s: %w", owner, interpretError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("renewing leases of %s: %w", owner, interpretError(err))
	}
	return int(n), nil
}

func (w *writer) releaseLeases(owner string) error {
	if _, err := w.s.leaseRelease.ExecContext(bg, owner, nowMillis()); err != nil {
		return fmt.Errorf("releasing leases of %s: %w", owner, interpretError(err))
	}
	return nil
}

func (w *writer) replayDeadLetter(id string) (*persistence.Execution, error) {
	d, err := scanDeadLetter(w.s.deadLetterGet.QueryRowContext(bg, id))
	if err != nil {
		return nil, fmt.Errorf("replaying dead letter %s: %w", id, err)
	}
	if _, err := w.s.deadLetterDelete.ExecContext(bg, id); err != nil {
		return nil, fmt.Errorf("replaying dead letter %s: %w", id, interpretError(err))
	}
	now := nowMillis()
	ex, err := w.replayExecution(d.ExecutionID, now)
	if err != nil {
		return nil, fmt.Errorf("replaying dead letter %s: %w", id, err)
	}
	// Walk up: the parent's journal gets its failure back as an intent,
	// and a parent that failed because of it is replayed in turn.
	cur := ex
	for depth := 0; cur.ParentID != ""; depth++ {
		if depth == maxParentDepth {
			return nil, fmt.Errorf("replaying dead letter %s: more than %d ancestors above %s", id, maxParentDepth, cur.ID)
		}
		res, err := w.s.journalReopen.ExecContext(bg, cur.ParentID, int64(cur.ParentPos))
		if err != nil {
			return nil, fmt.Errorf("reopening journal entry %d of %s: %w", cur.ParentPos, cur.ParentID, interpretError(err))
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return nil, fmt.Errorf("reopening journal entry %d of %s: %w", cur.ParentPos, cur.ParentID, interpretError(err))
			}
			break
		}
		parent, err := scanExecution(w.s.executionGet.QueryRowContext(bg, cur.ParentID))
		if errors.Is(err, persistence.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("replaying parent %s: %w", cur.ParentID, err)
		}
		if parent.Status != persistence.StatusFailed {
			break
		}
		if _, err := w.s.deadLetterDeleteByEx.ExecContext(bg, parent.ID); err != nil {
			return nil, fmt.Errorf("replaying parent %s: %w", parent.ID, interpretError(err))
		}
		if cur, err = w.replayExecution(parent.ID, now); err != nil {
			return nil, fmt.Errorf("replaying parent %s: %w", parent.ID, err)
		}
	}
	return ex, nil
}

// replayExecution resets one execution to run again from a fresh attempt
// count, dropping its snapshot and its failed journal outcomes.
func (w *writer) replayExecution(id string, now int64) (*persistence.Execution, error) {
	ex, err := scanExecution(w.s.executionReplay.QueryRowContext(bg, id, now))
	if err != nil {
		return nil, fmt.Errorf("resetting execution %s: %w", id, err)
	}
	if _, err := w.s.snapshotDelete.ExecContext(bg, id); err != nil {
		return nil, fmt.Errorf("deleting snapshot of %s: %w", id, interpretError(err))
	}
	if _, err := w.s.journalDeleteFailed.ExecContext(bg, id); err != nil {
		return nil, fmt.Errorf("deleting failed outcomes of %s: %w", id, interpretError(err))
	}
	return ex, nil
}

func (w *writer) deleteDeadLetter(id string) error {
	res, err := w.s.deadLetterDelete.ExecContext(bg, id)
	if err != nil {
		return fmt.Errorf("deleting dead letter %s: %w", id, interpretError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("deleting dead letter %s: %w", id, interpretError(err))
	}
	if n == 0 {
		return fmt.Errorf("deleting dead letter %s: %w", id, persistence.ErrNotFound)
	}
	return nil
}
