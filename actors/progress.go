package actors

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/stent-go/stent/persistence"
)

// CacheKey returns the key under which a completed result of fn with input
// is cached when fn has a CacheTTL: its name, version and input's hash.
func (fn *Function) CacheKey(input []byte) string {
	h := sha256.Sum256(input)
	return "cache:" + fn.Name + "@" + fn.Version + ":" + hex.EncodeToString(h[:])
}

// fromCache settles the activation with a cached result of its function
// when there is one and the execution has made no progress of its own, and
// reports whether it did. A hit is marked on the execution; a miss removes
// a mark left by an earlier activation that found the entry.
func (e *execution) fromCache(ctx context.Context, fn *Function, attempt int) bool {
	if fn.CacheTTL <= 0 {
		return false
	}
	e.mu.Lock()
	progressed := len(e.entries) > 0
	e.mu.Unlock()
	if progressed {
		return false
	}
	rt := e.rt
	hit, err := rt.backend.CacheGet(ctx, fn.CacheKey(e.rec.Input))
	if err != nil {
		if !errors.Is(err, persistence.ErrNotFound) && ctx.Err() == nil {
			rt.log.Warn("reading the result cache; running the function", slog.String("execution_id", e.id),
				slog.String("function", fn.Name), slog.Any("error", err))
		}
		if !e.isVirtual() && !e.fresh {
			if err := rt.backend.CacheMarkHit(ctx, e.id, ""); err != nil {
				rt.log.Warn("clearing a cache mark", slog.String("execution_id", e.id), slog.Any("error", err))
			}
		}
		return false
	}
	if hit.ExecutionID == e.id {
		// Its own result, cached just before a crash kept its outcome from
		// being written: it is no cache hit, only the outcome to record.
		e.settle(attempt, bodyResult{out: hit.Output}, "")
		return true
	}
	if err := rt.backend.CacheMarkHit(ctx, e.id, hit.ExecutionID); err != nil {
		rt.log.Warn("marking a cached result", slog.String("execution_id", e.id), slog.Any("error", err))
		return false
	}
	e.mu.Lock()
	e.cachedFrom = hit.ExecutionID
	e.mu.Unlock()
	rt.log.Debug("result taken from the cache", slog.String("execution_id", e.id), slog.String("function", fn.Name),
		slog.String("cached_from", hit.ExecutionID))
	e.settle(attempt, bodyResult{out: hit.Output}, "")
	return true
}

// cacheResult stores the output of a completed attempt of a cached
// function, unless it came from the cache itself, just before the
// execution's outcome is written. It is best effort: a result that is not
// stored is computed again by the next call. An outcome refused after it
// (a lease lost to another node) leaves a result the body did compute.
func (e *execution) cacheResult(out []byte) {
	fn := e.fn
	if fn == nil || fn.CacheTTL <= 0 {
		return
	}
	e.mu.Lock()
	cached := e.cachedFrom != ""
	e.mu.Unlock()
	if cached {
		return
	}
	entry := &persistence.CacheEntry{Key: fn.CacheKey(e.rec.Input), Function: fn.Name, ExecutionID: e.id, Output: out}
	if err := e.rt.backend.CachePut(e.rt.baseCtx, entry, fn.CacheTTL); err != nil {
		e.rt.log.Warn("storing a result in the cache", slog.String("execution_id", e.id),
			slog.String("function", fn.Name), slog.Any("error", err))
	}
}

// CounterAdd adds delta to counter name of the execution tree ctx's
// execution belongs to. Each call of an activation takes the next number,
// and the pair (execution, number) is the addition's key, applied once: a
// replay, which issues the same calls in the same order, adds nothing
// again. Outside an execution (a direct call, in unit tests) it does
// nothing.
func CounterAdd(ctx context.Context, name string, delta float64) error {
	e := fromContext(ctx)
	if e == nil {
		return nil
	}
	if name == "" {
		return errors.New("adding to a counter: the counter needs a name")
	}
	if err := e.usable(); err != nil {
		return err
	}
	seq := e.progressSeq.Add(1)
	op := e.id + "/" + strconv.FormatInt(seq, 10)
	if _, err := e.rt.backend.CounterAdd(ctx, e.rootID(), name, op, delta); err != nil {
		return fmt.Errorf("adding %v to counter %q of %s: %w", delta, name, e.id, err)
	}
	return nil
}

// SetState sets key of ctx's execution's state to value, a JSON document.
// Outside an execution (a direct call, in unit tests) it does nothing.
func SetState(ctx context.Context, key string, value []byte) error {
	e := fromContext(ctx)
	if e == nil {
		return nil
	}
	if key == "" {
		return errors.New("setting state: the key is empty")
	}
	if err := e.usable(); err != nil {
		return err
	}
	if err := e.rt.CheckPayload(e.fn.Name, "state "+strconv.Quote(key), len(value)); err != nil {
		return NonRetryable(fmt.Errorf("setting state of %s: %w", e.id, err))
	}
	if err := e.rt.backend.StateSet(ctx, e.id, key, value); err != nil {
		return fmt.Errorf("setting state %q of %s: %w", key, e.id, err)
	}
	return nil
}

// usable returns the reason the activation may no longer write, or nil.
func (e *execution) usable() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// rootID is the ID of the root of e's tree.
func (e *execution) rootID() string {
	if e.rec.RootID != "" {
		return e.rec.RootID
	}
	return e.id
}
