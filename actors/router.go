package actors

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/messages"
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
//
// In a cluster, the router of a function is the one on the member that
// placement gives for "permit:<function>" among the members serving the
// function's queue, so that all nodes queue in one place: a node asks it
// with PermitRequest, and it answers PermitGranted once it has taken the
// permit in the database for that node (whose lease renewals keep it). A
// node gives a permit back in the database itself, then tells the router
// (PermitReleased). Requests not granted are sent again every
// permitResend, to the member placement gives then: a router lost with its
// node, or one that moved with a membership change, is found again. Two
// routers for a moment cost order, never the limit: the permits are rows.

// permitRetry is how often a router retries while the cluster is at the limit.
const permitRetry = 25 * time.Millisecond

// permitResend is how often a node repeats a permit request to the router
// of another member while it is not granted.
const permitResend = 2 * time.Second

type permitRequest struct {
	holder   string
	limit    int
	priority int           // higher first
	created  time.Time     // then older first
	grant    chan struct{} // closed once the permit is held (a request of this node)
	node     string        // else the member that asked (PermitRequest)
	canceled bool          // the requester gave up (owned by the router)
	// replacedBy is the request of a newer activation of the holder on
	// this node, made while this one's attempt was in flight: the permit
	// that attempt takes (this node's either way) goes to it.
	replacedBy *permitRequest
}

// before reports whether q is served before o.
func (q *permitRequest) before(o *permitRequest) bool {
	if q.priority != o.priority {
		return q.priority > o.priority
	}
	return q.created.Before(o.created)
}

// permitRelease gives back the permit of holder held by owner.
type permitRelease struct{ holder, owner string }

// permitCancel withdraws holder's request. With grant set, only the
// request with that grant channel: a new activation of the same execution
// on this node (its lease claimed again) may have taken over the request
// of the one being stopped, whose late cancel must not withdraw it.
type permitCancel struct {
	holder string
	grant  chan struct{}
}

// permitResult is the outcome of one AcquirePermit attempt, back from the
// goroutine that made it.
type permitResult struct {
	req *permitRequest
	ok  bool
	err error
}

type permitRetryTick struct{}

// A permitResult or permitRetryTick can reach a router that has stopped
// (its node stopping): the attempt or the release that sends it ran off the
// router's goroutine. Dropping it is right, and protoactor must not log it:
// logging a dead letter starts its throttle, a goroutine that outlives the
// actor system by a second, which nothing can stop.
func (*permitResult) IgnoreDeadLetterLogging()    {}
func (*permitRetryTick) IgnoreDeadLetterLogging() {}

var (
	_ actor.IgnoreDeadLetterLogging = (*permitResult)(nil)
	_ actor.IgnoreDeadLetterLogging = (*permitRetryTick)(nil)
)

// router is the actor that queues the permit requests of one function.
type router struct {
	rt      *Runtime
	key     string
	queue   []*permitRequest
	trying  bool
	pending bool        // a retry tick is scheduled
	retry   *time.Timer // sends it; stopped when the router stops
	// requests counts the permit requests received.
	requests int
}

// permitQueueQuery asks a router what it holds: the holders it queues, in
// serving order, and how many requests it has received. Tests poll it to
// order their steps on the router's state rather than on sleeps.
type permitQueueQuery struct {
	reply chan permitQueueState
}

type permitQueueState struct {
	holders  []string
	requests int
}

func (r *router) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *permitQueueQuery:
		st := permitQueueState{requests: r.requests}
		for _, q := range r.queue {
			st.holders = append(st.holders, q.holder)
		}
		m.reply <- st
	case *permitRequest:
		r.requests++
		for i, q := range r.queue {
			if q.holder != m.holder {
				continue
			}
			// A repeated request keeps its place. One from another
			// member (the holder moved there after a takeover) replaces
			// the old one, unless that one's attempt is in flight: it
			// takes the permit for the old member, which gives it back,
			// and the new member asks again. One from a newer activation
			// on this node (another grant channel) replaces it too; if
			// the attempt is in flight, the permit it takes goes to the
			// newer one.
			switch {
			case i > 0 || !r.trying:
				q.node, q.grant, q.replacedBy = m.node, m.grant, nil
			case m.grant != nil && q.grant != nil && m.grant != q.grant:
				q.replacedBy = m
			}
			q.canceled = false
			return
		}
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
			if m.grant != nil && q.replacedBy != nil && q.replacedBy.grant == m.grant {
				q.replacedBy = nil // the newer activation gave up
				break
			}
			if m.grant != nil && q.grant != m.grant {
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
		rt, key, self := r.rt, r.key, ctx.Self()
		go func() {
			rt.dropPermit(key, m.holder, m.owner)
			rt.system.Root.Send(self, &permitRetryTick{})
		}()
	case *permitResult:
		r.trying = false
		if len(r.queue) > 0 && r.queue[0] == m.req && m.req.replacedBy != nil {
			head := m.req
			head.node, head.grant, head.canceled = head.replacedBy.node, head.replacedBy.grant, false
			head.replacedBy = nil
		}
		if len(r.queue) == 0 || r.queue[0] != m.req {
			// The head gave up meanwhile: give the permit back if taken.
			if m.ok {
				r.giveBack(ctx, m.req)
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
				r.giveBack(ctx, head)
			}
			r.try(ctx)
			return
		}
		if m.ok {
			r.granted(r.queue[0])
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
	case *actor.Stopping:
		if r.retry != nil {
			r.retry.Stop()
		}
	}
}

// giveBack undoes a permit taken for q after q gave up. A permit of this
// node's own request goes back at once. One taken for another member is
// handed to it all the same: the permit row is the holder's, and only that
// member knows whether the holder runs there now under it (asked again
// after giving up); it gives back one it does not use.
func (r *router) giveBack(ctx actor.Context, q *permitRequest) {
	if q.grant != nil {
		ctx.Send(ctx.Self(), &permitRelease{holder: q.holder, owner: r.rt.cfg.NodeID})
		return
	}
	r.granted(q)
}

// granted hands a permit taken for q to its requester: this node's waiting
// execution, or the member that asked.
func (r *router) granted(q *permitRequest) {
	if q.grant != nil {
		close(q.grant)
		return
	}
	rt := r.rt
	if mem, ok := rt.aliveMember(q.node); ok {
		rt.sendTo(mem, &messages.PermitGranted{Function: r.key, Holder: q.holder})
		return
	}
	// The member is gone: its permit is of no use to anyone.
	go rt.dropPermit(r.key, q.holder, q.node)
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
		owner := rt.cfg.NodeID
		if head.node != "" {
			owner = head.node // its lease renewals keep the permit
		}
		ok, err := rt.backend.AcquirePermit(c, key, head.holder, owner, head.limit, rt.cfg.LeaseTTL)
		rt.system.Root.Send(self, &permitResult{req: head, ok: ok, err: err})
	}()
}

func (r *router) scheduleRetry(ctx actor.Context) {
	if r.pending {
		return
	}
	r.pending = true
	rt, self := r.rt, ctx.Self()
	r.retry = time.AfterFunc(permitRetry, func() { rt.system.Root.Send(self, &permitRetryTick{}) })
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
	var m *routeTo
	switch msg := ctx.Message().(type) {
	case *routeTo:
		m = msg
	case *messages.PermitRequest:
		m = &routeTo{key: msg.Function, msg: &permitRequest{holder: msg.Holder, limit: int(msg.Limit),
			priority: int(msg.Priority), created: time.Unix(0, msg.CreatedUnixNano), node: msg.Node}}
	case *messages.PermitCanceled:
		m = &routeTo{key: msg.Function, msg: &permitCancel{holder: msg.Holder}}
	case *messages.PermitReleased:
		m = &routeTo{key: msg.Function, msg: &permitRetryTick{}}
	case *messages.PermitGranted:
		r.rt.permitGranted(msg.Function, msg.Holder)
		return
	default:
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
// ctx ends, and returns a time before the permit was last taken or
// confirmed in the database: its lease runs at least until then plus the
// lease TTL (the node's renewals extend it). Requests are served by
// priority, then oldest execution first. In a cluster they are queued by
// the router of the member placement gives for the function among those
// serving queue.
func (rt *Runtime) acquirePermit(ctx context.Context, holder string, act *activation, key, queue string, limit, priority int, created time.Time) (time.Time, error) {
	defer rt.metrics.waitPermit(key, queue)()
	if rt.cl != nil {
		return rt.acquireClusterPermit(ctx, holder, act, key, queue, limit, priority, created)
	}
	asked := time.Now() // the router takes the permit after this
	// The router owns req once sent (it may merge another request of the
	// holder into it): only grant is this call's.
	grant := make(chan struct{})
	req := &permitRequest{holder: holder, limit: limit, priority: priority, created: created, grant: grant}
	rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: req})
	select {
	case <-grant:
		return asked, nil
	case <-ctx.Done():
		rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: &permitCancel{holder: holder, grant: grant}})
		select {
		case <-grant: // granted just before the cancel arrived
			rt.releasePermit(holder, act, key, queue)
		default: // the router drops the request, or gives back a late grant
		}
		return time.Time{}, ctxError(ctx)
	}
}

// releasePermit gives back the permit of key that activation act of
// execution holder holds, unless a newer activation of the execution runs
// on this node (its lease claimed again after a renewal fell behind): that
// one holds the same permit row, the holder's, and gives it back itself.
func (rt *Runtime) releasePermit(holder string, act *activation, key, queue string) {
	rt.mu.Lock()
	cur := rt.active[holder]
	rt.mu.Unlock()
	if cur != nil && cur != act {
		return
	}
	if rt.cl != nil {
		rt.mu.Lock()
		delete(rt.permitsHeld, key+"\x00"+holder)
		rt.mu.Unlock()
		go func() {
			rt.dropPermit(key, holder, rt.cfg.NodeID)
			if mem, ok := rt.permitRouter(key, queue); ok {
				rt.sendTo(mem, &messages.PermitReleased{Function: key, Holder: holder})
			}
		}()
		return
	}
	rt.system.Root.Send(rt.routers, &routeTo{key: key, msg: &permitRelease{holder: holder, owner: rt.cfg.NodeID}})
}

// dropPermit deletes holder's permit of key held by owner in the database.
func (rt *Runtime) dropPermit(key, holder, owner string) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.backend.ReleasePermit(c, key, holder, owner); err != nil {
		// The permit's lease runs out by itself; only latency is lost.
		rt.log.Warn("giving back a permit", slog.String("function", key), slog.String("execution_id", holder), slog.Any("error", err))
	}
}

// permitRouter returns the member whose router queues the permits of key.
func (rt *Runtime) permitRouter(key, queue string) (cluster.Member, bool) {
	return rt.cl.members.Owner("permit:"+key, queue)
}

// permitWait is an execution of this node waiting for a permit from the
// router of another member.
type permitWait struct {
	grant chan struct{}
	once  sync.Once
}

// permitGranted hands a permit granted by a router to the execution
// waiting for it here, or gives it back if none waits any more. A grant
// for a permit the holder holds already (the answer to a repeated request)
// changes nothing: giving it back would free a permit still in use.
func (rt *Runtime) permitGranted(key, holder string) {
	wk := key + "\x00" + holder
	rt.mu.Lock()
	w, held := rt.permitWaits[wk], rt.permitsHeld[wk]
	if w != nil {
		if rt.permitsHeld == nil {
			rt.permitsHeld = make(map[string]bool)
		}
		rt.permitsHeld[wk] = true // before the waiter can return and release
	}
	rt.mu.Unlock()
	if w != nil {
		w.once.Do(func() { close(w.grant) })
		return
	}
	if held {
		return
	}
	// Its router retries on its own while others wait.
	go rt.dropPermit(key, holder, rt.cfg.NodeID)
}

// acquireClusterPermit is acquirePermit in a cluster.
func (rt *Runtime) acquireClusterPermit(ctx context.Context, holder string, act *activation, key, queue string, limit, priority int, created time.Time) (time.Time, error) {
	w := &permitWait{grant: make(chan struct{})}
	wk := key + "\x00" + holder
	rt.mu.Lock()
	if rt.permitWaits == nil {
		rt.permitWaits = make(map[string]*permitWait)
	}
	rt.permitWaits[wk] = w
	rt.mu.Unlock()
	defer func() {
		rt.mu.Lock()
		if rt.permitWaits[wk] == w {
			delete(rt.permitWaits, wk)
		}
		rt.mu.Unlock()
	}()
	req := &messages.PermitRequest{Function: key, Holder: holder, Limit: int32(limit), Priority: int32(priority),
		CreatedUnixNano: created.UnixNano(), Node: rt.cfg.NodeID}
	resend := time.NewTicker(permitResend)
	defer resend.Stop()
	var router cluster.Member
	ask := func() {
		mem, ok := rt.permitRouter(key, queue)
		if !ok {
			mem = rt.cl.members.LocalMember()
		}
		if router.Name != "" && router.Name != mem.Name {
			// The router moved: the old one, if alive, forgets this request.
			rt.sendTo(router, &messages.PermitCanceled{Function: key, Holder: holder})
		}
		router = mem
		rt.sendTo(mem, req)
	}
	ask()
	for {
		select {
		case <-w.grant:
			// A grant may be stale when it arrives (delayed on a
			// reconnecting link while the permit expired unrenewed, or
			// meant for an earlier process of this node's name): the body
			// runs only once the database confirms that this node holds
			// the holder's permit, unexpired, within the limit.
			start := time.Now()
			ok, err := rt.backend.AcquirePermit(ctx, key, holder, rt.cfg.NodeID, limit, rt.cfg.LeaseTTL)
			if ok {
				return start, nil
			}
			if err != nil && ctx.Err() == nil {
				rt.log.Warn("confirming a permit", slog.String("function", key), slog.String("execution_id", holder), slog.Any("error", err))
			}
			rt.mu.Lock()
			delete(rt.permitsHeld, wk)
			w = &permitWait{grant: make(chan struct{})}
			rt.permitWaits[wk] = w
			rt.mu.Unlock()
			ask()
		case <-resend.C:
			ask()
		case <-ctx.Done():
			rt.sendTo(router, &messages.PermitCanceled{Function: key, Holder: holder})
			rt.mu.Lock()
			if rt.permitWaits[wk] == w {
				delete(rt.permitWaits, wk) // a grant from now on is given back
			}
			rt.mu.Unlock()
			select {
			case <-w.grant: // granted just before the cancel
				rt.releasePermit(holder, act, key, queue)
			default: // a late grant finds no wait and is given back
			}
			return time.Time{}, ctxError(ctx)
		}
	}
}
