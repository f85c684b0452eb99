package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// write queues r on the writer and waits for it. It returns the error of the
// whole call (closed, context); r's own outcome is in r.
func (b *Backend) write(ctx context.Context, r *request) error {
	if err := b.enter(); err != nil {
		return err
	}
	defer b.leave()
	return b.w.submit(ctx, r)
}

// CreateExecution inserts a root execution as documented on
// persistence.Backend. An empty Status becomes pending, an empty RootID the
// execution's own ID (or its parent's root when ParentID is set), a zero
// CreatedAt the backend's clock. The execution returned, created or found,
// is read back from the database. A key taken by an execution with a
// different function or input gives an error wrapping
// persistence.ErrIdempotencyConflict that names the key.
func (b *Backend) CreateExecution(ctx context.Context, e *persistence.Execution) (*persistence.Execution, bool, error) {
	if e == nil || e.ID == "" || e.Function == "" {
		return nil, false, errors.New("creating execution: ID and Function are required")
	}
	if e.Status != "" && !e.Status.Valid() {
		return nil, false, fmt.Errorf("creating execution %s: invalid status %q", e.ID, e.Status)
	}
	r := newRequest(ctx, opCreate)
	r.exec = e
	if err := b.write(ctx, r); err != nil {
		return nil, false, fmt.Errorf("creating execution %s: %w", e.ID, err)
	}
	out, created, err := r.out, r.created, r.err
	r.release()
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// Apply writes each commit in its own savepoint of a shared transaction, as
// documented on persistence.Backend. A commit is checked against its
// execution's lease epoch before anything of it is written; a stale one
// gets an error wrapping persistence.ErrStaleEpoch, and one for an execution
// that does not exist an error wrapping persistence.ErrNotFound. Within a
// commit, DeleteJournal is applied before Journal. Applying a commit twice
// leaves the same rows as applying it once. Apply returns a non-nil error
// (and no per-commit errors) when the transaction itself failed: then none
// of the commits was written. When ctx ends first, Apply returns ctx.Err()
// and the commits may or may not have been written.
func (b *Backend) Apply(ctx context.Context, commits []*persistence.Commit) ([]error, error) {
	if len(commits) == 0 {
		return nil, nil
	}
	r := newRequest(ctx, opApply)
	r.commits = commits
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("applying %d commits: %w", len(commits), err)
	}
	errs, err := r.errs, r.err
	r.release()
	if err != nil {
		return nil, fmt.Errorf("applying %d commits: %w", len(commits), err)
	}
	return errs, nil
}

// AcquireLease takes the lease of execution id for owner, for ttl, as
// documented on persistence.Backend: it returns the execution as leased, or
// an error wrapping persistence.ErrLeaseHeld (another owner's unexpired
// lease, or a terminal execution) or persistence.ErrNotFound. An owner may
// take again a lease it holds; the epoch still goes up.
func (b *Backend) AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (*persistence.Execution, error) {
	if owner == "" || ttl <= 0 {
		return nil, fmt.Errorf("acquiring lease of %s: owner and a positive ttl are required", id)
	}
	r := newRequest(ctx, opAcquire)
	r.id, r.owner, r.ttl = id, owner, ttl
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("acquiring lease of %s: %w", id, err)
	}
	out, err := r.out, r.err
	r.release()
	return out, err
}

// ClaimDue leases up to limit due executions of queues (every queue when
// queues is empty) and of functions (every function when functions is nil,
// none when it is empty) for owner, in one statement, as documented on
// persistence.Backend. Each claimed execution has its epoch raised by one,
// status running and RunAt cleared, and the result is ordered by priority
// (highest first), then age. A limit below 1 claims nothing.
func (b *Backend) ClaimDue(ctx context.Context, owner string, queues, functions []string, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	return b.ClaimDueTagged(ctx, owner, queues, functions, nil, ttl, limit)
}

// ClaimDueTagged is ClaimDue for a node that has tags: an execution with a
// tag not among them is left to other nodes (tags.go).
func (b *Backend) ClaimDueTagged(ctx context.Context, owner string, queues, functions, tags []string, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	if owner == "" || ttl <= 0 {
		return nil, errors.New("claiming due executions: owner and a positive ttl are required")
	}
	if limit < 1 || (functions != nil && len(functions) == 0) {
		return nil, nil
	}
	qs, err := queueFilter(queues)
	if err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", err)
	}
	fs, err := queueFilter(functions)
	if err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", err)
	}
	ts, err := queueFilter(tags) // the same encoding: a JSON array, or NULL for none
	if err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", err)
	}
	r := newRequest(ctx, opClaim)
	r.owner, r.queues, r.functions, r.ttl, r.limit, r.tags = owner, qs, fs, ttl, limit, ts
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("claiming due executions: %w", err)
	}
	out, err := r.outs, r.err
	r.release()
	return out, err
}

// queueFilter encodes queues as the JSON array the claim and timer queries
// take, or nil for every queue.
func queueFilter(queues []string) (any, error) {
	if len(queues) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(queues)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// RenewLeases extends by ttl the leases owner holds on the executions ids
// that are not terminal, and returns how many it extended.
func (b *Backend) RenewLeases(ctx context.Context, owner string, ids []string, ttl time.Duration) (int, error) {
	if owner == "" || ttl <= 0 {
		return 0, errors.New("renewing leases: owner and a positive ttl are required")
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, fmt.Errorf("renewing leases of %s: %w", owner, err)
	}
	r := newRequest(ctx, opRenew)
	r.owner, r.ttl, r.queues = owner, ttl, string(list) // the ID list rides in the queues field
	if err := b.write(ctx, r); err != nil {
		return 0, fmt.Errorf("renewing leases of %s: %w", owner, err)
	}
	n, err := r.n, r.err
	r.release()
	return n, err
}

// ReleaseLeases gives up every lease owner holds: the owner is cleared and
// the lease expires now, the epoch is kept.
func (b *Backend) ReleaseLeases(ctx context.Context, owner string) error {
	if owner == "" {
		return errors.New("releasing leases: owner is required")
	}
	r := newRequest(ctx, opRelease)
	r.owner = owner
	if err := b.write(ctx, r); err != nil {
		return fmt.Errorf("releasing leases of %s: %w", owner, err)
	}
	err := r.err
	r.release()
	return err
}

// ReplayDeadLetter removes dead letter id and runs its execution again, in
// one transaction, walking up to failed parents as documented on
// persistence.Backend. It returns the replayed execution, or an error
// wrapping persistence.ErrNotFound when there is no such dead letter.
func (b *Backend) ReplayDeadLetter(ctx context.Context, id string) (*persistence.Execution, error) {
	r := newRequest(ctx, opReplay)
	r.id = id
	if err := b.write(ctx, r); err != nil {
		return nil, fmt.Errorf("replaying dead letter %s: %w", id, err)
	}
	out, err := r.out, r.err
	r.release()
	return out, err
}

// DeleteDeadLetter removes dead letter id, leaving its execution failed, or
// returns an error wrapping persistence.ErrNotFound.
func (b *Backend) DeleteDeadLetter(ctx context.Context, id string) error {
	r := newRequest(ctx, opDeleteDeadLetter)
	r.id = id
	if err := b.write(ctx, r); err != nil {
		return fmt.Errorf("deleting dead letter %s: %w", id, err)
	}
	err := r.err
	r.release()
	return err
}
