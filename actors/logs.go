package actors

import (
	"context"
	"log/slog"
	"time"

	"github.com/stent-go/stent/persistence"
)

// The messages of an execution's life, logged with execution_id, function,
// attempt and, at its end, duration (text, such as "1.5s"). Roots log at
// info; children at debug, as a workflow may run thousands of steps.
const (
	LogExecutionStarted   = "execution started"
	LogExecutionCompleted = "execution completed"
	LogExecutionFailed    = "execution failed"
	LogExecutionCanceled  = "execution canceled"
	LogExecutionTimedOut  = "execution timed out"
	LogAttemptRetrying    = "attempt failed, retrying"
	// LogTakeover is logged, with the member's name, by every survivor
	// that takes over the executions of a lost cluster member.
	LogTakeover = "taking over the executions of a lost member"
)

// lifeLevel is the level of e's life events.
func (e *execution) lifeLevel() slog.Level {
	if e.rec != nil && e.rec.ParentID != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// logStarted logs the start (or the resumption) of an attempt.
func (e *execution) logStarted(attempt int) {
	if !e.rt.log.Enabled(context.Background(), e.lifeLevel()) {
		return // a step of a workflow, at info: nothing to build
	}
	e.rt.log.LogAttrs(context.Background(), e.lifeLevel(), LogExecutionStarted,
		slog.String("execution_id", e.id), slog.String("function", e.rec.Function), slog.Int("attempt", attempt),
		slog.Bool("resumed", !e.fresh))
}

// logOutcome logs how an attempt ended: a retry (outcome nil) or the
// execution's end. started is when the attempt began (zero if unknown).
func (e *execution) logOutcome(outcome *Outcome, info *persistence.ErrorInfo, attempt int, retryIn time.Duration, started time.Time) {
	if !e.rt.log.Enabled(context.Background(), e.lifeLevel()) {
		return
	}
	attrs := []slog.Attr{slog.String("execution_id", e.id), slog.String("function", e.rec.Function), slog.Int("attempt", attempt)}
	if !started.IsZero() {
		attrs = append(attrs, slog.String("duration", time.Since(started).Round(time.Microsecond).String()))
	}
	msg := LogExecutionCompleted
	switch {
	case outcome == nil:
		msg = LogAttemptRetrying
		attrs = append(attrs, slog.String("retry_in", retryIn.String()), slog.String("error", info.Message))
	case outcome.Status == persistence.StatusCanceled:
		msg = LogExecutionCanceled
	case outcome.Status == persistence.StatusTimedOut:
		msg = LogExecutionTimedOut
		attrs = append(attrs, slog.String("error", info.Message))
	case info != nil:
		msg = LogExecutionFailed
		attrs = append(attrs, slog.String("status", string(outcome.Status)), slog.String("error", info.Message))
	}
	e.rt.log.LogAttrs(context.Background(), e.lifeLevel(), msg, attrs...)
}
