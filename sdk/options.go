package sdk

import (
	"fmt"
	"math"
	"time"

	"github.com/stent-go/stent/internal/retry"
)

// RetryPolicy says how a failed attempt is retried. The delay before attempt
// n+1 is min(MaxDelay, InitialDelay × Multiplier^(n−1)), spread by ±Jitter
// (a fraction of it), waited as a durable timer. MaxAttempts counts the first
// attempt. Zero fields take the defaults: 3 attempts, 1s, 60s, 2.0 and 0.1;
// a negative Jitter means none.
type RetryPolicy struct {
	MaxAttempts  int
	InitialDelay time.Duration
	MaxDelay     time.Duration
	Multiplier   float64
	Jitter       float64
}

// validate refuses a policy whose fields are out of range, instead of
// silently taking a default for them.
func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 0:
		return fmt.Errorf("RetryPolicy.MaxAttempts is %d: it must be 0 (the default, 3) or more", p.MaxAttempts)
	case p.InitialDelay < 0 || p.MaxDelay < 0:
		return fmt.Errorf("RetryPolicy delays must not be negative (InitialDelay %s, MaxDelay %s)", p.InitialDelay, p.MaxDelay)
	case p.Multiplier < 0 || math.IsNaN(p.Multiplier) || math.IsNaN(p.Jitter):
		return fmt.Errorf("RetryPolicy.Multiplier is %v: it must be 0 (the default, 2.0) or more", p.Multiplier)
	}
	return nil
}

func (p RetryPolicy) normalize() retry.Policy {
	return retry.Normalize(retry.Policy{
		MaxAttempts: p.MaxAttempts, InitialDelay: p.InitialDelay, MaxDelay: p.MaxDelay,
		Multiplier: p.Multiplier, Jitter: p.Jitter,
	})
}

// funcOptions are the options of a durable function.
type funcOptions struct {
	retry         RetryPolicy
	queue         string
	timeout       time.Duration
	version       string
	priority      int
	maxConcurrent int
	// concurrentSet tells WithMaxConcurrent(0) (refused) from no limit.
	concurrentSet bool
	idempotent    bool
	cacheTTL      time.Duration
	cacheSet      bool // WithCache was given, so its ttl must be positive
	tags          []string
}

// Option configures a durable function.
type Option func(*funcOptions)

// WithRetry sets the retry policy of the function's attempts. Without it,
// the defaults of RetryPolicy apply (3 attempts).
func WithRetry(p RetryPolicy) Option { return func(o *funcOptions) { o.retry = p } }

// WithQueue puts the function's executions on a queue; only executors that
// serve it (WithQueues) run them. The default queue is "default".
func WithQueue(name string) Option { return func(o *funcOptions) { o.queue = name } }

// WithTimeout fails one attempt that runs longer than d with ErrTimeout; the
// retry policy then applies. The body's context is cancelled at the deadline.
func WithTimeout(d time.Duration) Option { return func(o *funcOptions) { o.timeout = d } }

// WithVersion records v on every execution of the function, so that
// executions of a changed function can be told apart.
func WithVersion(v string) Option { return func(o *funcOptions) { o.version = v } }

// WithPriority sets the default priority of the function's executions:
// higher runs first among those waiting in a queue. The default is 0.
func WithPriority(p int) Option { return func(o *funcOptions) { o.priority = p } }

// WithMaxConcurrent lets at most n executions of the function run at once,
// across every node of the cluster: the others wait for a permit, served in
// the order they asked on each node. Permits are rows in the database held
// with the node's lease, so a node that dies gives its permits back when its
// lease runs out. n must be positive.
func WithMaxConcurrent(n int) Option {
	return func(o *funcOptions) { o.maxConcurrent, o.concurrentSet = n, true }
}

// WithIdempotent makes a call with the same function, version and input
// return the stored outcome of the first execution instead of running again:
// the input's hash is the execution's idempotency key, unique in the
// database, so this holds for concurrent calls from many processes. It
// applies to root starts and to child calls alike.
func WithIdempotent() Option { return func(o *funcOptions) { o.idempotent = true } }

// callOptions are the options of one call.
type callOptions struct {
	idempotencyKey string
	queue          string
	priority       *int
	delay          time.Duration
	maxDuration    time.Duration
	tags           []string
}

// CallOption configures one call or start.
type CallOption func(*callOptions)

// WithDelay starts the execution no earlier than d from now.
func WithDelay(d time.Duration) CallOption { return func(o *callOptions) { o.delay = d } }

// WithMaxDuration sets a deadline for the whole execution, children
// included: past it the execution ends as timed_out and Result returns an
// error matching ErrTimeout.
func WithMaxDuration(d time.Duration) CallOption { return func(o *callOptions) { o.maxDuration = d } }

// WithCallQueue overrides the function's queue for this call.
func WithCallQueue(q string) CallOption { return func(o *callOptions) { o.queue = q } }

// WithCallPriority overrides the function's priority for this call.
func WithCallPriority(p int) CallOption { return func(o *callOptions) { o.priority = &p } }

// WithIdempotencyKey makes a root start idempotent: starting again with the
// same key returns the existing execution (and, through its Handle, its
// result), never a second one, even after a crash and a restart. The same
// key with a different function or input is refused with an error. Inside
// an execution child calls are already exactly-once by their journal
// position, and the key is ignored.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}
