package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
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

// A leave notice handled after memberlist reported the member gone (the
// notice comes over TCP, the leave broadcast by gossip, in either order on
// a loaded machine) still makes it a leave; a member gone with no notice
// within goneGrace is logged as failed.
func TestLateLeaveNoticeIsALeave(t *testing.T) {
	t.Parallel()
	h := &levelCounter{}
	m := &Membership{logger: slog.New(h), leaving: make(map[string]time.Time)}
	m.reportGone("node-x")
	m.reportGone("node-y")
	m.noteLeaving(append(bytes.Clone(leaveNotice), "node-x"...))
	testutil.CheckFor(t, 5*goneGrace, 10*time.Millisecond, func() error {
		if warned, infos := h.snapshot(); len(warned) == 0 || len(infos) == 0 {
			return fmt.Errorf("logged %q and %q", warned, infos)
		}
		return nil
	})
	m.reporting.Wait()
	warned, infos := h.snapshot()
	require.Equal(t, []string{"cluster member failed member=node-y"}, warned)
	require.Equal(t, []string{"cluster member left"}, infos)
	require.Empty(t, m.leaving, "the notice is used")
}
