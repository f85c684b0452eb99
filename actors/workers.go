package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// maxIdleWorkers is how many idle goroutines a runtime keeps for the next
// task: enough for a fan-out's burst to find most of them warm, few enough
// that what they hold (their stacks, up to a few tens of KiB each) stays
// small.
const maxIdleWorkers = 256

// workers runs the runtime's short-lived tasks — an execution actor's
// mailbox run, an attempt, a write — on goroutines kept for the next task.
// A task started with `go` begins on a small stack that grows (and is
// copied) as the task goes deeper, every time; a kept goroutine has grown
// already. When no goroutine is idle a new one starts, so a task never
// waits for another to finish.
type workers struct {
	tasks chan func()
	idle  atomic.Int32
	done  chan struct{}
}

func newWorkers() *workers {
	return &workers{tasks: make(chan func()), done: make(chan struct{})}
}

// Go runs fn on an idle goroutine, or on a new one.
func (w *workers) Go(fn func()) {
	select {
	case w.tasks <- fn:
	default:
		go w.work(fn)
	}
}

// work runs fn, then waits for the next task while fewer than
// maxIdleWorkers others wait, until stop.
func (w *workers) work(fn func()) {
	for {
		fn()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case fn = <-w.tasks:
			w.idle.Add(-1)
		case <-w.done:
			w.idle.Add(-1)
			return
		}
	}
}

// stop ends the idle goroutines; a task given later runs on a goroutine of
// its own, which ends with it.
func (w *workers) stop() { close(w.done) }

// mailbox dispatches the mailbox of one execution actor. A run of the
// mailbox goes to workers, except when the goroutine that posts the message
// would only wait afterwards (a body asking its actor, a write's goroutine
// handing back its result and ending): that goroutine runs the mailbox
// itself, and the message costs no hand-off to another goroutine. Which
// goroutine runs the mailbox changes nothing else: protoactor runs one at a
// time, in order.
type mailbox struct {
	w *workers
	// here is set while a goroutine that may run the mailbox posts to it
	// (sendHere).
	here atomic.Bool
}

// Schedule runs the mailbox on this goroutine if a sendHere is under way,
// else on a worker.
func (m *mailbox) Schedule(fn func()) {
	if m.here.CompareAndSwap(true, false) {
		fn()
		return
	}
	m.w.Go(fn)
}

// Throughput is how many messages a mailbox handles before it yields, as
// protoactor's default dispatcher.
func (m *mailbox) Throughput() int { return 300 }

// sendHere sends msg to pid, the actor whose mailbox m dispatches; if the
// mailbox is idle, this goroutine handles the message (and any others
// queued) before it returns. Only a goroutine that holds no lock and would
// wait or end next may call it.
func (m *mailbox) sendHere(system *actor.ActorSystem, pid *actor.PID, msg any) {
	m.here.Store(true)
	system.Root.Send(pid, msg)
	m.here.Store(false)
}

var _ actor.Dispatcher = (*mailbox)(nil)
