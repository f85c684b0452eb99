package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// WaitSignal waits durably for the next signal called name sent to the
// execution of ctx and returns its payload (JSON). With timeout > 0 the
// wait ends after timeout, durably, with ok false. A signal sent before the
// wait is kept and consumed by it; each signal is consumed once, in the
// order sent. The wait first lasts in memory (PassivateAfter), then the
// execution passivates: it holds no actor or goroutine until a signal or
// its timeout wakes it.
func WaitSignal(ctx context.Context, name string, timeout time.Duration) (payload []byte, ok bool, err error) {
	h := fromContext(ctx)
	if h == nil {
		return nil, false, errors.New("stent: WaitForSignal called outside an execution")
	}
	if name == "" {
		return nil, false, errors.New("stent: WaitForSignal needs a signal name")
	}
	sp := h.startOp(ctx, opSignal, name)
	defer func() { endSpan(sp, err) }() // also on a passivation's Goexit
	pos, ents, err := h.begin(persistence.EntrySignal, name, 1, false)
	if err != nil {
		return nil, false, err
	}
	ent := ents[0]
	opAt(sp, pos, ent != nil && ent.Done)
	if ent != nil && ent.Done {
		return ent.Output, ent.Output != nil, nil
	}
	var fireAt time.Time
	switch {
	case ent != nil:
		fireAt = ent.FireAt
	case timeout > 0:
		fireAt = h.rt.Now().UTC().Add(timeout)
	}
	intent := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntrySignal, Name: name, FireAt: fireAt}
	recorded := ent != nil
	rt := h.rt
	inMemoryUntil := time.Now().Add(rt.cfg.PassivateAfter)
	for {
		sig, err := rt.backend.NextSignal(ctx, h.id, name)
		switch {
		case err == nil:
			out := sig.Payload
			if out == nil {
				out = []byte("null")
			}
			done := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntrySignal, Name: name,
				FireAt: fireAt, Done: true, Output: out}
			werr := h.write(&persistence.Commit{ExecutionID: h.id, Journal: []*persistence.JournalEntry{done},
				ConsumeSignal: sig.ID, ConsumePos: pos}, done)
			if errors.Is(werr, persistence.ErrNotFound) {
				continue // consumed meanwhile by an earlier activation: look again
			}
			if werr != nil {
				return nil, false, werr
			}
			return out, true, nil
		case !errors.Is(err, persistence.ErrNotFound):
			if ctx.Err() != nil {
				return nil, false, ctxError(ctx)
			}
			return nil, false, fmt.Errorf("reading signals of %s: %w", h.id, err)
		}
		if !fireAt.IsZero() && !rt.Now().Before(fireAt) {
			done := &persistence.JournalEntry{ExecutionID: h.id, Position: pos, Kind: persistence.EntrySignal, Name: name,
				FireAt: fireAt, Done: true}
			if err := h.write(&persistence.Commit{ExecutionID: h.id, Journal: []*persistence.JournalEntry{done}}, done); err != nil {
				return nil, false, err
			}
			return nil, false, nil
		}
		wait := time.Until(inMemoryUntil)
		if !fireAt.IsZero() {
			wait = min(wait, rt.until(fireAt))
		}
		if wait > 0 {
			// Look again at least every poll interval: a signal sent by a
			// process without a notifier pokes nobody.
			wait = min(wait, rt.cfg.PollInterval)
		}
		if wait <= 0 {
			var rec *persistence.JournalEntry
			if !recorded {
				rec = intent
			}
			stay, err := h.passivateForSignal(rec, name, fireAt)
			if err != nil {
				return nil, false, err
			}
			if stay {
				// Children still report here: wait in memory.
				if rec != nil {
					if err := h.write(&persistence.Commit{ExecutionID: h.id, Journal: []*persistence.JournalEntry{rec}}, rec); err != nil {
						return nil, false, err
					}
					recorded = true
				}
				wait = rt.cfg.PollInterval
			}
		}
		tc, stop := rt.newTimer(wait)
		waited := rt.waits.wait(fireAt)
		select {
		case <-h.signalC:
		case <-tc:
		case <-ctx.Done():
			stop()
			waited()
			return nil, false, ctxError(ctx)
		}
		stop()
		waited()
	}
}

// passivateForSignal records the wait (intent may be nil on a replay),
// releases the lease and ends the body's goroutine; it reports stay, and
// does nothing, while children started and not awaited are open. A signal
// that arrives meanwhile is not missed: the backend makes the execution due
// at once when one is pending (Update.WaitSignal), and SendSignal makes a
// waiting execution due.
func (h *handle) passivateForSignal(intent *persistence.JournalEntry, name string, fireAt time.Time) (bool, error) {
	u := &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: name, Release: true}
	wakeAt := fireAt
	if dl := h.rec.Deadline; !dl.IsZero() && (wakeAt.IsZero() || dl.Before(wakeAt)) {
		wakeAt = dl
	}
	if !wakeAt.IsZero() {
		u.SetRunAt, u.RunAfter = true, max(h.rt.until(wakeAt), 0)
	}
	c := &persistence.Commit{ExecutionID: h.id, Update: u}
	var remember []*persistence.JournalEntry
	if intent != nil {
		c.Journal = []*persistence.JournalEntry{intent}
		remember = c.Journal
	}
	m := &opWrite{c: c, remember: remember, passivate: true, reply: newReply()}
	r := h.ask(m, m.reply)
	if r.stay || r.err != nil {
		return r.stay, r.err
	}
	if !wakeAt.IsZero() {
		h.rt.kickAt(h.rt.until(wakeAt))
	}
	h.rt.Kick() // a signal that raced the passivation made it due
	runtime.Goexit()
	return false, nil
}

// Signal records a signal for execution id and wakes its wait, on this node
// or, through the notifier, on the node that runs it. maxPending caps the
// signals waiting to be consumed (0: no cap).
func (rt *Runtime) Signal(ctx context.Context, id, name string, payload []byte, maxPending int) error {
	rec, err := rt.backend.SendSignal(ctx, &persistence.Signal{ID: NewID(), ExecutionID: id, Name: name, Payload: payload}, maxPending)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return fmt.Errorf("signal %q to %s: %w", name, id, ErrNotFound)
	case errors.Is(err, persistence.ErrFinished):
		return fmt.Errorf("signal %q to %s: %w", name, id, ErrFinished)
	case errors.Is(err, persistence.ErrLimit):
		return err // names the execution and the limit
	case err != nil:
		return fmt.Errorf("sending signal %q to %s: %w", name, id, err)
	}
	if pid := rt.pidOf(id); pid != nil {
		rt.system.Root.Send(pid, &messages.Wake{ExecutionId: id})
		return nil
	}
	if !rt.tell(rec, &messages.Wake{ExecutionId: id}) && rec.Status == persistence.StatusWaiting && rt.Serves(rec.Queue) {
		rt.Kick()
	}
	rt.publish(persistence.TopicExecution, id)
	return nil
}

// Cancel cancels execution id and everything below it: executions no node
// runs end canceled at once (in the database); those running on this node
// have their bodies' contexts cancelled before Cancel returns; those running
// elsewhere are told through the notifier and, failing that, find the
// request when they renew their leases.
func (rt *Runtime) Cancel(ctx context.Context, id string) error {
	touched, err := rt.backend.RequestCancel(ctx, id)
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		return fmt.Errorf("canceling %s: %w", id, ErrNotFound)
	case errors.Is(err, persistence.ErrFinished):
		return fmt.Errorf("canceling %s: %w", id, ErrFinished)
	case err != nil:
		return fmt.Errorf("canceling %s: %w", id, err)
	}
	for _, x := range touched {
		if x.Status.Terminal() {
			o := &Outcome{Status: x.Status, Error: x.Error, Function: x.Function, Attempts: x.Attempts}
			rt.metrics.ended(x, o)
			if x.ParentID != "" {
				if p := rt.pidOf(x.ParentID); p != nil {
					rt.system.Root.Send(p, &messages.ChildOutcome{ParentId: x.ParentID, Position: int32(x.ParentPos), ChildId: x.ID,
						Function: x.Function, Error: infoToProto(withIdentity(x))})
				}
			} else {
				rt.publish(persistence.TopicDone, x.ID)
				rt.broadcastFinished(x.ID)
			}
			rt.finished(x.ID, o)
			continue
		}
		if pid := rt.pidOf(x.ID); pid != nil {
			// Asked, not told: its body's context is canceled when the
			// answer comes (a stopped actor's dead letter answers too).
			_, _ = rt.system.Root.RequestFuture(pid, &cancelExecution{}, 5*time.Second).Result()
		} else if x.Owner == rt.cfg.NodeID {
			// Started or claimed here, its actor not spawned yet: the
			// supervisor cancels it after spawning it.
			rt.system.Root.Send(rt.sup, &cancelLocal{id: x.ID})
		} else {
			rt.tell(x, &messages.CancelExecution{ExecutionId: x.ID})
			rt.publish(persistence.TopicExecution, x.ID)
		}
	}
	return nil
}

// withIdentity returns x's error with the execution it belongs to filled in.
func withIdentity(x *persistence.Execution) *persistence.ErrorInfo {
	info := &persistence.ErrorInfo{Message: "canceled", Kind: persistence.ErrorKindCanceled, NonRetryable: true}
	if x.Error != nil {
		c := *x.Error
		info = &c
	}
	info.Function, info.ExecutionID, info.Attempts = x.Function, x.ID, x.Attempts
	return info
}

// checkCancels cancels the activations on this node whose cancel was
// requested elsewhere.
func (rt *Runtime) checkCancels(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	canceled, err := rt.backend.CancelRequested(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Warn("reading cancel requests", slog.Any("error", err))
		}
		return
	}
	for _, id := range canceled {
		if pid := rt.pidOf(id); pid != nil {
			rt.system.Root.Send(pid, &cancelExecution{})
		}
	}
}
