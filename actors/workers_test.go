package actors

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// waitIdle polls until w has n idle goroutines.
func waitIdle(t *testing.T, w *workers, n int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.idle.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("idle workers: %d, want %d", w.idle.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkersReuseAnIdleGoroutine(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	ran := make(chan struct{})
	w.Go(func() { close(ran) })
	<-ran
	waitIdle(t, w, 1)
	// The next task goes to the idle goroutine: none is left idle while
	// it runs.
	release := make(chan struct{})
	started := make(chan struct{})
	w.Go(func() { close(started); <-release })
	<-started
	if n := w.idle.Load(); n != 0 {
		t.Fatalf("idle while the only worker runs a task: %d", n)
	}
	close(release)
	waitIdle(t, w, 1)
}

func TestWorkersNeverMakeATaskWait(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	// Tasks that block until all have started: each must get a goroutine
	// of its own at once.
	const n = 50
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		w.Go(func() { started.Done(); <-release })
	}
	done := make(chan struct{})
	go func() { started.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a task waited for another to finish")
	}
	close(release)
	waitIdle(t, w, n)
}

func TestWorkersSurviveGoexit(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	exited := make(chan struct{})
	w.Go(func() {
		defer close(exited)
		runtime.Goexit()
	})
	<-exited
	ran := make(chan struct{})
	w.Go(func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("no task ran after one ended its goroutine")
	}
}

func TestWorkersKeepAtMostMaxIdle(t *testing.T) {
	w := newWorkers()
	defer w.stop()
	const n = maxIdleWorkers + 20
	var started sync.WaitGroup
	started.Add(n)
	release := make(chan struct{})
	for range n {
		w.Go(func() { started.Done(); <-release })
	}
	started.Wait()
	close(release)
	waitIdle(t, w, maxIdleWorkers)
	time.Sleep(50 * time.Millisecond) // the rest end rather than wait
	if got := w.idle.Load(); got != maxIdleWorkers {
		t.Fatalf("idle workers: %d, want at most %d", got, maxIdleWorkers)
	}
}

func TestWorkersStopEndsIdleGoroutines(t *testing.T) {
	w := newWorkers()
	ran := make(chan struct{})
	w.Go(func() { close(ran) })
	<-ran
	waitIdle(t, w, 1)
	w.stop()
	waitIdle(t, w, 0)
	// After stop a task still runs, on a goroutine that ends with it.
	again := make(chan struct{})
	w.Go(func() { close(again) })
	<-again
}

// recorder is an actor that records the ints it receives, in order, and
// blocks on gate while it handles a negative one.
type recorder struct {
	mu   sync.Mutex
	got  []int
	gate chan struct{}
}

func (r *recorder) Receive(ctx actor.Context) {
	if n, ok := ctx.Message().(int); ok {
		if n < 0 {
			<-r.gate
		}
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}
}

func (r *recorder) seen() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.got...)
}

func TestMailboxRunsHereOnlyWhenIdle(t *testing.T) {
	system := actor.NewActorSystem()
	w := newWorkers()
	defer w.stop()
	mb := &mailbox{w: w}
	rec := &recorder{gate: make(chan struct{})}
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return rec }, actor.WithDispatcher(mb)))
	defer system.Root.Stop(pid)

	// An idle mailbox (its start handled): the sender handles its message
	// before sendHere returns.
	waitIdle(t, w, 1)
	mb.sendHere(system, pid, 1)
	if got := rec.seen(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("after sendHere to an idle mailbox: %v, want [1]", got)
	}

	// A busy mailbox (a worker blocked in the handler): the message
	// queues, and the worker handles it after, in order.
	system.Root.Send(pid, -1)
	waitFor(t, func() bool { return w.idle.Load() == 0 }) // the worker is in the handler
	mb.sendHere(system, pid, 2)
	if got := rec.seen(); len(got) != 1 {
		t.Fatalf("sendHere to a busy mailbox handled at once: %v", got)
	}
	if mb.here.Load() {
		t.Fatal("sendHere left its mark for another sender")
	}
	close(rec.gate)
	waitFor(t, func() bool { return len(rec.seen()) == 3 })
	if got := rec.seen(); got[1] != -1 || got[2] != 2 {
		t.Fatalf("messages out of order: %v", got)
	}

	// A plain send to an idle mailbox goes to a worker.
	waitIdle(t, w, 1)
	system.Root.Send(pid, 3)
	waitFor(t, func() bool { return len(rec.seen()) == 4 })
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
