// Package redisnotify implements persistence.Notifier on Redis pub/sub, for
// deployments that have Redis at hand (with SQLite, say, where there is no
// LISTEN/NOTIFY).
//
// Redis only carries hints: a notification published while Redis restarts,
// or while a subscriber reconnects, is lost, and Redis losing its data loses
// nothing that matters, since no state lives there. Subscribers keep polling
// the backend as the fallback, as the persistence.Notifier contract requires.
package redisnotify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stent-go/stent/persistence"
)

var _ persistence.Notifier = (*Notifier)(nil)

const (
	// subscriberBuffer is how many notifications wait for a slow
	// subscriber before newer ones are dropped.
	subscriberBuffer = 1024
	// sendTimeout is how long go-redis waits for room in a subscriber's
	// buffer before it drops a notification.
	sendTimeout = 100 * time.Millisecond
	// healthCheckInterval is how long a subscription may stay silent
	// before go-redis pings Redis and reconnects if it does not answer.
	healthCheckInterval = 3 * time.Second
)

// Notifier is a persistence.Notifier on Redis pub/sub. Every notifier with
// the same channel prefix on the same Redis shares one channel, prefix +
// "notify"; applications sharing a Redis use distinct prefixes. Each
// Subscribe holds one Redis connection, which go-redis re-establishes (and
// resubscribes) after a connection loss or a Redis restart.
type Notifier struct {
	client  *redis.Client
	channel string

	mu     sync.Mutex
	closed bool
	errs   []error       // from closing subscriptions, returned by Close
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
}

// New returns a Notifier on the Redis server opts describes (for a plain
// address, &redis.Options{Addr: "127.0.0.1:6379"}), publishing and
// subscribing on channelPrefix + "notify". It does not connect until used,
// so an unreachable Redis is reported by Publish and Subscribe. It returns
// an error when opts is nil or channelPrefix is empty.
func New(opts *redis.Options, channelPrefix string) (*Notifier, error) {
	if opts == nil {
		return nil, errors.New("creating redis notifier: nil options")
	}
	if channelPrefix == "" {
		return nil, errors.New("creating redis notifier: empty channel prefix")
	}
	return &Notifier{
		client:  redis.NewClient(opts),
		channel: channelPrefix + "notify",
		done:    make(chan struct{}),
	}, nil
}

// Channel returns the Redis channel the notifier uses.
func (n *Notifier) Channel() string { return n.channel }

// Publish sends a notification to the notifier's channel. The topic must
// not contain ':'. It returns persistence.ErrClosed after Close, and an
// error naming the server when Redis cannot be reached.
func (n *Notifier) Publish(ctx context.Context, note persistence.Notification) error {
	if n.isClosed() {
		return persistence.ErrClosed
	}
	if strings.Contains(note.Topic, ":") {
		return fmt.Errorf("publishing notification: topic %q contains ':'", note.Topic)
	}
	if err := n.client.Publish(ctx, n.channel, note.Topic+":"+note.Payload).Err(); err != nil {
		return fmt.Errorf("publishing %s notification to redis at %s: %w", note.Topic, n.client.Options().Addr, err)
	}
	return nil
}

// Subscribe delivers the notifications of the notifier's channel to fn, from
// one goroutine in the order received, until ctx ends or Close. It returns
// once Redis has confirmed the subscription, or an error naming the server
// when it cannot. It returns persistence.ErrClosed after Close.
func (n *Notifier) Subscribe(ctx context.Context, fn func(persistence.Notification)) error {
	if n.isClosed() {
		return persistence.ErrClosed
	}
	ps := n.client.Subscribe(ctx, n.channel)
	if _, err := ps.Receive(ctx); err != nil {
		closeErr := ps.Close()
		return errors.Join(fmt.Errorf("subscribing to %s on redis at %s: %w", n.channel, n.client.Options().Addr, err), closeErr)
	}
	ch := ps.Channel(
		redis.WithChannelSize(subscriberBuffer),
		redis.WithChannelSendTimeout(sendTimeout),
		redis.WithChannelHealthCheckInterval(healthCheckInterval),
	)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return errors.Join(persistence.ErrClosed, ps.Close())
	}
	n.wg.Add(1) // under mu, so never after Close's Wait has begun
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer n.closeSubscription(ps)
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.done:
				return
			case msg, ok := <-ch:
				if !ok {
					return
				}
				topic, payload, found := strings.Cut(msg.Payload, ":")
				if found && ctx.Err() == nil && !n.isClosed() {
					fn(persistence.Notification{Topic: topic, Payload: payload})
				}
			}
		}
	}()
	return nil
}

// closeSubscription closes ps, keeping its error for Close to return.
func (n *Notifier) closeSubscription(ps *redis.PubSub) {
	if err := ps.Close(); err != nil {
		n.mu.Lock()
		n.errs = append(n.errs, fmt.Errorf("closing subscription to %s: %w", n.channel, err))
		n.mu.Unlock()
	}
}

func (n *Notifier) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// Close ends every subscription, waits for their goroutines to return, and
// closes the Redis client. It is idempotent; the first call returns the
// errors of closing the subscriptions and the client, if any.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	n.mu.Unlock()
	n.wg.Wait()
	if err := n.client.Close(); err != nil {
		n.errs = append(n.errs, fmt.Errorf("closing redis client: %w", err))
	}
	return errors.Join(n.errs...)
}
