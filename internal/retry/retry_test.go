package retry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNormalizeDefaults(t *testing.T) {
	t.Parallel()
	p := Normalize(Policy{})
	require.Equal(t, Policy{MaxAttempts: 3, InitialDelay: time.Second, MaxDelay: time.Minute, Multiplier: 2, Jitter: 0.1}, p)
	require.Zero(t, Normalize(Policy{Jitter: -1}).Jitter)
}

func TestDelayWithinBounds(t *testing.T) {
	t.Parallel()
	p := Normalize(Policy{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 3, Jitter: 0.2})
	require.Equal(t, 100*time.Millisecond, p.Base(1))
	require.Equal(t, 300*time.Millisecond, p.Base(2))
	require.Equal(t, 900*time.Millisecond, p.Base(3))
	require.Equal(t, time.Second, p.Base(4), "capped at MaxDelay")
	for attempt := 1; attempt <= 5; attempt++ {
		lo, hi := p.Bounds(attempt)
		for range 200 {
			d := p.Delay(attempt)
			require.GreaterOrEqual(t, d, lo)
			require.LessOrEqual(t, d, hi)
		}
	}
}

func TestHugeAttemptIsCapped(t *testing.T) {
	t.Parallel()
	p := Normalize(Policy{})
	require.Equal(t, time.Minute, p.Base(10_000))
}
