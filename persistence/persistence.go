package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by every Backend. Backends map their driver errors onto
// these in one place, so callers can use errors.Is whatever the database.
var (
	// ErrNotFound reports that an execution, snapshot or dead letter does not exist.
	ErrNotFound = errors.New("persistence: not found")
	// ErrStaleEpoch reports that a fenced write carried a lease epoch that is
	// no longer the execution's current one: another owner has taken it over.
	// Nothing of the refused Commit was written.
	ErrStaleEpoch = errors.New("persistence: stale lease epoch")
	// ErrLeaseHeld reports that AcquireLease found the lease held, unexpired,
	// by another owner, or the execution in a state that cannot be leased.
	ErrLeaseHeld = errors.New("persistence: lease held by another owner")
	// ErrIdempotencyConflict reports that an idempotency key is already used
	// by an execution with a different function or input.
	ErrIdempotencyConflict = errors.New("persistence: idempotency key used with a different input")
	// ErrSchemaTooNew reports a database migrated by a newer version of Stent.
	ErrSchemaTooNew = errors.New("persistence: database schema is newer than this version of stent")
	// ErrClosed reports a call on a closed Backend.
	ErrClosed = errors.New("persistence: backend closed")
)

// Status is the lifecycle state of an execution.
type Status string

// The statuses of an execution. Completed, Failed, Canceled and TimedOut are
// terminal: an execution in one of them never changes status again, except
// by an explicit replay of its dead letter.
const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusWaiting   Status = "waiting"
	StatusCompleted Status = "completed"
	StatusFailed    Status = "failed"
	StatusCanceled  Status = "canceled"
	StatusTimedOut  Status = "timed_out"
)

// Terminal reports whether s is a final status.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCanceled, StatusTimedOut:
		return true
	}
	return false
}

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusRunning, StatusWaiting, StatusCompleted, StatusFailed, StatusCanceled, StatusTimedOut:
		return true
	}
	return false
}

// ErrorKind classifies a recorded failure.
type ErrorKind string

// The kinds of recorded failure.
const (
	ErrorKindError            ErrorKind = "error"            // the function returned an error
	ErrorKindPanic            ErrorKind = "panic"            // the function panicked
	ErrorKindTimeout          ErrorKind = "timeout"          // an attempt or the execution ran past its deadline
	ErrorKindCanceled         ErrorKind = "canceled"         // the execution was canceled
	ErrorKindNonDeterministic ErrorKind = "nondeterministic" // a replay issued a different operation
	ErrorKindDecode           ErrorKind = "decode"           // an input or output could not be decoded
	ErrorKindUnknownFunction  ErrorKind = "unknown_function" // no function of that name is registered
)

// ErrorInfo is a failure as it is recorded: stored as JSON in execution rows,
// journal entries and dead letters.
type ErrorInfo struct {
	Message      string    `json:"message"`
	Kind         ErrorKind `json:"kind,omitempty"`
	NonRetryable bool      `json:"non_retryable,omitempty"`
	Stack        string    `json:"stack,omitempty"`
	// Function, ExecutionID and Attempts identify the execution that failed,
	// when the failure is a child's outcome recorded in its parent's journal.
	Function    string `json:"function,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	Attempts    int    `json:"attempts,omitempty"`
}

// Execution is one row of the executions table.
type Execution struct {
	ID       string
	Function string
	Queue    string
	Status   Status
	// Input and Output are JSON documents. Output is set once completed.
	Input  []byte
	Output []byte
	// Error is set once failed, canceled or timed out.
	Error *ErrorInfo
	// ParentID and ParentPos name the journal position of the parent that
	// started this execution; ParentID is "" for a root execution.
	ParentID  string
	ParentPos int
	// RootID is the ID of the root of this execution's tree (its own ID for a root).
	RootID string
	// IdempotencyKey, when not "", is unique across all executions.
	IdempotencyKey string
	Attempts       int
	Priority       int
	Version        string
	// Owner, Epoch and LeaseExpiresAt are the lease. Owner is "" when no
	// node holds it. Epoch increases by one at every acquisition and fences
	// every write of the execution.
	Owner          string
	Epoch          int64
	LeaseExpiresAt time.Time
	// LeaseTTL, on an insert (CreateExecution, Commit.Create) of a row
	// with an Owner, makes the lease expire LeaseTTL after the backend's
	// clock when the insert runs in the database, instead of at
	// LeaseExpiresAt as given: a creator that leases its new row never
	// sends a lease computed on its own clock, which a slow insert (a
	// lock held past the lease, an outage) or a skewed client clock would
	// make expired on arrival. It is not stored; rows read back have 0.
	LeaseTTL time.Duration
	// RunAt is when the execution may next run: its durable timer (a delayed
	// start, a retry's backoff, the end of a passivated sleep). The zero time
	// means "not scheduled" (a wait for something other than time).
	RunAt time.Time
	// Deadline, when not zero, ends the whole execution as timed out.
	Deadline time.Time
	// CancelRequested is set by RequestCancel: the execution ends as
	// canceled at its next step.
	CancelRequested bool
	// CreatedAt is kept as given on insert (CreateExecution, Commit.Create);
	// the zero time becomes the backend's clock. UpdatedAt is the backend's
	// clock at the last write of the row.
	CreatedAt time.Time
	UpdatedAt time.Time
	// TraceContext is the W3C traceparent of the span the execution's
	// attempts are parented on ("" when none was recorded): the caller's
	// span for a root, the call's span in the parent for a child. It is
	// written on insert and never changes, so that a retry, a takeover or a
	// wake-up on any node continues the same trace.
	TraceContext string
}

// EntryKind is the kind of durable operation a journal entry records.
type EntryKind string

// The kinds of durable operation.
const (
	EntryCall   EntryKind = "call"   // a child execution; Name is its function
	EntrySleep  EntryKind = "sleep"  // a durable timer; FireAt is when it ends
	EntryNow    EntryKind = "now"    // a recorded time; Output holds it
	EntrySignal EntryKind = "signal" // a signal wait; Name is the signal's, Output its payload, FireAt its timeout
)

// JournalEntry records one durable operation of an execution, at the
// position the body issued it. An entry is written when the operation starts
// (Done false, an intent) and again with its outcome (Done true).
//
// StartedAt, EndedAt, Input and Attempts describe the operation for people
// (Executor.Journal, a step shown from its parent's journal), not for
// replay: JournalEntries reads them; LoadJournal, the read that reactivates
// an execution, leaves them zero, and snapshots do not hold them.
type JournalEntry struct {
	ExecutionID string
	Position    int
	Kind        EntryKind
	Name        string
	ChildID     string
	FireAt      time.Time
	Done        bool
	Output      []byte
	Error       *ErrorInfo
	// StartedAt and EndedAt are when the operation started and ended: for
	// a call, the child's creation and end. A value given in a Commit is
	// stored as given; a zero one becomes the backend's clock when the
	// entry is first written (StartedAt) and first written done (EndedAt,
	// ignored on an entry that is not done). A later write of the entry
	// keeps both. They read back zero when not known (not done yet, or
	// written before schema version 3).
	StartedAt time.Time
	EndedAt   time.Time
	// Input and Attempts complete a call's record (schema version 7): the
	// child's input (a JSON document, as Execution.Input) and, once done,
	// the attempts it took. A step recorded only as its outcome in its
	// parent's journal (no execution row) has no other record of them.
	// They are nil and 0 when not recorded. A later write of the entry
	// without them keeps the stored ones.
	Input    []byte
	Attempts int
}

// Snapshot is an opaque summary of an execution's journal up to and including
// Position, written by its owner so that reactivation reads one row and a
// short tail instead of the whole journal.
type Snapshot struct {
	ExecutionID string
	Position    int
	Data        []byte
}

// DeadLetter is an execution that failed for good: retries exhausted or a
// non-retryable error.
type DeadLetter struct {
	ID          string
	ExecutionID string
	Function    string
	Input       []byte
	Error       *ErrorInfo
	Attempts    int
	CreatedAt   time.Time
}

// Update changes an execution's own row as part of a Commit. Zero fields
// leave the column as it is, except where noted.
type Update struct {
	// Status, when not "", becomes the execution's status.
	Status Status
	// Output is stored when Status is StatusCompleted.
	Output []byte
	// Error is stored when not nil; a nil Error with ClearError removes it.
	Error      *ErrorInfo
	ClearError bool
	// Attempts, when > 0, becomes the attempt count.
	Attempts int
	// RunAfter, when SetRunAt is true, schedules the execution: RunAt becomes
	// the backend's clock plus RunAfter. With SetRunAt and NoRunAt, RunAt is
	// cleared (not scheduled).
	SetRunAt bool
	RunAfter time.Duration
	NoRunAt  bool
	// Release gives up the lease: Owner becomes "" and the lease expires now.
	// The epoch is kept, so the next AcquireLease or ClaimDue moves past it.
	Release bool
	// WaitSignal, with Status waiting, names the signal the execution
	// passivates to wait for: if an unconsumed signal of that name exists
	// already (it arrived while the execution was passivating), RunAt
	// becomes now instead, so the execution is claimed again at once.
	WaitSignal string
}

// Commit is a set of changes made on behalf of one execution, applied
// atomically and fenced by its lease: if the execution's current epoch is not
// Epoch, nothing is written and Apply returns ErrStaleEpoch for it.
type Commit struct {
	ExecutionID string
	Epoch       int64
	// Create inserts executions (children started by this one). An ID that
	// already exists is left as it is (a replayed start).
	Create []*Execution
	// Journal upserts entries of ExecutionID's journal, by position.
	Journal []*JournalEntry
	// DeleteJournal removes entries of ExecutionID's journal by position
	// (failed outcomes discarded before a retry).
	DeleteJournal []int
	// Update changes ExecutionID's row.
	Update *Update
	// Deliver upserts an entry into another execution's journal: a child's
	// outcome recorded for its parent. It is not fenced by the parent's epoch.
	Deliver *JournalEntry
	// Snapshot replaces ExecutionID's snapshot.
	Snapshot *Snapshot
	// DeadLetter is inserted (the execution failed for good).
	DeadLetter *DeadLetter
	// ConsumeSignal, when not "", is the ID of a signal (Signal.ID, as
	// NextSignal returned it) to mark consumed by ExecutionID at
	// ConsumePos. If it is not an unconsumed signal of ExecutionID,
	// nothing of the Commit is written and Apply returns ErrNotFound for
	// it; a signal ExecutionID consumed at ConsumePos already counts as
	// unconsumed, so that a Commit applied twice (a retry after an unknown
	// outcome) succeeds both times. The epoch is checked first: a stale
	// Commit gets ErrStaleEpoch whatever its signal.
	ConsumeSignal string
	ConsumePos    int
}

// ListFilter selects executions for List. Zero fields select everything.
type ListFilter struct {
	Status   Status
	Function string
	ParentID string
	Queue    string
	// IdempotencyKey, when not "", selects the execution started with that
	// key (at most one: keys are unique).
	IdempotencyKey string
	// Since and Until, when not zero, bound CreatedAt: Since <= CreatedAt < Until.
	Since, Until time.Time
	// BeforeCreatedAt and BeforeID, when BeforeID is not "", start the list
	// after the row (BeforeCreatedAt, BeforeID) in the list's order: the
	// next page after a page that ended with that row.
	BeforeCreatedAt time.Time
	BeforeID        string
	// Limit caps the rows returned; 0 means 100.
	Limit int
}

// Backend stores executions, their journals and snapshots, and dead letters.
// All methods are safe for concurrent use. Times are UTC; due times and lease
// expiry are computed with the backend's clock (the database server's where it
// has one), so one node's clock skew cannot fire a timer early.
type Backend interface {
	Coordination
	Schedules
	Operations
	Progress
	Tagging

	// Init creates or migrates the schema. It is idempotent and returns
	// ErrSchemaTooNew for a database written by a newer version.
	Init(ctx context.Context) error
	// Close releases the backend's resources. Pending writes finish first.
	Close() error

	// CreateExecution inserts a root execution. When e.IdempotencyKey is set
	// and already taken, the existing execution is returned with created
	// false (ErrIdempotencyConflict if its function or input differ). An ID
	// that exists already is returned the same way.
	CreateExecution(ctx context.Context, e *Execution) (existing *Execution, created bool, err error)
	// Apply writes each Commit in its own atomic unit and returns one error
	// per commit (nil for written). Backends may group several commits into
	// one database transaction (group commit); a refused commit never
	// affects the others. The returned error is for a failure of the whole
	// call (context, connection).
	Apply(ctx context.Context, commits []*Commit) ([]error, error)

	// GetExecution returns one execution or ErrNotFound.
	GetExecution(ctx context.Context, id string) (*Execution, error)
	// ListExecutions returns executions matching f, newest first.
	ListExecutions(ctx context.Context, f ListFilter) ([]*Execution, error)
	// LoadJournal returns the execution's snapshot (nil if none) and its
	// journal entries after the snapshot's position, in position order.
	LoadJournal(ctx context.Context, id string) (*Snapshot, []*JournalEntry, error)

	// AcquireLease takes the lease of execution id for owner when no other
	// owner holds an unexpired lease and the execution is not terminal: the
	// epoch goes up by one, status becomes running, RunAt is cleared. It
	// returns the execution as leased, ErrLeaseHeld, or ErrNotFound.
	AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (*Execution, error)
	// ClaimDue leases up to limit executions that are due: pending, running
	// or waiting, RunAt reached (or, for pending and running, no RunAt), in
	// one of queues (nil: every queue), of one of functions (nil: every
	// function; a node claims only the functions it has), and with no
	// owner or an expired lease. Higher priority and older executions come
	// first. Concurrent claimers never get the same execution.
	ClaimDue(ctx context.Context, owner string, queues, functions []string, ttl time.Duration, limit int) ([]*Execution, error)
	// RenewLeases extends by ttl the leases owner holds on the executions
	// ids (those it runs), when they are not terminal, and returns how many
	// it extended. A lease owner holds without running the execution (a
	// claim whose answer was lost with a connection) is left to expire.
	RenewLeases(ctx context.Context, owner string, ids []string, ttl time.Duration) (int, error)
	// LostLeases returns the executions of leases (which owner runs, each
	// at the epoch it holds) that owner no longer holds at that epoch: the
	// epoch moved on (another owner, or this one again, claimed it; a
	// terminal execution finished by another activation), or a
	// non-terminal one was released. A node checks with it that it still
	// owns what it runs, after a pause or a false suspicion. Unknown IDs
	// are not returned.
	LostLeases(ctx context.Context, owner string, leases []Lease) ([]string, error)
	// ReleaseLeases gives up every lease owner holds (a graceful stop), so
	// other nodes can claim those executions at once.
	ReleaseLeases(ctx context.Context, owner string) error
	// NextRunAt returns the earliest RunAt among waiting or pending
	// executions of queues without an unexpired lease, or the zero time if
	// there is none; pollers use it to sleep until the next timer.
	NextRunAt(ctx context.Context, queues []string) (time.Time, error)

	// ListDeadLetters returns dead letters, oldest first; limit 0 means 100.
	ListDeadLetters(ctx context.Context, limit int) ([]*DeadLetter, error)
	// GetDeadLetter returns one dead letter or ErrNotFound.
	GetDeadLetter(ctx context.Context, id string) (*DeadLetter, error)
	// ReplayDeadLetter removes the dead letter and makes its execution run
	// again from a fresh attempt count: status pending, attempts 0, error and
	// output cleared, lease released, its snapshot and its failed journal
	// outcomes removed. When the execution has a parent whose journal holds
	// the failure at ParentPos, that entry goes back to an intent (not
	// done), and a parent that had failed is replayed the same way, so it
	// resumes waiting on the child. It returns the replayed execution.
	ReplayDeadLetter(ctx context.Context, id string) (*Execution, error)
	// DeleteDeadLetter removes a dead letter, leaving its execution failed.
	DeleteDeadLetter(ctx context.Context, id string) error
}

// Lease names an execution and the lease epoch an activation of it holds,
// for LostLeases.
type Lease struct {
	ExecutionID string
	Epoch       int64
}

// ErrUndecodableError marks an execution row whose stored error (the last
// failed attempt's) or status does not decode. A backend returns the rest of
// the row with it (wrapped); see TolerateUndecodableError. Listings return
// such a row with its Error saying so; claims never select a row whose
// status is not valid.
var ErrUndecodableError = errors.New("persistence: the stored error does not decode")

// UndecodableDeadLetterError is the Error a backend gives a dead letter
// whose stored error does not decode (err): the dead letter is listed,
// replayed and discarded like any other, its Error saying what is wrong
// and naming it.
func UndecodableDeadLetterError(id string, err error) *ErrorInfo {
	return &ErrorInfo{Message: fmt.Sprintf("dead letter %s: %v: %v", id, ErrUndecodableError, err), Kind: ErrorKindDecode}
}

// TolerateUndecodableError returns e, with an Error that says its stored
// error did not decode, when err is only that (ErrUndecodableError);
// otherwise nil and err. The claims use it: a row leased to the caller runs
// all the same, instead of failing the claim of the whole batch, every
// time, until the row is mended.
func TolerateUndecodableError(e *Execution, err error) (*Execution, error) {
	switch {
	case err == nil:
		return e, nil
	case e == nil || !errors.Is(err, ErrUndecodableError):
		return nil, err
	}
	e.Error = &ErrorInfo{Message: err.Error(), Kind: ErrorKindError}
	return e, nil
}
