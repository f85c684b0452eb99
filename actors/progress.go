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

// fromCache returns a cached result of the function when there is one (the
// caller checks that the execution has made no progress of its own), and
// reports whether it did. A hit is marked on the execution; a miss removes
// a mark left by an earlier activation that found the entry.
func (h *handle) fromCache(ctx context.Context) (bodyResult, bool) {
	rt, fn := h.rt, h.fn
	hit, err := rt.backend.CacheGet(ctx, fn.CacheKey(h.rec.Input))
	if err != nil {
		if !errors.Is(err, persistence.ErrNotFound) && ctx.Err() == nil {
			rt.log.Warn("reading the result cache; running the function", slog.String("execution_id", h.id),
				slog.String("function", fn.Name), slog.Any("error", err))
		}
		if !h.unwritten && !h.fresh {
			if err := rt.backend.CacheMarkHit(ctx, h.id, ""); err != nil {
				rt.log.Warn("clearing a cache mark", slog.String("execution_id", h.id), slog.Any("error", err))
			}
		}
		return bodyResult{}, false
	}
	if hit.ExecutionID == h.id {
		// Its own result, cached just before a crash kept its outcome from
		// being written: it is no cache hit, only the outcome to record.
		return bodyResult{out: hit.Output, own: true}, true
	}
	if err := rt.backend.CacheMarkHit(ctx, h.id, hit.ExecutionID); err != nil {
		rt.log.Warn("marking a cached result", slog.String("execution_id", h.id), slog.Any("error", err))
		return bodyResult{}, false
	}
	rt.log.Debug("result taken from the cache", slog.String("execution_id", h.id), slog.String("function", fn.Name),
		slog.String("cached_from", hit.ExecutionID))
	return bodyResult{out: hit.Output, cachedFrom: hit.ExecutionID}, true
}

// CounterAdd adds delta to counter name of the execution tree ctx's
// execution belongs to. Each call of an activation takes the next number,
// and the pair (execution, number) is the addition's key, applied once: a
// replay, which issues the same calls in the same order, adds nothing
// again. Outside an execution (a direct call, in unit tests) it does
// nothing.
func CounterAdd(ctx context.Context, name string, delta float64) error {
	h := fromContext(ctx)
	if h == nil {
		return nil
	}
	if name == "" {
		return errors.New("adding to a counter: the counter needs a name")
	}
	if err := h.usable(); err != nil {
		return err
	}
	seq := h.progressSeq.Add(1)
	op := h.id + "/" + strconv.FormatInt(seq, 10)
	if _, err := h.rt.backend.CounterAdd(ctx, h.rootID(), name, op, delta); err != nil {
		return fmt.Errorf("adding %v to counter %q of %s: %w", delta, name, h.id, err)
	}
	return nil
}

// SetState sets key of ctx's execution's state to value, a JSON document.
// Outside an execution (a direct call, in unit tests) it does nothing.
func SetState(ctx context.Context, key string, value []byte) error {
	h := fromContext(ctx)
	if h == nil {
		return nil
	}
	if key == "" {
		return errors.New("setting state: the key is empty")
	}
	if err := h.usable(); err != nil {
		return err
	}
	if err := h.rt.CheckPayload(h.fn.Name, "state "+strconv.Quote(key), len(value)); err != nil {
		return NonRetryable(fmt.Errorf("setting state of %s: %w", h.id, err))
	}
	if err := h.rt.backend.StateSet(ctx, h.id, key, value); err != nil {
		return fmt.Errorf("setting state %q of %s: %w", key, h.id, err)
	}
	return nil
}

// rootID is the ID of the root of e's tree.
func (h *handle) rootID() string {
	if h.rec.RootID != "" {
		return h.rec.RootID
	}
	return h.id
}
