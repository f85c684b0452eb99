package testutil

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { WrapTestMain(m) }

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.failed = fmt.Sprintf(format, args...) }

func TestCheckFor(t *testing.T) {
	t.Parallel()

	t.Run("SucceedsAfterRetries", func(t *testing.T) {
		t.Parallel()
		calls := 0
		CheckFor(t, time.Second, time.Millisecond, func() error {
			calls++
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		require.Equal(t, 3, calls)
	})

	t.Run("FailsWithLastError", func(t *testing.T) {
		t.Parallel()
		tb := &fakeTB{TB: t}
		calls := 0
		CheckFor(tb, 20*time.Millisecond, time.Millisecond, func() error {
			calls++
			return fmt.Errorf("attempt %d", calls)
		})
		require.Contains(t, tb.failed, "condition not met after 20ms")
		require.Contains(t, tb.failed, fmt.Sprintf("attempt %d", calls))
	})
}
