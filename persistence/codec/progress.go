package codec

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// CachePut stores e with its output encoded.
func (b *Backend) CachePut(ctx context.Context, e *persistence.CacheEntry, ttl time.Duration) error {
	cp := *e
	var err error
	if cp.Output, err = b.c.Encode(e.Output); err != nil {
		return fmt.Errorf("encoding cached output of %s: %w", e.ExecutionID, err)
	}
	return b.Backend.CachePut(ctx, &cp, ttl)
}

// CacheGet returns the entry of key with its output decoded.
func (b *Backend) CacheGet(ctx context.Context, key string) (*persistence.CacheEntry, error) {
	e, err := b.Backend.CacheGet(ctx, key)
	if err != nil {
		return nil, err
	}
	if e.Output, err = b.c.Decode(e.Output); err != nil {
		return nil, fmt.Errorf("decoding cached output of %s: %w", e.ExecutionID, err)
	}
	return e, nil
}

// StateSet stores value encoded.
func (b *Backend) StateSet(ctx context.Context, executionID, key string, value []byte) error {
	enc, err := b.c.Encode(value)
	if err != nil {
		return fmt.Errorf("encoding state %q of %s: %w", key, executionID, err)
	}
	return b.Backend.StateSet(ctx, executionID, key, enc)
}

// ExecutionProgress returns the progress of executionID with its state
// values decoded.
func (b *Backend) ExecutionProgress(ctx context.Context, executionID, rootID string) (*persistence.ExecutionProgress, error) {
	p, err := b.Backend.ExecutionProgress(ctx, executionID, rootID)
	if err != nil {
		return nil, err
	}
	for k, v := range p.State {
		if p.State[k], err = b.c.Decode(v); err != nil {
			return nil, fmt.Errorf("decoding state %q of %s: %w", k, executionID, err)
		}
	}
	return p, nil
}
