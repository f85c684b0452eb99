package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stent-go/stent/actors"
)

// Default limits on signals, checked before anything is written.
const (
	// DefaultMaxSignalPayload is the largest signal payload, encoded, in bytes.
	DefaultMaxSignalPayload = 256 << 10
	// DefaultMaxPendingSignals is how many signals may wait, unconsumed, for
	// one execution.
	DefaultMaxPendingSignals = 1000
)

// WithSignalLimits sets the largest signal payload (encoded, in bytes) and
// how many signals may wait unconsumed for one execution; zero keeps a
// default (DefaultMaxSignalPayload, DefaultMaxPendingSignals).
func WithSignalLimits(maxPayload, maxPending int) ExecutorOption {
	return func(o *executorOptions) { o.maxSignalPayload, o.maxPendingSignals = maxPayload, maxPending }
}

// WaitForSignal waits durably for the next signal called name sent to the
// execution (Executor.SendSignal) and returns its payload decoded into T.
// A signal sent before the wait is kept for it; each signal is consumed by
// exactly one wait, in the order sent. A long wait passivates the
// execution: it costs a row, not memory, until the signal arrives.
//
// A signal whose payload does not decode into T is consumed all the same,
// and the wait returns an error matching ErrBadSignalPayload, naming the
// signal and the type, that is not retried: returned from the body, it
// fails the execution at once; the body may instead wait again, for the
// next signal of that name.
func WaitForSignal[T any](ctx context.Context, name string) (T, error) {
	v, _, err := waitForSignal[T](ctx, name, 0)
	return v, err
}

// WaitForSignalTimeout is WaitForSignal with a durable timeout: ok is false
// when d passed first (the timeout survives crashes like a Sleep).
func WaitForSignalTimeout[T any](ctx context.Context, name string, d time.Duration) (T, bool, error) {
	if d <= 0 {
		// The same call fails the same way on every attempt: retrying it
		// would only delay the failure.
		var zero T
		return zero, false, NonRetryable(fmt.Errorf("waiting for signal %q: the timeout must be positive, not %s", name, d))
	}
	return waitForSignal[T](ctx, name, d)
}

func waitForSignal[T any](ctx context.Context, name string, d time.Duration) (T, bool, error) {
	var v T
	raw, ok, err := actors.WaitSignal(ctx, name, d)
	if err != nil || !ok {
		return v, ok, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		// The signal is consumed (recorded at this wait's position), so a
		// replay gets the same error: retrying could not help.
		return v, true, NonRetryable(fmt.Errorf("signal %q: %w: its payload does not decode into %T: %w", name, ErrBadSignalPayload, v, err))
	}
	return v, true, nil
}

// SendSignal delivers a signal called name, with payload (any value
// encoding/json can encode), to execution execID. The signal is written
// before SendSignal returns; the execution consumes it with WaitForSignal,
// now or later, once. It returns an error matching ErrNotFound for an
// unknown execution and ErrFinished for one that has ended; a payload that
// does not encode or is too large, or too many pending signals, is an error
// too, and nothing is written then.
func (e *Executor) SendSignal(ctx context.Context, execID, name string, payload any) error {
	if name == "" {
		return fmt.Errorf("signal to %s: the signal needs a name", execID)
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encoding the payload of signal %q: %w", name, err)
	}
	limit := e.opts.maxSignalPayload
	if limit <= 0 {
		limit = DefaultMaxSignalPayload
	}
	if len(b) > limit {
		return fmt.Errorf("signal %q to %s: payload of %d bytes is over the limit of %d", name, execID, len(b), limit)
	}
	pending := e.opts.maxPendingSignals
	if pending <= 0 {
		pending = DefaultMaxPendingSignals
	}
	return e.rt.Signal(ctx, execID, name, b, pending)
}

// Cancel cancels an execution and every execution below it. Executions
// that are pending, sleeping or waiting end as canceled at once; a running
// one has its body's context cancelled, so its durable operations return
// ErrCanceled, and ends as canceled; on this node, no step starts after
// Cancel returns (a body running on another node stops at its next durable
// operation once that node hears of the cancel). It returns an error
// matching ErrNotFound for an unknown execution and ErrFinished for one that
// has ended.
func (e *Executor) Cancel(ctx context.Context, execID string) error {
	return e.rt.Cancel(ctx, execID)
}
