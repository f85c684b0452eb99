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
	e := fromContext(ctx)
	if e == nil {
		return nil, false, errors.New("stent: WaitForSignal called outside an execution")
	}
	if name == "" {
		return nil, false, errors.New("stent: WaitForSignal needs a signal name")
	}
	pos, ent, err := e.begin(persistence.EntrySignal, name)
	if err != nil {
		return nil, false, err
	}
	if ent != nil && ent.Done {
		return ent.Output, ent.Output != nil, nil
	}
	var fireAt time.Time
	switch {
	case ent != nil:
		fireAt = ent.FireAt
	case timeout > 0:
		fireAt = time.Now().UTC().Add(timeout)
	}
	intent := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntrySignal, Name: name, FireAt: fireAt}
	recorded := ent != nil
	inMemoryUntil := time.Now().Add(e.rt.cfg.PassivateAfter)
	for {
		sig, err := e.rt.backend.NextSignal(ctx, e.id, name)
		switch {
		case err == nil:
			out := sig.Payload
			if out == nil {
				out = []byte("null")
			}
			done := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntrySignal, Name: name,
				FireAt: fireAt, Done: true, Output: out}
			werr := e.write(ctx, &persistence.Commit{ExecutionID: e.id, Journal: []*persistence.JournalEntry{done},
				ConsumeSignal: sig.ID, ConsumePos: pos})
			if errors.Is(werr, persistence.ErrNotFound) {
				continue // consumed meanwhile by an earlier activation: look again
			}
			if werr != nil {
				return nil, false, werr
			}
			e.remember(done)
			return out, true, nil
		case !errors.Is(err, persistence.ErrNotFound):
			if ctx.Err() != nil {
				return nil, false, ctxError(ctx)
			}
			return nil, false, fmt.Errorf("reading signals of %s: %w", e.id, err)
		}
		if !fireAt.IsZero() && !time.Now().Before(fireAt) {
			done := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntrySignal, Name: name,
				FireAt: fireAt, Done: true}
			if err := e.write(ctx, &persistence.Commit{ExecutionID: e.id, Journal: []*persistence.JournalEntry{done}}); err != nil {
				return nil, false, err
			}
			e.remember(done)
			return nil, false, nil
		}
		wait := time.Until(inMemoryUntil)
		if !fireAt.IsZero() {
			wait = min(wait, time.Until(fireAt))
		}
		if wait > 0 {
			// Look again at least every poll interval: a signal sent by a
			// process without a notifier pokes nobody.
			wait = min(wait, e.rt.cfg.PollInterval)
		}
		if wait <= 0 {
			e.mu.Lock()
			open := e.hasOpenChildren()
			e.mu.Unlock()
			if !open {
				var rec *persistence.JournalEntry
				if !recorded {
					rec = intent
				}
				return nil, false, e.passivateForSignal(ctx, rec, name, fireAt)
			}
			wait = e.rt.cfg.PollInterval // children still report here: wait in memory
		}
		t := time.NewTimer(wait)
		select {
		case <-e.signalC:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false, ctxError(ctx)
		}
		t.Stop()
	}
}

// passivateForSignal records the wait (intent may be nil on a replay),
// releases the lease and ends the body's goroutine. A signal that arrives
// meanwhile is not missed: the backend makes the execution due at once
// when one is pending (Update.WaitSignal), and SendSignal makes a waiting
// execution due.
func (e *execution) passivateForSignal(ctx context.Context, intent *persistence.JournalEntry, name string, fireAt time.Time) error {
	u := &persistence.Update{Status: persistence.StatusWaiting, WaitSignal: name, Release: true}
	wakeAt := fireAt
	if dl := e.rec.Deadline; !dl.IsZero() && (wakeAt.IsZero() || dl.Before(wakeAt)) {
		wakeAt = dl
	}
	if !wakeAt.IsZero() {
		u.SetRunAt, u.RunAfter = true, max(time.Until(wakeAt), 0)
	}
	c := &persistence.Commit{ExecutionID: e.id, Update: u}
	if intent != nil {
		c.Journal = []*persistence.JournalEntry{intent}
	}
	if err := e.write(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	e.passivated = true
	e.mu.Unlock()
	e.close(errPassivated)
	if !wakeAt.IsZero() {
		e.rt.kickAt(time.Until(wakeAt))
	}
	e.rt.Kick() // a signal that raced the passivation made it due
	runtime.Goexit()
	return nil
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
	if e := rt.lookupActive(id); e != nil {
		e.signalled()
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
			if x.ParentID != "" {
				if p := rt.lookupActive(x.ParentID); p != nil {
					p.deliver(&messages.ChildOutcome{ParentId: x.ParentID, Position: int32(x.ParentPos), ChildId: x.ID,
						Function: x.Function, Error: infoToProto(withIdentity(x))})
				}
			} else {
				rt.publish(persistence.TopicDone, x.ID)
				rt.broadcastFinished(x.ID)
			}
			rt.finished(x.ID, o)
			continue
		}
		if e := rt.lookupActive(x.ID); e != nil {
			e.cancel()
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
		if e := rt.lookupActive(id); e != nil {
			e.cancel()
		}
	}
}
