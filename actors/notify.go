package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// publishQueue bounds the notifications waiting for the publisher; past it
// they are dropped (a notification is only a hint: pollers find the work).
const publishQueue = 4096

// startNotifications subscribes to the notifier and starts the publisher.
func (rt *Runtime) startNotifications() error {
	ctx, cancel := context.WithTimeout(rt.baseCtx, 10*time.Second)
	defer cancel()
	if err := rt.cfg.Notifier.Subscribe(rt.baseCtx, rt.onNotification); err != nil {
		return fmt.Errorf("subscribing to notifications: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("subscribing to notifications: %w", ctx.Err())
	}
	rt.pub = make(chan persistence.Notification, publishQueue)
	rt.pubDone = make(chan struct{})
	go rt.publishLoop()
	return nil
}

// onNotification handles a wake-up from another process.
func (rt *Runtime) onNotification(n persistence.Notification) {
	switch n.Topic {
	case persistence.TopicQueue:
		if rt.Serves(n.Payload) {
			rt.Kick()
		}
	case persistence.TopicExecution:
		if pid := rt.pidOf(n.Payload); pid != nil {
			rt.system.Root.Send(pid, &messages.Wake{ExecutionId: n.Payload})
			go rt.checkCancels(rt.baseCtx, []string{n.Payload})
		} else {
			rt.Kick()
		}
	case persistence.TopicDone:
		rt.poke(n.Payload)
	}
}

// publish queues a notification for other processes, without waiting.
func (rt *Runtime) publish(topic, payload string) {
	if rt.pub == nil {
		return
	}
	select {
	case rt.pub <- persistence.Notification{Topic: topic, Payload: payload}:
	default:
		rt.log.Debug("dropping a notification: the queue is full", slog.String("topic", topic))
	}
}

// Dispatch tells the nodes that new execution id of function on queue
// exists: this node's claim loop, the serving processes through the
// notifier, and, in a cluster, when due is set, the member placement gives
// for it.
func (rt *Runtime) Dispatch(id, queue, function string, due bool) {
	rt.Kick()
	rt.publish(persistence.TopicQueue, queue)
	if due {
		rt.place(id, queue, function)
	}
}

func (rt *Runtime) publishLoop() {
	defer close(rt.pubDone)
	for {
		select {
		case <-rt.baseCtx.Done():
			return
		case n := <-rt.pub:
			ctx, cancel := context.WithTimeout(rt.baseCtx, 5*time.Second)
			if err := rt.cfg.Notifier.Publish(ctx, n); err != nil && rt.baseCtx.Err() == nil {
				rt.log.Debug("publishing a notification", slog.String("topic", n.Topic), slog.Any("error", err))
			}
			cancel()
		}
	}
}
