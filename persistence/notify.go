package persistence

import "context"

// Topics of the notifications Stent publishes. A Payload names what changed.
const (
	// TopicQueue announces work in a queue (a start, a retry); Payload is
	// the queue's name.
	TopicQueue = "queue"
	// TopicExecution announces a message for an execution (a signal, a
	// child's outcome, a cancel); Payload is the execution's ID.
	TopicExecution = "exec"
	// TopicDone announces that an execution reached a terminal status;
	// Payload is its ID.
	TopicDone = "done"
)

// Notification is a wake-up: something was written to the backend that a
// process elsewhere may be waiting for. It carries no data beyond what to
// look at; the backend holds the truth.
type Notification struct {
	// Topic says what kind of thing changed (TopicQueue, TopicExecution,
	// TopicDone, or a caller's own).
	Topic string
	// Payload names the thing: a queue name or an execution ID.
	Payload string
}

// Notifier carries wake-ups between processes: a process that writes work
// for another (a start, a signal, a completion) publishes after its write is
// durable, and serving nodes subscribe.
//
// Delivery is best effort and at most once: a notification may be lost (a
// subscriber reconnecting, a server restarting), arrive late, or arrive
// after the subscriber already saw the change. It is a hint only. Nothing's
// correctness depends on it: subscribers read the backend on a wake-up, and
// keep polling the backend as the fallback, so a lost notification costs
// latency and nothing else.
//
// All methods are safe for concurrent use.
type Notifier interface {
	// Publish sends n to every current subscriber of every process sharing
	// the notifier's channel. A nil error means the notification was handed
	// to the transport, not that anyone received it.
	Publish(ctx context.Context, n Notification) error
	// Subscribe delivers notifications to fn, from one goroutine and in the
	// order received, until ctx ends or the Notifier is closed. It returns
	// once the subscription is established (so a Publish that follows is
	// seen), or with an error if it cannot be; fn is not called after ctx
	// ends or Close returns. fn must not block for long: notifications that
	// arrive while it runs are queued up to a bound, then dropped.
	Subscribe(ctx context.Context, fn func(Notification)) error
	// Close ends every subscription and releases the notifier's
	// connections. Later calls return ErrClosed.
	Close() error
}
