package actors

import (
	"context"
	"log/slog"
	"sort"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Concurrency limits (WithMaxConcurrent). Each limited function has one
// router actor on a node, spawned on first use under the node's "routers"
// actor. Executions of the function ask it for a permit before their body
// runs; it serves them in the order they asked. The permits themselves are
// rows in the database (persistence.Coordination), taken with a lease of the
// node's, so the limit holds across every node of the cluster, and the
// permits of a node that dies come back when its lease runs out. A router
// that is refused (the cluster is at the limit) tries again when a permit is
// given back on this node, and every retryInterval for those given back
// elsewhere.

// permitRetry is how often a router retries while the cluster is at the limit.
const permitRetry = 25 * time.Millisecond

type permitRequest struct {
	holder   string
	limit    int
	priority int           // higher first
	created  time.Time     // then older first
	grant    chan struct{} // closed once the permit is held
	canceled bool          // the requester gave up (owned by the router)
}

// before reports whether q is served before o.
func (q *permitRequest) before(o *permitRequest) bool {
	if q.priority != o.priority {
		return q.priority > o.priority
	}
	return q.created.Before(o.created)
}

type permitRelease struct{ holder string }

type permitCancel struct{ holder string }

// permitResult is the outcome of one AcquirePermit attempt, back from the
// goroutine that made it.
type permitResult struct {
	holder string
	ok     bool
	err    error
}

type permitRetryTick struct{}

// router is the actor that queues the permit requests of one function.
type router struct {
	rt      *Runtime
	key     string
	queue   []*permitRequest
	trying  bool
	pending bool // a retry tick is scheduled
}

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *permitRequest:
		// Keep the queue in serving order: priority, then age. The head
		// may have an attempt in flight: it keeps its place.
		i := len(r.queue)
		for i > 0 && (i > 1 || !r.trying) && m.before(r.queue[i-1]) {
			i--
		}
		r.queue = append(r.queue, nil)
		copy(r.queue[i+1:], r.queue[i:])
		r.queue[i] = m
		r.try(ctx)
	case *permitCancel:
		for i, q := range r.queue {
			if q.holder != m.holder {
				continue
			}
			if i == 0 && r.trying {
				q.canceled = true // its attempt is in flight: settle it when it ends
			} else {
				r.queue = append(r.queue[:i], r.queue[i+1:]...)
			}
			break
		}
	case *permitRelease:
		rt, key, holder := r.rt, r.key, m.holder
		self := ctx.Self()
		go func() {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := rt.backend.ReleasePermit(c, key, holder); err != nil {
				// The permit's lease runs out by itself; only latency is lost.
				rt.log.Warn("giving back a permit", slog.String("function", key), slog.String("execution_id", holder), slog.Any("error", err))
			}
			rt.system.Root.Send(self, &permitRetryTick{})
		}()
	case *permitResult:
		r.trying = false
		if len(r.queue) == 0 || r.queue[0].holder != m.holder {
			// The head gave up meanwhile: give the permit back if taken.
			if m.ok {
				ctx.Send(ctx.Self(), &permitRelease{holder: m.holder})
			}
			r.try(ctx)
			return
		}
		if m.err != nil && r.rt.baseCtx.Err() == nil {
			r.rt.log.Warn("taking a permit", slog.String("function", r.key), slog.Any("error", m.err))
		}
		if head := r.queue[0]; head.canceled {
			r.queue = r.queue[1:]
			if m.ok {
				ctx.Send(ctx.Self(), &permitRelease{holder: m.holder})
			}
			r.try(ctx)
			return
		}
		if m.ok {
			close(r.queue[0].grant)
			r.queue = r.queue[1:]
			r.try(ctx)
			return
		}
		// Refused: the head keeps no privilege over requests that came in
		// during its attempt and rank before it.
		sort.SliceStable(r.queue, func(i, j int) bool { return r.queue[i].before(r.queue[j]) })
		r.scheduleRetry(ctx)
	case *permitRetryTick:
		r.pending = false
		r.try(ctx)
	}
}

// try asks the database for a permit for the head of the queue, off the
// actor's goroutine.
func (r *router) try(ctx actor.Context) {
	if r.trying || len(r.queue) == 0 || r.rt.baseCtx.Err() != nil {
		return
	}
	r.trying = true
	head := r.queue[0]
	rt, key, self := r.rt, r.key, ctx.Self()
	go func() {
		c, cancel := context.WithTimeout(rt.baseCtx, 10*time.Second)
		defer cancel()
		ok, err := rt.backend.AcquirePermit(c, key, head.holder, rt.cfg.NodeID, head.limit, rt.cfg.LeaseTTL)
		rt.system.Root.Send(self, &permitResult{holder: head.holder, ok: ok, err: err})
	}()
}

func (r *router) scheduleRetry(ctx actor.Context) {
	if r.pending {
		return
	}
	r.pending = true
	rt, self := r.rt, ctx.Self()
	time.AfterFunc(permitRetry, func() { rt.system.Root.Send(self, &permitRetryTick{}) })
}

// routers is the parent of the router actors; it spawns one per function
// on first use.
type routers struct {
	rt  *Runtime
	pid map[string]*actor.PID
}

type routeTo struct {
	key string
	msg any
}

func (r *routers) Receive(ctx actor.Context) {
	m, ok := ctx.Message().(*routeTo)
	if !ok {
		return
	}
	pid := r.pid[m.key]
	if pid == nil {
		props := actor.PropsFromProducer(func() actor.Actor { return &router{rt: r.rt, key: m.key} })
		var err error
		if pid, err = ctx.SpawnNamed(props, "fn-"+m.key); err != nil {
			r.rt.log.Error("spawning a router", slog.String("function", m.key), slog.Any("error", err))
			return
		}
		r.pid[m.key] = pid
	}
	ctx.Send(pid, m.msg)
}

// acquirePermit blocks until holder holds one of limit permits of key, or
// ctx ends. Requests are served by priority, then oldest execution first.
func (rt *Runtime) acquirePermit(ctx context.Context, key, holder string, limit, priority int, created time.Time) error {
	req := &permitRequest{holder: holder, limit: limit, priority: priority, created: created, grant: make(chan struct{})}
	rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: req})
	select {
	case <-req.grant:
		return nil
	case <-ctx.Done():
		rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: &permitCancel{holder: holder}})
		select {
		case <-req.grant: // granted just before the cancel arrived
			rt.releasePermit(key, holder)
		default: // the router drops the request, or gives back a late grant
		}
		return ctxError(ctx)
	}
}

// releasePermit gives back holder's permit of key.
func (rt *Runtime) releasePermit(key, holder string) {
	rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: &permitRelease{holder: holder}})
}
