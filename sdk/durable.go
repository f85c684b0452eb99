package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stent-go/stent/actors"
	"github.com/stent-go/stent/persistence"
)

// DefaultQueue is the queue of functions registered without WithQueue.
const DefaultQueue = "default"

// registry holds every durable function of the process by name.
var registry = struct {
	sync.RWMutex
	fns map[string]*actors.Function
}{fns: make(map[string]*actors.Function)}

func lookup(name string) (*actors.Function, bool) {
	registry.RLock()
	defer registry.RUnlock()
	f, ok := registry.fns[name]
	return f, ok
}

// Func is a registered durable function taking I and returning O. Make one
// with Durable, usually as a package-level variable.
type Func[I, O any] struct {
	name string
	fn   func(context.Context, I) (O, error)
	opts funcOptions
	def  *actors.Function
}

// Durable registers fn as a durable function under name and returns it.
// Names are unique per process: a second registration of a name panics, as
// it is a programming error found at init. Inputs and outputs are encoded
// as JSON, so I and O must round-trip through encoding/json.
func Durable[I, O any](name string, fn func(context.Context, I) (O, error), opts ...Option) *Func[I, O] {
	f, err := register(name, fn, opts...)
	if err != nil {
		panic(err)
	}
	return f
}

func register[I, O any](name string, fn func(context.Context, I) (O, error), opts ...Option) (*Func[I, O], error) {
	if name == "" {
		return nil, errors.New("sdk: a durable function needs a name")
	}
	if fn == nil {
		return nil, fmt.Errorf("sdk: durable function %q is nil", name)
	}
	f := &Func[I, O]{name: name, fn: fn, opts: funcOptions{queue: DefaultQueue}}
	for _, o := range opts {
		o(&f.opts)
	}
	if f.opts.queue == "" {
		f.opts.queue = DefaultQueue
	}
	if f.opts.timeout < 0 {
		return nil, fmt.Errorf("sdk: durable function %q has a negative timeout", name)
	}
	if f.opts.concurrentSet && f.opts.maxConcurrent <= 0 {
		return nil, fmt.Errorf("sdk: durable function %q: WithMaxConcurrent(%d): the limit must be positive (leave the option out for no limit)",
			name, f.opts.maxConcurrent)
	}
	if err := f.opts.retry.validate(); err != nil {
		return nil, fmt.Errorf("sdk: durable function %q: %w", name, err)
	}
	tags, err := actors.NormalizeTags(f.opts.tags)
	if err != nil {
		return nil, fmt.Errorf("sdk: durable function %q: WithTags: %w", name, err)
	}
	if f.opts.cacheSet && f.opts.cacheTTL < time.Millisecond {
		return nil, fmt.Errorf("sdk: durable function %q has a cache TTL of %s; use WithCache with 1ms or more", name, f.opts.cacheTTL)
	}
	f.def = &actors.Function{
		Name:          name,
		Queue:         f.opts.queue,
		Retry:         f.opts.retry.normalize(),
		Timeout:       f.opts.timeout,
		Version:       f.opts.version,
		MaxConcurrent: f.opts.maxConcurrent,
		Idempotent:    f.opts.idempotent,
		CacheTTL:      f.opts.cacheTTL,
		Tags:          tags,
		Run:           jsonRun(name, fn),
	}
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.fns[name]; dup {
		return nil, fmt.Errorf("sdk: durable function %q registered twice", name)
	}
	registry.fns[name] = f.def
	return f, nil
}

// jsonRun is fn as the runtime calls it: JSON in, JSON out.
func jsonRun[I, O any](name string, fn func(context.Context, I) (O, error)) func(context.Context, []byte) ([]byte, error) {
	return func(ctx context.Context, input []byte) ([]byte, error) {
		var in I
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, NonRetryable(fmt.Errorf("decoding input of %q: %w", name, err))
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, NonRetryable(fmt.Errorf("encoding output of %q: %w", name, err))
		}
		return b, nil
	}
}

// Name returns the name the function is registered under.
func (f *Func[I, O]) Name() string { return f.name }

// Call runs the function durably and returns its output.
//
// Inside an execution it is a child call: recorded in the journal at the
// next position, run as its own execution, and never run again once its
// outcome is recorded (a replay returns the recorded outcome). A failure of
// the child is returned as an *ExecutionError.
//
// Outside an execution it starts a root execution on the executor bound to
// ctx (WithExecutor), or else the process default (Use, Bootstrap), and
// waits for its result. With neither, it calls the function directly in the
// calling goroutine, not durably, which suits unit tests: the first such
// call of each function logs a warning, and under RequireExecutor(true) it
// fails with ErrNoExecutor instead.
func (f *Func[I, O]) Call(ctx context.Context, in I, opts ...CallOption) (O, error) {
	if !actors.InExecution(ctx) && executorFrom(ctx) == nil {
		if err := direct(ctx, f.name); err != nil {
			var zero O
			return zero, err
		}
		return f.fn(ctx, in)
	}
	h, err := f.Start(ctx, in, opts...)
	if err != nil {
		var zero O
		return zero, err
	}
	return h.Result(ctx)
}

// Start is Call without waiting: it returns a Handle once the execution is
// recorded. Inside an execution, start several children then wait on their
// handles to run them concurrently. Outside one, it needs an executor.
func (f *Func[I, O]) Start(ctx context.Context, in I, opts ...CallOption) (*Handle[O], error) {
	hs, err := f.start(ctx, []I{in}, opts)
	if err != nil {
		return nil, err
	}
	return hs[0], nil
}

func (f *Func[I, O]) start(ctx context.Context, ins []I, opts []CallOption) ([]*Handle[O], error) {
	co := callOptions{}
	for _, o := range opts {
		o(&co)
	}
	inputs := make([][]byte, len(ins))
	for i, in := range ins {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding input of %q: %w", f.name, err)
		}
		inputs[i] = b
	}
	ao := actors.CallOptions{Queue: co.queue, Priority: f.opts.priority, Delay: co.delay, MaxDuration: co.maxDuration,
		IdempotencyKey: co.idempotencyKey}
	if co.idempotencyKey != "" && len(ins) > 1 {
		return nil, fmt.Errorf("starting %q: one idempotency key cannot start %d executions", f.name, len(ins))
	}
	if co.priority != nil {
		ao.Priority = *co.priority
	}
	tags, err := actors.NormalizeTags(co.tags)
	if err != nil {
		return nil, fmt.Errorf("starting %q: WithCallTags: %w", f.name, err)
	}
	ao.Tags = tags
	if co.delay < 0 || co.maxDuration < 0 {
		return nil, fmt.Errorf("starting %q: negative delay or max duration", f.name)
	}
	if actors.InExecution(ctx) {
		futures, err := actors.StartChildren(ctx, f.def, inputs, ao)
		if err != nil {
			return nil, err
		}
		hs := make([]*Handle[O], len(futures))
		for i, fu := range futures {
			hs[i] = &Handle[O]{id: fu.ID(), fn: f.name, future: fu}
		}
		return hs, nil
	}
	ex := executorFrom(ctx)
	if ex == nil {
		return nil, fmt.Errorf("starting %q: %w", f.name, ErrNoExecutor)
	}
	hs := make([]*Handle[O], len(inputs))
	for i, in := range inputs {
		id, err := ex.startRoot(ctx, f.def, in, ao)
		if err != nil {
			return nil, err
		}
		hs[i] = &Handle[O]{id: id, fn: f.name, ex: ex}
	}
	return hs, nil
}

// Map runs the function once per input, in parallel (fan-out), and returns
// the outputs in input order (fan-in). It waits for every execution to
// finish, then returns the first error by index, if any. Inside an
// execution the executions are children recorded in one write.
func (f *Func[I, O]) Map(ctx context.Context, ins []I, opts ...CallOption) ([]O, error) {
	rs, err := f.MapResults(ctx, ins, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]O, len(rs))
	var first error
	for i, r := range rs {
		v, err := r.Value()
		if err != nil && first == nil {
			first = err
		}
		out[i] = v
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// MapResults is Map with one Result per input. Its error reports only a
// failure to start the executions. With no executor it runs the function
// directly, as Call does.
func (f *Func[I, O]) MapResults(ctx context.Context, ins []I, opts ...CallOption) ([]Result[O], error) {
	out := make([]Result[O], len(ins))
	if !actors.InExecution(ctx) && executorFrom(ctx) == nil {
		if err := direct(ctx, f.name); err != nil {
			return nil, err
		}
		var wg sync.WaitGroup
		for i, in := range ins {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := f.fn(ctx, in)
				if err != nil {
					out[i] = Err[O](err)
				} else {
					out[i] = Ok(v)
				}
			}()
		}
		wg.Wait()
		return out, nil
	}
	hs, err := f.start(ctx, ins, opts)
	if err != nil {
		return nil, err
	}
	for i, h := range hs {
		v, err := h.Result(ctx)
		if err != nil {
			if actors.InExecution(ctx) && !isChildFailure(err) {
				return nil, err // the parent itself is stopping or failed
			}
			out[i] = Err[O](err)
		} else {
			out[i] = Ok(v)
		}
	}
	return out, nil
}

func isChildFailure(err error) bool {
	var ee *ExecutionError
	return errors.As(err, &ee)
}

// Handle is a started execution.
type Handle[O any] struct {
	id     string
	fn     string
	ex     *Executor
	future *actors.Future
}

// ID returns the execution's ID.
func (h *Handle[O]) ID() string { return h.id }

// Result waits for the execution to finish and returns its output, or its
// failure as an *ExecutionError (matching ErrTimeout or ErrCanceled when it
// timed out or was canceled). Inside an execution, call it from the body
// that started the execution.
func (h *Handle[O]) Result(ctx context.Context) (O, error) {
	var zero O
	var out []byte
	if h.future != nil {
		b, err := h.future.Await(ctx)
		if err != nil {
			return zero, err
		}
		out = b
	} else {
		o, err := h.ex.rt.Await(ctx, h.id)
		if err != nil {
			return zero, err
		}
		if o.Status != persistence.StatusCompleted {
			err := actors.ErrorFromInfo(o.Function, h.id, o.Attempts, o.Error)
			if err == nil {
				err = &ExecutionError{Function: o.Function, ExecutionID: h.id, Attempts: o.Attempts, Message: string(o.Status)}
			}
			return zero, err
		}
		out = o.Output
	}
	var v O
	if err := json.Unmarshal(out, &v); err != nil {
		return zero, fmt.Errorf("decoding output of %q (%s): %w", h.fn, h.id, err)
	}
	return v, nil
}

// Sleep pauses the execution durably for d: the end of the sleep is
// recorded, survives crashes and restarts, and is not waited again on replay.
// A sleep of one second or more passivates the execution: it holds no
// goroutine, actor or worker slot until a durable timer wakes it. Outside an
// execution it is a plain sleep that honours ctx.
func Sleep(ctx context.Context, d time.Duration) error { return actors.Sleep(ctx, d) }

// Now returns the current time, recorded in the journal once and returned
// again on every replay, so that a body's decisions stay deterministic.
// Outside an execution it returns time.Now().
func Now(ctx context.Context) time.Time {
	t, err := actors.Now(ctx)
	if err != nil {
		// The execution is stopping (passivated, lease lost, node shutting
		// down) or its replay diverged; the attempt's outcome will not be
		// recorded from here, so a wall-clock value is harmless.
		return time.Now().UTC()
	}
	return t
}

// ExecutionID returns the ID of the execution whose body ctx belongs to, or
// "" outside an execution.
func ExecutionID(ctx context.Context) string { return actors.ExecutionID(ctx) }

// FunctionInfo describes a durable function registered in this process,
// as its options set it.
type FunctionInfo struct {
	Name    string
	Queue   string
	Version string
	// MaxConcurrent is WithMaxConcurrent's limit, 0 when unlimited.
	MaxConcurrent int
	// CacheTTL is WithCache's ttl, 0 when its results are not cached.
	CacheTTL time.Duration
	// Tags are WithTags', sorted.
	Tags []string
}

// RegisteredFunctions returns the durable functions registered in this
// process, sorted by name. It is safe to call at any time.
func RegisteredFunctions() []FunctionInfo {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]FunctionInfo, 0, len(registry.fns))
	for _, f := range registry.fns {
		out = append(out, FunctionInfo{Name: f.Name, Queue: f.Queue, Version: f.Version, MaxConcurrent: f.MaxConcurrent,
			CacheTTL: f.CacheTTL, Tags: slices.Clone(f.Tags)})
	}
	slices.SortFunc(out, func(a, b FunctionInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
