// Package retry computes the backoff between attempts of a durable function.
package retry

import (
	"math"
	"math/rand/v2"
	"time"
)

// Defaults applied to zero fields of a Policy.
const (
	DefaultMaxAttempts  = 3
	DefaultInitialDelay = time.Second
	DefaultMaxDelay     = 60 * time.Second
	DefaultMultiplier   = 2.0
	DefaultJitter       = 0.1
)

// Policy is a retry policy with every field set.
type Policy struct {
	MaxAttempts  int
	InitialDelay time.Duration
	MaxDelay     time.Duration
	Multiplier   float64
	Jitter       float64
}

// Normalize returns p with zero or negative fields replaced by the defaults.
// A negative Jitter means none; Jitter is clamped to [0, 1].
func Normalize(p Policy) Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = DefaultJitter
	case p.Jitter < 0: // an explicit "no jitter"
		p.Jitter = 0
	}
	if p.Jitter > 1 {
		p.Jitter = 1
	}
	return p
}

// Base returns the delay before attempt+1 without jitter, after attempt
// attempts have failed: min(MaxDelay, InitialDelay × Multiplier^(attempt−1)).
func (p Policy) Base(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := float64(p.InitialDelay) * math.Pow(p.Multiplier, float64(attempt-1))
	if d > float64(p.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return p.MaxDelay
	}
	return time.Duration(d)
}

// Delay returns Base(attempt) spread by ±Jitter (a fraction of it), never
// above MaxDelay and never negative.
func (p Policy) Delay(attempt int) time.Duration {
	base := p.Base(attempt)
	if p.Jitter == 0 {
		return base
	}
	spread := float64(base) * p.Jitter
	d := float64(base) + (rand.Float64()*2-1)*spread
	if d < 0 {
		d = 0
	}
	if d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	return time.Duration(d)
}

// Bounds returns the smallest and largest delay Delay(attempt) can return.
func (p Policy) Bounds(attempt int) (lo, hi time.Duration) {
	base := float64(p.Base(attempt))
	lo = time.Duration(math.Max(0, base*(1-p.Jitter)))
	hi = time.Duration(math.Min(float64(p.MaxDelay), base*(1+p.Jitter)))
	return lo, hi
}
