package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stent-go/stent/actors"
)

// WithCache reuses a completed result of the function for ttl: a call with
// the same function, version (WithVersion) and input within ttl of a
// completed execution's end completes at once with that execution's
// output, without running the body, in any process sharing the database.
// The new execution is recorded all the same, with CachedFrom naming the
// execution whose result it took. After ttl (measured on the database's
// clock) the next call runs the body again and its result is cached in
// turn. Unlike WithIdempotent, every call is an execution of its own, and
// a failed execution is never cached. It applies to root starts and child
// calls alike; ttl must be positive.
func WithCache(ttl time.Duration) Option {
	return func(o *funcOptions) { o.cacheTTL, o.cacheSet = ttl, true }
}

// CounterRef is a named counter of the execution tree a body belongs to:
// a root execution and all its descendants share their counters. Get one
// with Counter.
type CounterRef struct {
	ctx  context.Context
	name string
}

// Counter returns the counter name of the execution tree ctx's execution
// belongs to. Counters are progress for people to watch (items done,
// bytes sent): Executor.Execution reports them in ExecutionInfo.Counters,
// for any execution of the tree.
func Counter(ctx context.Context, name string) *CounterRef {
	return &CounterRef{ctx: ctx, name: name}
}

// Add adds delta to the counter, atomically in the database. It is
// replay-safe: an execution that replays (after a crash, a passivation or
// a retry) issues its additions again in the same order, and the ones
// already applied are not applied twice. So call Add from the body's
// goroutine, in an order the body's inputs and recorded outcomes decide,
// as for durable operations. Outside an execution (a direct call in unit
// tests) it does nothing.
func (c *CounterRef) Add(delta float64) error {
	if err := actors.CounterAdd(c.ctx, c.name, delta); err != nil {
		return fmt.Errorf("sdk: %w", err)
	}
	return nil
}

// SetState sets key of the execution's state to value, encoded as JSON,
// replacing the previous value: progress for people to watch (the current
// stage, the file being processed), reported by Executor.Execution in
// ExecutionInfo.State. A replay sets the same values again in the same
// order, so the state ends as the body left it. Outside an execution (a
// direct call in unit tests) it does nothing.
func SetState(ctx context.Context, key string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("sdk: encoding state %q: %w", key, err)
	}
	if err := actors.SetState(ctx, key, b); err != nil {
		return fmt.Errorf("sdk: %w", err)
	}
	return nil
}

// withProgress adds the counters of tree rootID, the execution's state
// and its cache mark to info.
func (e *Executor) withProgress(ctx context.Context, info ExecutionInfo, rootID string) (ExecutionInfo, error) {
	if rootID == "" {
		rootID = info.ID
	}
	p, err := e.backend.ExecutionProgress(ctx, info.ID, rootID)
	if err != nil {
		return ExecutionInfo{}, fmt.Errorf("reading execution %q: %w", info.ID, err)
	}
	info.CachedFrom, info.Counters = p.CachedFrom, p.Counters
	info.State = make(map[string]json.RawMessage, len(p.State))
	for k, v := range p.State {
		info.State[k] = json.RawMessage(v)
	}
	return info, nil
}

// stepWithProgress is withProgress for a step recorded only in its
// parent's journal: its tree is its parent's.
func (e *Executor) stepWithProgress(ctx context.Context, info ExecutionInfo) (ExecutionInfo, error) {
	root := info.ParentID
	if parent, err := e.backend.GetExecution(ctx, info.ParentID); err == nil && parent.RootID != "" {
		root = parent.RootID
	}
	info.RootID = root
	return e.withProgress(ctx, info, root)
}
