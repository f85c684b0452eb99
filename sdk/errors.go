package sdk

import (
	"errors"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/persistence"
)

// Errors returned by the SDK; use them with errors.Is.
var (
	// ErrNotFound reports an unknown execution or dead letter.
	ErrNotFound = actors.ErrNotFound
	// ErrFinished reports an operation on an execution that has already ended.
	ErrFinished = actors.ErrFinished
	// ErrCanceled reports that the execution was canceled.
	ErrCanceled = actors.ErrCanceled
	// ErrTimeout reports that an attempt (WithTimeout) or a whole execution
	// (WithMaxDuration) ran past its deadline. errors.Is(ErrTimeout,
	// context.DeadlineExceeded) holds too.
	ErrTimeout = actors.ErrTimeout
	// ErrNonDeterministic reports that a replay issued a different durable
	// operation at a journal position than the one recorded: the function's
	// code changed in a way that cannot resume its recorded progress. The
	// execution fails, and is not retried, rather than being corrupted.
	ErrNonDeterministic = actors.ErrNonDeterministic
	// ErrPayloadTooLarge reports an input or output larger than the
	// executor's limit (WithMaxPayload). An input over it is refused before
	// anything is written; an output over it fails the execution, without
	// retries, and is not stored.
	ErrPayloadTooLarge = actors.ErrPayloadTooLarge
	// ErrBadSignalPayload reports a signal whose payload does not decode
	// into the type a WaitForSignal asked for. The signal is consumed; the
	// error is not retried (see WaitForSignal).
	ErrBadSignalPayload = errors.New("stent: signal payload of the wrong type")
)

// ExecutionError is the error of a durable function that failed: its name,
// its execution ID, the attempts it made and the last error's message. A
// child call that failed returns one; so does Handle.Result. Use errors.As.
// When the failure was a timeout, a cancel or a non-deterministic replay, it
// also matches ErrTimeout, ErrCanceled or ErrNonDeterministic.
type ExecutionError = actors.ExecutionError

// NonRetryable wraps err so that the attempt returning it fails the execution
// at once, without further retries. errors.Unwrap gives err back.
func NonRetryable(err error) error { return actors.NonRetryable(err) }

// Status is the lifecycle state of an execution.
type Status = persistence.Status

// The statuses of an execution. Completed, Failed, Canceled and TimedOut are
// final.
const (
	StatusPending   = persistence.StatusPending
	StatusRunning   = persistence.StatusRunning
	StatusWaiting   = persistence.StatusWaiting
	StatusCompleted = persistence.StatusCompleted
	StatusFailed    = persistence.StatusFailed
	StatusCanceled  = persistence.StatusCanceled
	StatusTimedOut  = persistence.StatusTimedOut
)
