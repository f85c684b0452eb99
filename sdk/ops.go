package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/persistence"
)

// Stats are execution counts, for dashboards and the stent CLI.
type Stats struct {
	// Total counts every execution; ByStatus by status.
	Total    int
	ByStatus map[Status]int
	// Functions counts by function (and status), sorted by name.
	Functions []FunctionStats
	// Queues describes each queue that holds executions not yet finished,
	// sorted by name.
	Queues []QueueStats
	// Unserved lists the functions with pending executions that no live
	// node runs (no node in the registry serves that function on that
	// queue): they wait for a node that has the function.
	Unserved []UnservedFunction
	// At is the database's clock when the counts were read.
	At time.Time
}

// FunctionStats counts the executions of one function.
type FunctionStats struct {
	Function string
	Total    int
	ByStatus map[Status]int
}

// QueueStats describes one queue. Depth counts the pending executions that
// may run now (due); OldestPending is the creation time of the oldest of
// them, and OldestPendingAge its age at Stats.At.
type QueueStats struct {
	Queue            string
	Depth            int
	Pending          int
	Running          int
	Waiting          int
	OldestPending    time.Time
	OldestPendingAge time.Duration
}

// UnservedFunction is a function with pending executions on a queue where
// no live node runs it.
type UnservedFunction struct {
	Function      string
	Queue         string
	Pending       int
	OldestPending time.Time
}

// Stats counts the executions by status, function and queue, and names the
// pending work no live node can run. On 1,000,000 finished executions it
// takes tens of milliseconds (terminal counts come from an index alone).
func (e *Executor) Stats(ctx context.Context) (Stats, error) {
	st, err := e.backend.Stats(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("reading stats: %w", err)
	}
	nodes, err := e.backend.ListNodes(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("reading stats: %w", err)
	}
	return buildStats(st, nodes), nil
}

func buildStats(st *persistence.Stats, nodes []*persistence.Node) Stats {
	out := Stats{ByStatus: map[Status]int{}, At: st.At}
	fns := map[string]*FunctionStats{}
	queues := map[string]*QueueStats{}
	unserved := map[[2]string]*UnservedFunction{}
	for _, g := range st.Groups {
		out.Total += g.Count
		out.ByStatus[g.Status] += g.Count
		f := fns[g.Function]
		if f == nil {
			f = &FunctionStats{Function: g.Function, ByStatus: map[Status]int{}}
			fns[g.Function] = f
		}
		f.Total += g.Count
		f.ByStatus[g.Status] += g.Count
		if g.Status.Terminal() {
			continue
		}
		q := queues[g.Queue]
		if q == nil {
			q = &QueueStats{Queue: g.Queue}
			queues[g.Queue] = q
		}
		switch g.Status {
		case StatusPending:
			q.Pending += g.Count
			q.Depth += g.Due
			if !g.OldestDue.IsZero() && (q.OldestPending.IsZero() || g.OldestDue.Before(q.OldestPending)) {
				q.OldestPending = g.OldestDue
			}
			if !servedBy(nodes, g.Function, g.Queue) {
				k := [2]string{g.Function, g.Queue}
				u := unserved[k]
				if u == nil {
					u = &UnservedFunction{Function: g.Function, Queue: g.Queue}
					unserved[k] = u
				}
				u.Pending += g.Count
				if u.OldestPending.IsZero() || g.OldestCreatedAt.Before(u.OldestPending) {
					u.OldestPending = g.OldestCreatedAt
				}
			}
		case StatusRunning:
			q.Running += g.Count
		case StatusWaiting:
			q.Waiting += g.Count
		}
	}
	for _, f := range fns {
		out.Functions = append(out.Functions, *f)
	}
	sort.Slice(out.Functions, func(i, j int) bool { return out.Functions[i].Function < out.Functions[j].Function })
	for _, q := range queues {
		if !q.OldestPending.IsZero() {
			q.OldestPendingAge = max(0, out.At.Sub(q.OldestPending))
		}
		out.Queues = append(out.Queues, *q)
	}
	sort.Slice(out.Queues, func(i, j int) bool { return out.Queues[i].Queue < out.Queues[j].Queue })
	for _, u := range unserved {
		out.Unserved = append(out.Unserved, *u)
	}
	sort.Slice(out.Unserved, func(i, j int) bool {
		a, b := out.Unserved[i], out.Unserved[j]
		return a.Function < b.Function || (a.Function == b.Function && a.Queue < b.Queue)
	})
	return out
}

// servedBy reports whether a live node runs function on queue.
func servedBy(nodes []*persistence.Node, function, queue string) bool {
	for _, n := range nodes {
		if n.Alive && n.Serves(function, queue) {
			return true
		}
	}
	return false
}

// QueueDepth returns how many executions of queue wait to run now: due
// (pending, a retry or timer that fell due, a lease that ran out) and not
// leased by a node.
func (e *Executor) QueueDepth(ctx context.Context, queue string) (int, error) {
	if queue == "" {
		return 0, errors.New("sdk: QueueDepth needs a queue name (the default queue is \"default\")")
	}
	n, err := e.backend.QueueDepth(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("reading depth of queue %q: %w", queue, err)
	}
	return n, nil
}

// cleanupBatch is how many finished trees one Cleanup transaction deletes:
// small, so that live work never waits long for the database. With 1,000,000
// finished executions on PostgreSQL, batches of 100 let a few live commits
// wait 110-150 ms (BenchmarkScale), batches of 25 at most 76 ms, at half the
// deletion rate (about 7,000 executions a second), which a background
// sweeper can afford.
const cleanupBatch = 25

// Cleanup deletes the finished executions last updated more than olderThan
// ago, with their journals, snapshots, signals and dead letters. It deletes
// whole trees only: a root that ended, and everything below it, once every
// execution of the tree has ended, so no child goes while its parent runs.
// It works in batches of cleanupBatch trees, each a short transaction of its
// own, and returns how many executions it deleted (also when ctx ends
// between batches, with ctx's error). olderThan must not be negative.
func (e *Executor) Cleanup(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("sdk: Cleanup: negative age %s: pass how long finished executions are kept, such as 720h", olderThan)
	}
	before := time.Now().Add(-olderThan)
	total := 0
	for {
		n, err := e.backend.Cleanup(ctx, before, cleanupBatch)
		total += n
		if err != nil {
			return total, fmt.Errorf("cleaning up executions finished before %s: %w", before.UTC().Format(time.RFC3339), err)
		}
		if n == 0 {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// Drain stops this executor taking work (and firing schedules) and lets its
// running executions reach their next durable operation; it then gives
// their leases back, so
// that other nodes take them over at once, and leaves the cluster. Their
// attempts are not recorded as failed. It waits up to ctx's deadline for the
// running executions. Close still works after it (and Drain after Close
// does nothing).
func (e *Executor) Drain(ctx context.Context) error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil
	}
	e.stopSchedules()
	err := e.rt.Drain(ctx)
	e.stopBackground()
	if derr := e.unregisterNode(); derr != nil {
		err = errors.Join(err, derr)
	}
	if err != nil {
		return fmt.Errorf("draining node %s: %w", e.NodeID(), err)
	}
	return nil
}

// Member is a serving node as the node registry records it.
type Member struct {
	// ID is the node's name (WithNodeID).
	ID string
	// Addresses are its endpoints by kind: "gossip" and "remote" in a
	// cluster, and those given with WithNodeAddress (such as "admin").
	Addresses map[string]string
	// Functions are the durable functions it runs; Queues the queues it
	// serves (empty: every queue).
	Functions []string
	Queues    []string
	// Tags are its worker tags (WithWorkerTags), sorted; empty: none, so
	// it runs untagged executions only.
	Tags    []string
	Version string
	// Owned is the number of unexpired leases the node holds now.
	Owned       int
	StartedAt   time.Time
	HeartbeatAt time.Time
	// Alive is false once the node has missed its heartbeats for a lease
	// duration; it is dropped from the registry an hour after its last.
	Alive bool
}

// Members returns the serving nodes from the node registry, sorted by ID:
// every serving executor records itself there and heartbeats every third of
// its lease duration; a clean stop removes it.
func (e *Executor) Members(ctx context.Context) ([]Member, error) {
	nodes, err := e.backend.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing members: %w", err)
	}
	out := make([]Member, len(nodes))
	for i, n := range nodes {
		out[i] = Member{ID: n.ID, Addresses: n.Addresses, Functions: n.Functions, Queues: n.Queues, Tags: n.Tags,
			Version: n.Version, Owned: n.Owned, StartedAt: n.StartedAt, HeartbeatAt: n.HeartbeatAt, Alive: n.Alive}
	}
	return out, nil
}

// StartByName starts a root execution of the function called name with a
// JSON input, without the function being registered in this process (a
// CLI, a web handler that only starts work). input must be a JSON document
// ("null" when the function takes none). The execution runs on a node that
// has the function; until one serves it, it stays pending, which Stats
// reports. Call options apply as for Start; the queue is the function's when
// registered here, else WithCallQueue's, else "default". It returns the
// execution's ID (an existing one for a repeated idempotency key).
func (e *Executor) StartByName(ctx context.Context, name string, input json.RawMessage, opts ...CallOption) (string, error) {
	if name == "" {
		return "", errors.New("sdk: StartByName needs a function name")
	}
	if len(input) == 0 {
		input = json.RawMessage("null")
	}
	if !json.Valid(input) {
		return "", fmt.Errorf("sdk: the input of %q is not valid JSON: pass a JSON document such as {\"id\":1}, \"text\" or null", name)
	}
	co := callOptions{}
	for _, o := range opts {
		o(&co)
	}
	if co.delay < 0 || co.maxDuration < 0 {
		return "", fmt.Errorf("starting %q: negative delay or max duration", name)
	}
	fn, ok := lookup(name)
	if !ok {
		fn = &actors.Function{Name: name, Queue: DefaultQueue}
	}
	ao := actors.CallOptions{Queue: co.queue, Delay: co.delay, MaxDuration: co.maxDuration,
		IdempotencyKey: co.idempotencyKey}
	if co.priority != nil {
		ao.Priority = *co.priority
	}
	return e.startRoot(ctx, fn, input, ao)
}
