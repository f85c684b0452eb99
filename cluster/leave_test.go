package cluster

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// levelCounter is a slog handler that records the messages at WARN and
// above, and the info messages, for assertions.
type levelCounter struct {
	mu     sync.Mutex
	warned []string
	infos  []string
}

func (h *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *levelCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *levelCounter) WithGroup(string) slog.Handler            { return h }
func (h *levelCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	text := r.Message
	r.Attrs(func(a slog.Attr) bool {
		text += " " + a.Key + "=" + a.Value.String()
		return true
	})
	switch {
	case r.Level >= slog.LevelWarn:
		h.warned = append(h.warned, text)
	case r.Level == slog.LevelInfo:
		h.infos = append(h.infos, r.Message)
	}
	return nil
}

func (h *levelCounter) snapshot() (warned, infos []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.warned...), append([]string(nil), h.infos...)
}

// A clean stop of one member, then of every member at once, logs no warning
// or error and returns no error; the others log the leave, not a failure.
func TestCleanLeaveIsQuiet(t *testing.T) {
	t.Parallel()
	h := &levelCounter{}
	a, b, c := threeNodes(t, func(cfg *Config) { cfg.Logger = slog.New(h) })

	require.NoError(t, b.Leave(context.Background()))
	waitForView(t, a, 5*time.Second, "node-a", "node-c")
	waitForView(t, c, 5*time.Second, "node-a", "node-c")

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*Membership{a, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Leave(context.Background())
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	warned, infos := h.snapshot()
	require.Empty(t, warned, "a clean stop warns of nothing")
	require.Contains(t, infos, "cluster member joined")
	require.Contains(t, infos, "cluster member left")
}
