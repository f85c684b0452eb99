package sdk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/sdk"
)

// A body that expects wrong-typed signals skips them: each is consumed
// with an error matching ErrBadSignalPayload, and the next wait gets the
// next signal.
var skipBad = sdk.Durable("test_signal_skip_bad", func(ctx context.Context, _ int) (int, error) {
	skipped := 0
	for {
		v, err := sdk.WaitForSignal[int](ctx, "n")
		if errors.Is(err, sdk.ErrBadSignalPayload) {
			skipped++
			continue
		}
		if err != nil {
			return 0, err
		}
		return v*10 + skipped, nil
	}
})

func TestWrongTypedSignalIsConsumedOnce(t *testing.T) {
	t.Parallel()
	ctx, ex := worker(t)
	h, err := skipBad.Start(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "n", "not a number"))
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "n", map[string]int{"x": 1}))
	require.NoError(t, ex.SendSignal(ctx, h.ID(), "n", 4))
	got, err := h.Result(ctx)
	require.NoError(t, err)
	require.Equal(t, 42, got, "two bad signals skipped, then 4")
}
