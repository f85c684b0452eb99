package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/persistence"
)

var _ persistence.Notifier = (*Notifier)(nil)

const (
	// maxNotifyPayload is PostgreSQL's NOTIFY payload limit (8000 bytes)
	// less room for the topic.
	maxNotifyPayload = 7900
	// subscriberBuffer is how many notifications wait for a slow
	// subscriber before newer ones are dropped.
	subscriberBuffer = 1024
	// listenHealthInterval is how long the listening connection may stay
	// silent before it is pinged, so that a dead peer is noticed.
	listenHealthInterval = 30 * time.Second
	// pingTimeout bounds that ping.
	pingTimeout = 5 * time.Second
)

// Notifier is a persistence.Notifier on PostgreSQL LISTEN/NOTIFY. Every
// notifier of backends with the same schema shares one channel, named after
// the schema, so applications in other schemas of the database do not see
// each other's notifications. Publishing uses the backend's pool; listening
// uses one dedicated connection, opened by the first Subscribe and
// reconnected with backoff after a connection loss (notifications sent
// while it is down are lost, as the Notifier contract allows).
type Notifier struct {
	b       *Backend
	channel string
	logger  *slog.Logger

	mu        sync.Mutex
	closed    bool
	subs      map[*subscriber]struct{}
	listening bool          // the listener holds a connection with LISTEN done
	changed   chan struct{} // closed and replaced when listening or lastErr change
	lastErr   error         // the listener's latest connection error
	started   bool

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// subscriber is one Subscribe call: a queue drained by its own goroutine.
type subscriber struct {
	ch chan persistence.Notification
}

// Notifier returns a new Notifier on the backend's database and schema. It
// does not connect until the first Subscribe. Close it before the backend.
func (b *Backend) Notifier() *Notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &Notifier{
		b:       b,
		channel: notifyChannel(b.schema),
		logger:  b.logger,
		subs:    map[*subscriber]struct{}{},
		changed: make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// notifyChannel names the LISTEN channel of schema, within PostgreSQL's
// 63-byte limit on identifiers.
func notifyChannel(schema string) string {
	c := "stent_notify." + schema
	if len(c) <= maxIdentifierLength {
		return c
	}
	h := fnv.New64a()
	h.Write([]byte(schema)) // hash.Hash.Write never fails
	return "stent_notify." + strconv.FormatUint(h.Sum64(), 16)
}

// Channel returns the name of the PostgreSQL channel the notifier uses.
func (n *Notifier) Channel() string { return n.channel }

// Publish sends a notification with pg_notify. The topic must not contain
// ':' and the payload must be under 7900 bytes, without NUL. It returns
// persistence.ErrClosed after Close.
func (n *Notifier) Publish(ctx context.Context, note persistence.Notification) error {
	if n.isClosed() {
		return persistence.ErrClosed
	}
	msg, err := encodeNotification(note)
	if err != nil {
		return err
	}
	err = n.b.do(ctx, true, func(ctx context.Context) error {
		_, err := n.b.pool.Exec(ctx, "SELECT pg_notify($1, $2)", n.channel, msg)
		return err
	})
	if err != nil {
		return fmt.Errorf("publishing %s notification: %w", note.Topic, interpretError(err))
	}
	return nil
}

func encodeNotification(note persistence.Notification) (string, error) {
	if strings.Contains(note.Topic, ":") {
		return "", fmt.Errorf("publishing notification: topic %q contains ':'", note.Topic)
	}
	if len(note.Payload) > maxNotifyPayload {
		return "", fmt.Errorf("publishing %s notification: payload of %d bytes exceeds %d", note.Topic, len(note.Payload), maxNotifyPayload)
	}
	return note.Topic + ":" + note.Payload, nil
}

func decodeNotification(s string) (persistence.Notification, bool) {
	topic, payload, ok := strings.Cut(s, ":")
	return persistence.Notification{Topic: topic, Payload: payload}, ok
}

// Subscribe delivers the notifications of the notifier's channel to fn, from
// one goroutine in the order received, until ctx ends or Close. It returns
// once the listening connection is established, or the connection error
// when establishing it fails; later connection losses are retried in the
// background, losing the notifications sent meanwhile. It returns
// persistence.ErrClosed after Close.
func (n *Notifier) Subscribe(ctx context.Context, fn func(persistence.Notification)) error {
	s := &subscriber{ch: make(chan persistence.Notification, subscriberBuffer)}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return persistence.ErrClosed
	}
	n.subs[s] = struct{}{}
	if !n.started {
		n.started = true
		n.wg.Add(1)
		go n.listen()
	}
	n.mu.Unlock()

	if err := n.waitListening(ctx); err != nil {
		n.remove(s)
		return err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return persistence.ErrClosed
	}
	n.wg.Add(1) // under mu, so never after Close's Wait has begun
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer n.remove(s)
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.ctx.Done():
				return
			case note := <-s.ch:
				if ctx.Err() == nil && n.ctx.Err() == nil {
					fn(note)
				}
			}
		}
	}()
	return nil
}

// waitListening waits until the listener is established or has failed.
func (n *Notifier) waitListening(ctx context.Context) error {
	n.mu.Lock()
	lastErr := n.lastErr
	for !n.listening {
		if n.closed {
			n.mu.Unlock()
			return persistence.ErrClosed
		}
		if n.lastErr != lastErr && n.lastErr != nil {
			err := n.lastErr
			n.mu.Unlock()
			return fmt.Errorf("subscribing to %s: %w", n.channel, err)
		}
		changed := n.changed
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
		n.mu.Lock()
	}
	n.mu.Unlock()
	return nil
}

func (n *Notifier) remove(s *subscriber) {
	n.mu.Lock()
	delete(n.subs, s)
	n.mu.Unlock()
}

// setState records the listener's state and wakes waitListening.
func (n *Notifier) setState(listening bool, err error) {
	n.mu.Lock()
	n.listening = listening
	if err != nil {
		n.lastErr = err
	}
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// listen holds the listening connection until Close, reconnecting with
// backoff after a loss.
func (n *Notifier) listen() {
	defer n.wg.Done()
	cfg := n.b.pool.Config().ConnConfig
	for attempt := 1; ; {
		err := n.listenOnce(cfg, func() { attempt = 1 })
		n.setState(false, err)
		if n.ctx.Err() != nil {
			return
		}
		n.logger.Warn("postgres notification listener lost its connection, reconnecting",
			slog.String("channel", n.channel), slog.Int("attempt", attempt), slog.String("error", err.Error()))
		delay := backoff.Delay(attempt)
		if attempt == 1 {
			delay = 0
		}
		attempt++
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// listenOnce connects, listens and dispatches until the connection fails or
// Close. It calls established once LISTEN is done.
func (n *Notifier) listenOnce(cfg *pgx.ConnConfig, established func()) error {
	conn, err := pgx.ConnectConfig(n.ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to postgres at %s: %w", serverAddr(cfg), err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		if err := conn.Close(ctx); err != nil {
			n.logger.Debug("closing postgres listener connection", slog.String("error", err.Error()))
		}
	}()
	if _, err := conn.Exec(n.ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listening on %s: %w", n.channel, err)
	}
	established()
	n.setState(true, nil)
	for {
		ctx, cancel := context.WithTimeout(n.ctx, listenHealthInterval)
		note, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			if msg, ok := decodeNotification(note.Payload); ok {
				n.dispatch(msg)
			}
		case n.ctx.Err() != nil:
			return n.ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			ctx, cancel := context.WithTimeout(n.ctx, pingTimeout)
			err := conn.Ping(ctx)
			cancel()
			if err != nil {
				return fmt.Errorf("pinging listener connection: %w", err)
			}
		default:
			return err
		}
	}
}

// dispatch hands note to every subscriber, dropping it for those whose
// queue is full: a notification is only a hint.
func (n *Notifier) dispatch(note persistence.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		select {
		case s.ch <- note:
		default:
		}
	}
}

func (n *Notifier) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// Close ends every subscription, waits for the subscribers' goroutines to
// return, and closes the listening connection. It is idempotent and always
// returns nil.
func (n *Notifier) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	return nil
}
