package persistence

import (
	"context"
	"time"
)

// CacheEntry is a completed result kept for reuse by WithCache: the output
// of the execution ExecutionID, found again under Key until ExpiresAt.
type CacheEntry struct {
	// Key identifies the function, its version and its input.
	Key         string
	Function    string
	ExecutionID string
	Output      []byte
	// ExpiresAt is set by the backend (its clock plus the TTL given to
	// CachePut) and returned by CacheGet.
	ExpiresAt time.Time
}

// ExecutionProgress is what an execution reports while it runs: its tree's
// counters (shared by a root and all its descendants), its own state, and,
// for an execution whose result came from the cache, the execution that
// made it.
type ExecutionProgress struct {
	Counters   map[string]float64
	State      map[string][]byte
	CachedFrom string
}

// Progress is the part of Backend behind result caching and progress
// reporting (counters and state). Every Backend implements it. Its writes
// are not fenced by a lease: they are idempotent or keyed so that a replay
// repeats them harmlessly.
type Progress interface {
	// CacheGet returns the entry stored under key, or ErrNotFound when there
	// is none or it has expired by the backend's clock.
	CacheGet(ctx context.Context, key string) (*CacheEntry, error)
	// CachePut stores e under e.Key until ttl from the backend's clock,
	// replacing any entry of that key, and deletes some expired entries.
	// ttl must be positive.
	CachePut(ctx context.Context, e *CacheEntry, ttl time.Duration) error
	// CacheMarkHit records that execution executionID took its result from
	// execution sourceID's cache entry; an empty sourceID removes the mark
	// (the execution ran after all).
	CacheMarkHit(ctx context.Context, executionID, sourceID string) error
	// CounterAdd adds delta to counter name of the execution tree rootID,
	// once per opKey: an opKey already applied changes nothing and returns
	// false. A counter starts at 0. opKey is unique across all trees.
	CounterAdd(ctx context.Context, rootID, name, opKey string, delta float64) (bool, error)
	// StateSet sets key of execution executionID's state to value, a JSON
	// document, replacing the previous value.
	StateSet(ctx context.Context, executionID, key string, value []byte) error
	// ExecutionProgress returns the counters of tree rootID, the state of
	// execution executionID and its cache mark. Empty maps when there is
	// nothing; never ErrNotFound.
	ExecutionProgress(ctx context.Context, executionID, rootID string) (*ExecutionProgress, error)
}
