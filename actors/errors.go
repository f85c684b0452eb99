package actors

import (
	"context"
	"errors"
	"fmt"

	"github.com/stent-go/stent/persistence"
)

// Errors that durable operations return. Package sdk exports the same values.
var (
	// ErrNonDeterministic reports that a replay issued a different durable
	// operation at a journal position than the one recorded there.
	ErrNonDeterministic = errors.New("stent: non-deterministic replay")
	// ErrCanceled reports that the execution was canceled.
	ErrCanceled = errors.New("stent: execution canceled")
	// ErrTimeout reports that an attempt or an execution ran past its
	// deadline. It matches context.DeadlineExceeded too.
	ErrTimeout = timeoutError{}
	// ErrNotFound reports an unknown execution or dead letter.
	ErrNotFound = errors.New("stent: execution not found")
	// ErrFinished reports an operation on an execution that has ended.
	ErrFinished = errors.New("stent: execution already finished")
	// ErrPayloadTooLarge reports an input or output larger than the node's
	// limit (Config.MaxPayload); nothing of it is written.
	ErrPayloadTooLarge = errors.New("stent: payload too large")
	// errShutdown is returned by durable operations while the node stops;
	// the attempt is then abandoned, not recorded as failed.
	errShutdown = errors.New("stent: node shutting down")
	// errLeaseLost is returned by durable operations after this activation's
	// lease was taken over; the activation stops without recording anything.
	errLeaseLost = errors.New("stent: lease lost to another owner")
	// errPassivated is returned by durable operations issued after the
	// execution passivated (from a goroutine other than the body's).
	// errStopped is returned by durable operations of an activation whose
	// actor was stopped: its parent stopped (lease lost) or the node stops.
	errStopped = errors.New("stent: activation stopped")
	// errRestarted is returned by durable operations of an attempt whose
	// actor its supervisor restarts after a panic in the runtime.
	errRestarted  = errors.New("stent: activation restarted after a runtime fault")
	errPassivated = errors.New("stent: durable operation after the execution passivated; issue durable operations from the body's goroutine")
)

type timeoutError struct{}

func (timeoutError) Error() string { return "stent: timed out" }

// Is makes ErrTimeout match context.DeadlineExceeded.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// ExecutionError is the error of an execution that failed: returned by a
// durable call of a child that failed, and by waiting on a failed execution.
// It matches ErrTimeout, ErrCanceled or ErrNonDeterministic with errors.Is
// when the failure was of that kind.
type ExecutionError struct {
	Function    string
	ExecutionID string
	Attempts    int
	Message     string
	// Kind classifies the failure (persistence.ErrorKind values).
	Kind string
	// Stack is the goroutine stack of a panic, when the failure was one.
	Stack string
}

// Error implements error.
func (e *ExecutionError) Error() string {
	return fmt.Sprintf("%s (%s) failed after %d attempts: %s", e.Function, e.ExecutionID, e.Attempts, e.Message)
}

// Is matches the sentinel of the failure's kind.
func (e *ExecutionError) Is(target error) bool {
	switch persistence.ErrorKind(e.Kind) {
	case persistence.ErrorKindTimeout:
		return target == ErrTimeout || target == context.DeadlineExceeded
	case persistence.ErrorKindCanceled:
		return target == ErrCanceled
	case persistence.ErrorKindNonDeterministic:
		return target == ErrNonDeterministic
	}
	return false
}

// nonRetryable marks an error that must not be retried.
type nonRetryable struct{ err error }

func (n *nonRetryable) Error() string { return n.err.Error() }
func (n *nonRetryable) Unwrap() error { return n.err }

// NonRetryable wraps err so that the attempt that returns it is not retried.
// It returns nil for a nil err.
func NonRetryable(err error) error {
	if err == nil {
		return nil
	}
	return &nonRetryable{err: err}
}

// IsNonRetryable reports whether err was wrapped by NonRetryable.
func IsNonRetryable(err error) bool {
	var n *nonRetryable
	return errors.As(err, &n)
}

// errorFromInfo turns a recorded failure back into an error.
func errorFromInfo(info *persistence.ErrorInfo) error {
	if info == nil {
		return nil
	}
	return &ExecutionError{
		Function:    info.Function,
		ExecutionID: info.ExecutionID,
		Attempts:    info.Attempts,
		Message:     info.Message,
		Kind:        string(info.Kind),
		Stack:       info.Stack,
	}
}

// ErrorFromInfo turns a recorded failure of execution (function, id) into an
// *ExecutionError.
func ErrorFromInfo(function, id string, attempts int, info *persistence.ErrorInfo) error {
	if info == nil {
		return nil
	}
	c := *info
	if c.Function == "" {
		c.Function = function
	}
	if c.ExecutionID == "" {
		c.ExecutionID = id
	}
	if c.Attempts == 0 {
		c.Attempts = attempts
	}
	return errorFromInfo(&c)
}

// classify records err as an ErrorInfo.
func classify(err error) *persistence.ErrorInfo {
	info := &persistence.ErrorInfo{Message: err.Error(), Kind: persistence.ErrorKindError}
	var ee *ExecutionError
	switch {
	case errors.Is(err, ErrNonDeterministic):
		info.Kind = persistence.ErrorKindNonDeterministic
		info.NonRetryable = true
	case errors.Is(err, ErrCanceled):
		info.Kind = persistence.ErrorKindCanceled
		info.NonRetryable = true
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		info.Kind = persistence.ErrorKindTimeout
	case errors.As(err, &ee) && ee.Kind == string(persistence.ErrorKindDecode):
		info.Kind = persistence.ErrorKindDecode
	}
	if IsNonRetryable(err) {
		info.NonRetryable = true
	}
	return info
}
