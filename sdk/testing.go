package sdk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stent-go/stent/actors"
)

// This file holds the executor options that sdk/stenttest builds its test
// kit on. They work in production too, but have no use there.

// testOptions are the options of this file.
type testOptions struct {
	clock          actors.Clock
	passivateAfter time.Duration
	stubs          *Stubs
}

func (o *testOptions) validate() error {
	if o.passivateAfter < 0 {
		return fmt.Errorf("sdk: WithPassivateAfter(%s): the duration must not be negative", o.passivateAfter)
	}
	return nil
}

// apply sets the runtime's fields of these options.
func (o *testOptions) apply(cfg actors.Config) actors.Config {
	cfg.Clock = o.clock
	cfg.PassivateAfter = o.passivateAfter
	cfg.Lookup = o.lookup(cfg.Lookup)
	return cfg
}

// lookup finds a function the node runs, with its stub's body if it has
// one.
func (o *testOptions) lookup(next func(string) (*actors.Function, bool)) func(string) (*actors.Function, bool) {
	s := o.stubs
	if s == nil {
		return next
	}
	return func(name string) (*actors.Function, bool) {
		f, ok := next(name)
		if !ok {
			return nil, false
		}
		if run := s.get(name); run != nil {
			stubbed := *f
			stubbed.Run = run
			return &stubbed, true
		}
		return f, true
	}
}

// WithClock sets the clock the executor's runtime reads for durable
// sleeps, signal-wait timeouts, retry backoff, delayed starts (WithDelay)
// and deadlines (WithMaxDuration). The backend must compare due times with
// the same clock (sqlite.WithClock). The default is the host's clock;
// sdk/stenttest passes a clock a test can move forward.
func WithClock(c actors.Clock) ExecutorOption {
	return func(o *executorOptions) { o.test.clock = c }
}

// WithPassivateAfter sets the shortest durable sleep, and the longest
// in-memory part of a signal wait, after which an execution passivates
// (ends its goroutines and waits in the database). The default is 1s;
// sdk/stenttest uses a few milliseconds, so that a test exercises
// passivation and replay and its clock can skip every wait.
func WithPassivateAfter(d time.Duration) ExecutorOption {
	return func(o *executorOptions) { o.test.passivateAfter = d }
}

// Stubs holds replacement bodies of registered functions for the
// executors made with WithStubs: an execution of a stubbed function runs
// the stub's body, with the function's options (queue, retry, timeout)
// unchanged. It is safe for concurrent use; a stub set or removed applies
// to attempts that start afterwards. The zero value is ready to use.
type Stubs struct {
	mu sync.RWMutex
	m  map[string]func(context.Context, []byte) ([]byte, error)
}

// WithStubs makes the executor run the bodies in s in place of the
// registered ones (SetStub); other executors of the process are not
// affected.
func WithStubs(s *Stubs) ExecutorOption {
	return func(o *executorOptions) { o.test.stubs = s }
}

// SetStub makes executions of f on the executors using s run body instead
// of f's own, until restore is called.
func SetStub[I, O any](s *Stubs, f *Func[I, O], body func(context.Context, I) (O, error)) (restore func()) {
	run := jsonRun(f.name, body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]func(context.Context, []byte) ([]byte, error))
	}
	prev := s.m[f.name]
	s.m[f.name] = run
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if prev != nil {
			s.m[f.name] = prev
		} else {
			delete(s.m, f.name)
		}
	}
}

func (s *Stubs) get(name string) func(context.Context, []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.m[name]
}

// Quiescent reports, for an executor with a test clock (WithClock),
// whether every execution active on it is blocked in a wait (a child's
// outcome, a signal, a sleep), and the earliest deadline among those waits
// (zero when none has one). Without a clock it reports false. It does not
// read the database: executions due there are the caller's to check.
// sdk/stenttest's AutoSkip uses it.
func (e *Executor) Quiescent() (bool, time.Time) { return e.rt.Quiescent() }
