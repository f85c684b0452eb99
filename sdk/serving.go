package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/persistence"
)

// opsOptions are the executor options of operations: retention, the
// functions a node runs and what it tells the node registry.
type opsOptions struct {
	retention time.Duration
	// only, when not nil, restricts the functions the node runs.
	only      map[string]bool
	addresses map[string]string
	version   string
}

// WithRetention makes a serving executor delete, every so often (a tenth
// of d, between a second and an hour), the executions that finished more
// than d ago, as Cleanup does, in small batches. Every serving node may
// sweep: the batches are idempotent. d must be positive.
func WithRetention(d time.Duration) ExecutorOption {
	return func(o *executorOptions) { o.ops.retention = d }
}

// WithFunctions restricts the functions this executor's node runs to those
// named (which must be registered in the process): it claims executions of
// those only, and the node registry says so. By default a node runs every
// function registered in its process. Executions of other functions stay
// pending until a node that runs them claims them.
func WithFunctions(names ...string) ExecutorOption {
	return func(o *executorOptions) {
		o.ops.only = make(map[string]bool, len(names))
		for _, n := range names {
			o.ops.only[n] = true
		}
	}
}

// WithNodeAddress records an endpoint of this node (kind such as "admin",
// and host:port) in the node registry, for Members and `stent members`.
// The cluster's "gossip" and "remote" addresses are recorded without it.
func WithNodeAddress(kind, addr string) ExecutorOption {
	return func(o *executorOptions) {
		if o.ops.addresses == nil {
			o.ops.addresses = map[string]string{}
		}
		o.ops.addresses[kind] = addr
	}
}

// WithNodeVersion records the version of the node's binary in the node
// registry.
func WithNodeVersion(v string) ExecutorOption {
	return func(o *executorOptions) { o.ops.version = v }
}

// runs reports whether the node runs function name.
func (o *opsOptions) runs(name string) bool {
	if _, ok := lookup(name); !ok {
		return false
	}
	return o.only == nil || o.only[name]
}

// lookup finds a function the node runs.
func (o *opsOptions) lookup(name string) (*actors.Function, bool) {
	if o.only != nil && !o.only[name] {
		return nil, false
	}
	return lookup(name)
}

// validate checks the options of operations.
func (o *opsOptions) validate() error {
	if o.retention < 0 {
		return fmt.Errorf("sdk: WithRetention(%s): the retention must be positive, such as 720h", o.retention)
	}
	for n := range o.only {
		if _, ok := lookup(n); !ok {
			return fmt.Errorf("sdk: WithFunctions names %q, which is not registered in this process (sdk.Durable)", n)
		}
	}
	return nil
}

// functionNames returns the sorted names of the functions the node runs.
func (o *opsOptions) functionNames() []string {
	names := registeredNames()
	if o.only == nil {
		return names
	}
	return slices.DeleteFunc(names, func(n string) bool { return !o.only[n] })
}

// names caches the sorted names of the registry, rebuilt when it grows
// (functions are never unregistered).
var names struct {
	sync.Mutex
	list []string
}

func registeredNames() []string {
	registry.RLock()
	n := len(registry.fns)
	registry.RUnlock()
	names.Lock()
	defer names.Unlock()
	if len(names.list) != n {
		registry.RLock()
		names.list = slices.Sorted(maps.Keys(registry.fns))
		registry.RUnlock()
	}
	return slices.Clone(names.list)
}

// background is the state of a serving executor's own goroutines: the node
// registry heartbeat and the retention sweep.
type background struct {
	mu         sync.Mutex
	stop       context.CancelFunc
	done       sync.WaitGroup
	registered bool
	startedAt  time.Time
}

// startBackground starts the heartbeat and, with WithRetention, the sweep.
func (e *Executor) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	e.bg.mu.Lock()
	e.bg.stop, e.bg.startedAt = cancel, time.Now()
	e.bg.mu.Unlock()
	e.bg.done.Add(1)
	go func() {
		defer e.bg.done.Done()
		e.heartbeat(ctx)
	}()
	if d := e.opts.ops.retention; d > 0 {
		e.bg.done.Add(1)
		go func() {
			defer e.bg.done.Done()
			e.sweep(ctx, d)
		}()
	}
}

// stopBackground stops the goroutines of startBackground and waits for them.
func (e *Executor) stopBackground() {
	e.bg.mu.Lock()
	stop := e.bg.stop
	e.bg.stop = nil
	e.bg.mu.Unlock()
	if stop != nil {
		stop()
		e.bg.done.Wait()
	}
}

// unregisterNode removes the node from the registry after a clean stop.
func (e *Executor) unregisterNode() error {
	e.bg.mu.Lock()
	registered := e.bg.registered
	e.bg.registered = false
	e.bg.mu.Unlock()
	if !registered {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.backend.DeleteNode(ctx, e.NodeID()); err != nil && !errors.Is(err, persistence.ErrClosed) {
		return err
	}
	return nil
}

// heartbeat records the node in the registry every third of its lease.
func (e *Executor) heartbeat(ctx context.Context) {
	ttl := e.rt.LeaseTTL()
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	for {
		if err := e.registerNode(ctx, ttl); err != nil && ctx.Err() == nil {
			e.opts.logger.Warn("recording the node in the registry", slog.String("node", e.NodeID()), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// registerNode writes the node's registry row.
func (e *Executor) registerNode(ctx context.Context, ttl time.Duration) error {
	addrs := map[string]string{}
	maps.Copy(addrs, e.rt.Addresses())
	maps.Copy(addrs, e.opts.ops.addresses)
	queues := slices.Clone(e.opts.queues)
	sort.Strings(queues)
	e.bg.mu.Lock()
	started := e.bg.startedAt
	e.bg.mu.Unlock()
	n := &persistence.Node{ID: e.NodeID(), Addresses: addrs, Functions: e.opts.ops.functionNames(), Queues: queues,
		Tags: slices.Clone(e.opts.tags), Version: e.opts.ops.version, StartedAt: started}
	if err := e.backend.UpsertNode(ctx, n, ttl); err != nil {
		return err
	}
	e.bg.mu.Lock()
	e.bg.registered = true
	e.bg.mu.Unlock()
	return nil
}

// sweep runs Cleanup every tenth of the retention (between a second and an
// hour).
func (e *Executor) sweep(ctx context.Context, retention time.Duration) {
	every := min(max(retention/10, time.Second), time.Hour)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := e.Cleanup(ctx, retention)
		switch {
		case err != nil && ctx.Err() == nil:
			e.opts.logger.Warn("deleting finished executions", slog.String("node", e.NodeID()), slog.Any("error", err))
		case n > 0:
			e.opts.logger.Info("deleted finished executions", slog.String("node", e.NodeID()), slog.Int("executions", n),
				slog.String("retention", retention.String()), slog.String("duration", time.Since(start).String()))
		}
	}
}
