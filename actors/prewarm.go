package actors

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Building a protoactor ActorSystem takes 10-15 ms (it allocates its process
// registry up front), a third of a cold start. Prewarm builds one in the
// background as soon as a program registers its first durable function, so
// that the executor it starts later finds it ready. The system logs through
// a handler that New points at the runtime's logger when it takes it.

var prewarmed struct {
	once    sync.Once
	mu      sync.Mutex
	ready   chan struct{}
	system  *actor.ActorSystem
	handler *swapHandler
	taken   bool
}

// Prewarm starts building an actor system in the background, once per
// process. Package sdk calls it when the first durable function registers.
func Prewarm() {
	prewarmed.once.Do(func() {
		prewarmed.ready = make(chan struct{})
		h := &swapHandler{}
		h.set(slog.DiscardHandler)
		prewarmed.handler = h
		go func() {
			defer close(prewarmed.ready)
			sys := actor.NewActorSystem(
				actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(h) }),
				actor.WithDeadLetterRequestLogging(false),
			)
			prewarmed.mu.Lock()
			prewarmed.system = sys
			prewarmed.mu.Unlock()
		}()
	})
}

// newActorSystem returns the prewarmed actor system, waiting for it if it is
// being built, or builds a new one; either logs to log.
func newActorSystem(log *slog.Logger) *actor.ActorSystem {
	prewarmed.mu.Lock()
	started := prewarmed.ready != nil && !prewarmed.taken
	if started {
		prewarmed.taken = true
	}
	prewarmed.mu.Unlock()
	if started {
		<-prewarmed.ready
		prewarmed.handler.set(log.Handler())
		return prewarmed.system
	}
	return actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }),
		actor.WithDeadLetterRequestLogging(false),
	)
}

// swapHandler is a slog.Handler whose target can be replaced.
type swapHandler struct {
	target atomic.Pointer[slog.Handler]
	attrs  []slog.Attr
	group  string
}

func (h *swapHandler) set(t slog.Handler) { h.target.Store(&t) }

func (h *swapHandler) current() slog.Handler {
	t := *h.target.Load()
	if len(h.attrs) > 0 {
		t = t.WithAttrs(h.attrs)
	}
	if h.group != "" {
		t = t.WithGroup(h.group)
	}
	return t
}

func (h *swapHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.current().Enabled(ctx, l)
}

func (h *swapHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *swapHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := &swapHandler{attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...), group: h.group}
	c.target.Store(h.target.Load())
	return &derived{parent: h, self: c}
}

func (h *swapHandler) WithGroup(name string) slog.Handler {
	c := &swapHandler{attrs: h.attrs, group: name}
	c.target.Store(h.target.Load())
	return &derived{parent: h, self: c}
}

// derived follows its parent's target when it is swapped later.
type derived struct {
	parent *swapHandler
	self   *swapHandler
}

func (d *derived) sync() *swapHandler {
	d.self.target.Store(d.parent.target.Load())
	return d.self
}

func (d *derived) Enabled(ctx context.Context, l slog.Level) bool  { return d.sync().Enabled(ctx, l) }
func (d *derived) Handle(ctx context.Context, r slog.Record) error { return d.sync().Handle(ctx, r) }
func (d *derived) WithAttrs(attrs []slog.Attr) slog.Handler        { return d.sync().WithAttrs(attrs) }
func (d *derived) WithGroup(name string) slog.Handler              { return d.sync().WithGroup(name) }
