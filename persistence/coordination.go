package persistence

import (
	"context"
	"errors"
	"time"
)

// Errors of the coordination methods (signals, cancellation, permits).
var (
	// ErrFinished reports a signal or a cancel for an execution that has
	// already reached a terminal status.
	ErrFinished = errors.New("persistence: execution has finished")
	// ErrLimit reports that a limit was reached: too many unconsumed
	// signals for one execution.
	ErrLimit = errors.New("persistence: limit reached")
)

// Signal is an external event sent to an execution: a row in the signals
// table, kept until the execution consumes it. Signals of one name are
// consumed one at a time, in the order they arrived (Seq).
type Signal struct {
	ID          string
	ExecutionID string
	Name        string
	Payload     []byte
	// Seq orders signals: assigned by the backend, increasing in the order
	// SendSignal calls commit.
	Seq       int64
	CreatedAt time.Time
	// ConsumedPos is the journal position that consumed the signal, or -1.
	ConsumedPos int
}

// Coordination is the part of Backend behind signals, cancellation and
// concurrency limits. Every Backend implements it.
type Coordination interface {
	// SendSignal records s (its ID, ExecutionID, Name and Payload, all
	// required but Payload; Seq and CreatedAt are assigned and set in s)
	// in one transaction, unless the execution does not exist
	// (ErrNotFound), is terminal (ErrFinished), or already holds
	// maxPending unconsumed signals of any name (ErrLimit; maxPending <= 0
	// means no limit). When the execution is waiting, its RunAt becomes
	// now, so that it is claimed and replays. It returns the execution as
	// it stands. An ID already recorded for the same execution (a retried
	// send) records nothing and succeeds; one recorded for another
	// execution gives ErrIdempotencyConflict.
	SendSignal(ctx context.Context, s *Signal, maxPending int) (*Execution, error)
	// NextSignal returns the oldest unconsumed signal of name sent to the
	// execution, or ErrNotFound.
	NextSignal(ctx context.Context, executionID, name string) (*Signal, error)

	// RequestCancel cancels execution id and every non-terminal execution
	// below it (children, grandchildren, by ParentID), in one transaction.
	// Each gets CancelRequested. Those that no node runs (no owner, or an
	// expired lease) end at once: status canceled, error of kind canceled,
	// lease released; a child that ends so also has its outcome (the same
	// error) upserted into its parent's journal at ParentPos. It returns
	// every execution it touched, as it left them, so the caller can tell
	// the owners of the others. ErrNotFound for an unknown id, ErrFinished
	// for a terminal one.
	RequestCancel(ctx context.Context, id string) ([]*Execution, error)
	// CancelRequested returns those of ids whose cancel was requested and
	// that are not terminal, sorted.
	CancelRequested(ctx context.Context, ids []string) ([]string, error)

	// AcquirePermit takes one of limit permits of key for holder (an
	// execution ID), leased to owner (a node) for ttl, if fewer than limit
	// unexpired permits of key exist; it reports whether it did. A holder
	// whose owner has a permit of key for it already keeps it (true, lease
	// extended). An unexpired permit of the holder that another owner holds
	// is refused (false) until it is released or expires: the holder may
	// still run there, and one permit never covers two runs.
	// Concurrent acquirers never exceed limit. A limit below 1 grants
	// nothing.
	AcquirePermit(ctx context.Context, key, holder, owner string, limit int, ttl time.Duration) (bool, error)
	// ReleasePermit gives back holder's permit of key (no error if none).
	// Only owner's permit goes: the holder's permit that another owner
	// holds (the holder now runs there) is left alone.
	ReleasePermit(ctx context.Context, key, holder, owner string) error
	// RenewPermits extends by ttl the unexpired permits owner holds for
	// holders (the executions it runs) and returns how many. A permit of a
	// holder not named, such as one of a process that ran under the same
	// owner name before a crash, is left to expire.
	RenewPermits(ctx context.Context, owner string, holders []string, ttl time.Duration) (int, error)
	// CountPermits returns how many unexpired permits of key exist.
	CountPermits(ctx context.Context, key string) (int, error)
}
