package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrNoExecutor reports a call made outside any execution with no executor
// bound to its context (WithExecutor) and no process default (Use,
// Bootstrap), in a process that made such calls an error with
// RequireExecutor(true). Without that, the call runs the function directly.
var ErrNoExecutor = errors.New("sdk: no executor: call sdk.Bootstrap or sdk.Use at start-up, or bind one with sdk.WithExecutor")

// requireExecutor is RequireExecutor's setting.
var requireExecutor atomic.Bool

// warnedDirect holds the names of the functions whose direct call was
// already logged, so that each warns once per process.
var warnedDirect sync.Map

// RequireExecutor sets what Call, Map and MapResults do outside any
// execution when no executor is bound to the context and none is the
// process default. Off (the default), the function runs directly in the
// calling goroutine, not durably, as in unit tests, and the first such call
// of each function logs a warning. On, the call fails with ErrNoExecutor
// instead: a production binary that forgot Bootstrap finds out at once. A
// node binary turns it on. It is safe for concurrent use.
func RequireExecutor(on bool) { requireExecutor.Store(on) }

// direct decides whether a call with no executor may run the function
// directly: nil (after a warning the first time for this function), or an
// error matching ErrNoExecutor under RequireExecutor(true).
func direct(ctx context.Context, name string) error {
	if requireExecutor.Load() {
		return fmt.Errorf("calling %q: %w", name, ErrNoExecutor)
	}
	if _, seen := warnedDirect.LoadOrStore(name, true); !seen {
		slog.Default().WarnContext(ctx, "durable function called without an executor; it runs directly, not durably",
			slog.String("function", name),
			slog.String("fix", "call sdk.Bootstrap or sdk.Use at start-up, or bind an executor with sdk.WithExecutor"))
	}
	return nil
}

// String returns the execution's fields on one line, with its input and
// output as JSON text (not bytes), for logs and fmt's %v.
func (i ExecutionInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{ID:%s Function:%s Status:%s", i.ID, i.Function, i.Status)
	if i.ParentID != "" {
		fmt.Fprintf(&b, " ParentID:%s", i.ParentID)
	}
	fmt.Fprintf(&b, " Attempts:%d Input:%s Output:%s", i.Attempts, jsonText(i.Input), jsonText(i.Output))
	if i.Error != "" {
		fmt.Fprintf(&b, " Error:%q", i.Error)
	}
	fmt.Fprintf(&b, " Queue:%s Priority:%d", i.Queue, i.Priority)
	if i.Version != "" {
		fmt.Fprintf(&b, " Version:%s", i.Version)
	}
	if i.CachedFrom != "" {
		fmt.Fprintf(&b, " CachedFrom:%s", i.CachedFrom)
	}
	if len(i.Counters) > 0 {
		fmt.Fprintf(&b, " Counters:%v", i.Counters) // fmt sorts map keys
	}
	if len(i.State) > 0 {
		keys := slices.Sorted(maps.Keys(i.State))
		b.WriteString(" State:map[")
		for n, k := range keys {
			if n > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%s:%s", k, jsonText(i.State[k]))
		}
		b.WriteString("]")
	}
	fmt.Fprintf(&b, " CreatedAt:%s UpdatedAt:%s}", i.CreatedAt.Format("2006-01-02T15:04:05.000Z07:00"),
		i.UpdatedAt.Format("2006-01-02T15:04:05.000Z07:00"))
	return b.String()
}

// jsonText is a JSON payload as text, or "null" when there is none.
func jsonText(p []byte) string {
	if len(p) == 0 {
		return "null"
	}
	return string(p)
}
