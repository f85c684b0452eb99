package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"time"

	"github.com/stent-go/stent/persistence"
)

// CallOptions are the per-call options of a child or root start.
type CallOptions struct {
	// Queue overrides the function's queue when not "".
	Queue string
	// Priority orders executions waiting in a queue; higher first.
	Priority int
	// Delay postpones the start.
	Delay time.Duration
	// MaxDuration is a deadline for the whole execution, children included.
	MaxDuration time.Duration
	// IdempotencyKey makes a root start idempotent.
	IdempotencyKey string
	// Tags are added to the function's for this call (NormalizeTags).
	Tags []string
}

// Future is a child started by an execution.
type Future struct {
	e       *execution
	pos     int
	childID string
}

// ID returns the child's execution ID.
func (f *Future) ID() string { return f.childID }

// begin takes the next journal position for an operation of kind and name
// and returns what the journal holds there (nil when it is new).
func (e *execution) begin(kind persistence.EntryKind, name string) (int, *persistence.JournalEntry, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed != nil {
		return 0, nil, e.closed
	}
	if e.rt.isStopping() {
		return 0, nil, errShutdown
	}
	if e.canceled {
		return 0, nil, fmt.Errorf("execution %s: %w", e.id, ErrCanceled)
	}
	pos := e.next
	e.next++
	ent := e.entries[pos]
	if ent != nil && (ent.Kind != kind || ent.Name != name) {
		err := fmt.Errorf("%w: position %d of %s recorded %s %q, the replay issued %s %q",
			ErrNonDeterministic, pos, e.id, ent.Kind, ent.Name, kind, name)
		if e.nondet == nil {
			e.nondet = &persistence.ErrorInfo{Message: err.Error(), Kind: persistence.ErrorKindNonDeterministic, NonRetryable: true}
		}
		return 0, nil, err
	}
	return pos, ent, nil
}

// write applies a commit made by the body, adding a snapshot when enough
// journal entries have been written since the last one.
func (e *execution) write(ctx context.Context, c *persistence.Commit) error {
	if err := e.materialize(ctx); err != nil {
		return err
	}
	snapPos := -1
	e.mu.Lock()
	e.sinceSnap += len(c.Journal)
	if e.sinceSnap >= e.rt.cfg.SnapshotEvery || (c.Update != nil && c.Update.Release) {
		snapPos = e.attachSnapshot(c)
	}
	c.Epoch = e.epoch
	e.mu.Unlock()
	if err := e.apply(ctx, c); err != nil {
		return err
	}
	if snapPos >= 0 {
		e.mu.Lock()
		e.snapAt, e.sinceSnap = snapPos, 0
		e.mu.Unlock()
	}
	return nil
}

// attachSnapshot adds the completed prefix of the journal, plus the entries
// c writes, to c as a snapshot when it reaches past the stored one. It
// returns the snapshot's position or -1. e.mu is held.
func (e *execution) attachSnapshot(c *persistence.Commit) int {
	view := make(map[int]*persistence.JournalEntry, len(e.entries)+len(c.Journal))
	for p, ent := range e.entries {
		view[p] = ent
	}
	for _, ent := range c.Journal {
		view[ent.Position] = ent
	}
	prefix := donePrefix(view)
	if len(prefix)-1 <= e.snapAt {
		return -1
	}
	data, pos := encodeSnapshot(e.id, prefix)
	if data == nil {
		return -1
	}
	c.Snapshot = &persistence.Snapshot{ExecutionID: e.id, Position: pos, Data: data}
	return pos
}

// remember puts entries written by the body into the in-memory journal.
func (e *execution) remember(entries ...*persistence.JournalEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ent := range entries {
		if cur, ok := e.entries[ent.Position]; ok && cur.Done && !ent.Done {
			continue
		}
		e.entries[ent.Position] = ent
	}
}

func (e *execution) attempt() int { return e.rec.Attempts + 1 }

func (e *execution) childID(pos int) string {
	if a := e.attempt(); a > 1 {
		return e.id + "." + strconv.Itoa(pos) + "-" + strconv.Itoa(a)
	}
	return e.id + "." + strconv.Itoa(pos)
}

// StartChildren starts one child of fn per input, at consecutive journal
// positions, in one write. Children already recorded (a replay) are not
// started again. It must be called from an execution body.
func StartChildren(ctx context.Context, fn *Function, inputs [][]byte, opts CallOptions) ([]*Future, error) {
	e := fromContext(ctx)
	if e == nil {
		return nil, errors.New("actors: StartChildren outside an execution")
	}
	rt := e.rt
	if err := e.checkLease(ctx); err != nil {
		return nil, err
	}
	futures := make([]*Future, len(inputs))
	var creates []*persistence.Execution
	var intents []*persistence.JournalEntry
	var virtuals []*activate
	var idempotents []*persistence.Execution
	queue := opts.Queue
	if queue == "" {
		queue = fn.Queue
	}
	for i, in := range inputs {
		if err := rt.CheckPayload(fn.Name, "input", len(in)); err != nil {
			return nil, NonRetryable(fmt.Errorf("starting call %d of %s: %w", i, e.id, err))
		}
	}
	tags := fn.CallTags(opts.Tags)
	local := rt.Serves(queue) && rt.Covers(tags) && opts.Delay <= 0 && rt.Serving()
	now := time.Now().UTC()
	deadline := e.rec.Deadline
	if opts.MaxDuration > 0 {
		if d := now.Add(opts.MaxDuration); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	rootID := e.rec.RootID
	if rootID == "" {
		rootID = e.id
	}
	for i, in := range inputs {
		pos, ent, err := e.begin(persistence.EntryCall, fn.Name)
		if err != nil {
			return nil, err
		}
		if ent != nil {
			futures[i] = &Future{e: e, pos: pos, childID: ent.ChildID}
			continue
		}
		id := e.childID(pos)
		if err := rt.tagExecutions(ctx, tags, id); err != nil {
			return nil, fmt.Errorf("starting %q at position %d of %s: %w", fn.Name, pos, e.id, err)
		}
		futures[i] = &Future{e: e, pos: pos, childID: id}
		child := &persistence.Execution{
			ID: id, Function: fn.Name, Queue: queue, Status: persistence.StatusPending, Input: in,
			ParentID: e.id, ParentPos: pos, RootID: rootID, Priority: opts.Priority, Version: fn.Version,
			Deadline: deadline, CreatedAt: now, UpdatedAt: now,
		}
		if opts.Delay > 0 {
			child.RunAt = now.Add(opts.Delay)
		}
		intent := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntryCall, Name: fn.Name, ChildID: id}
		intents = append(intents, intent)
		if fn.Idempotent {
			// Unique by its input across every execution: insert it (or
			// find the one that exists) before the intent names it.
			child.IdempotencyKey = fn.IdempotencyKey(in)
			if local {
				child.Status, child.Owner, child.Epoch = persistence.StatusRunning, rt.cfg.NodeID, 1
				child.LeaseTTL = rt.cfg.LeaseTTL // from the backend's clock
			}
			got, created, err := rt.backend.CreateExecution(ctx, child)
			if err != nil {
				return nil, fmt.Errorf("starting %q at position %d of %s: %w", fn.Name, pos, e.id, err)
			}
			intent.ChildID, futures[i].childID = got.ID, got.ID
			switch {
			case created && local:
				idempotents = append(idempotents, got)
			case created:
				rt.Kick()
				rt.publish(persistence.TopicQueue, queue)
				rt.place(got.ID, queue, fn.Name)
			case !created && got.Status.Terminal():
				intent.Done, intent.Output = true, got.Output
				if got.Status != persistence.StatusCompleted {
					intent.Error = withIdentity(got)
				}
			}
			continue
		}
		if local {
			// Run it here at once, in memory: its row is written with its
			// first durable write or its outcome (see materialize). A crash
			// before then loses nothing recorded: the replay starts it again.
			child.Status = persistence.StatusRunning
			child.Owner = rt.cfg.NodeID
			child.Epoch = 1
			virtuals = append(virtuals, &activate{rec: child, fresh: true, virtual: &virtualChild{intent: intent}})
			continue
		}
		creates = append(creates, child)
	}
	if len(creates) > 0 || len(idempotents) > 0 || (fn.Idempotent && len(intents) > 0) {
		if err := e.write(ctx, &persistence.Commit{ExecutionID: e.id, Create: creates, Journal: intents}); err != nil {
			return nil, err
		}
	}
	e.remember(intents...)
	for _, c := range idempotents {
		rt.activate(c, true)
	}
	if len(virtuals) > 0 {
		epoch := e.currentEpoch()
		for _, a := range virtuals {
			a.virtual.parentEpoch = epoch
			rt.system.Root.Send(rt.sup, a)
		}
	}
	if len(creates) > 0 {
		if opts.Delay > 0 {
			rt.kickAt(opts.Delay)
		} else {
			rt.Kick()
			for _, c := range creates {
				rt.place(c.ID, queue, c.Function)
			}
		}
		rt.publish(persistence.TopicQueue, queue)
	}
	return futures, nil
}

// Await waits for the child's outcome: its JSON output, or an
// *ExecutionError. While it waits it checks the child's row now and then, in
// case the child finished on another node.
func (f *Future) Await(ctx context.Context) ([]byte, error) {
	e := f.e
	poll := e.rt.cfg.PollInterval
	missing := 0 // consecutive polls that found no row and no activation of the child
	for {
		e.mu.Lock()
		if e.closed != nil {
			err := e.closed
			e.mu.Unlock()
			return nil, err
		}
		ent := e.entries[f.pos]
		if ent != nil && ent.Done {
			e.mu.Unlock()
			// The body goes on with code outside any step: after a long
			// gap (the process was stopped while the child ran), make
			// sure it still runs here before it does.
			if err := e.checkLease(ctx); err != nil {
				return nil, err
			}
			return ent.Output, errorFromInfo(ent.Error)
		}
		w, ok := e.waiters[f.pos]
		if !ok {
			w = make(chan struct{})
			e.waiters[f.pos] = w
		}
		e.mu.Unlock()
		t := time.NewTimer(poll)
		select {
		case <-w:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, ctxError(ctx)
		case <-t.C:
			rec, err := e.rt.backend.GetExecution(ctx, f.childID)
			if f.dangling(err, &missing) {
				return nil, e.danglingChild(f)
			}
			if err == nil && rec.Status.Terminal() {
				info := rec.Error
				if info != nil && info.ExecutionID == "" {
					c := *info
					c.Function, c.ExecutionID, c.Attempts = rec.Function, rec.ID, rec.Attempts
					info = &c
				}
				e.remember(&persistence.JournalEntry{ExecutionID: e.id, Position: f.pos, Kind: persistence.EntryCall,
					Name: rec.Function, ChildID: rec.ID, Done: true, Output: rec.Output, Error: info})
			}
		}
	}
}

// danglingPolls is how many polls in a row must find neither the child's
// row nor an activation of it before the child counts as missing: an
// in-memory child that just finished is in neither for a moment, until its
// outcome reaches the parent.
const danglingPolls = 3

// dangling counts, in missing, the polls in a row where the child has no
// row (err from reading it) and no activation on this node (an in-memory
// child has no row yet), and reports when there were danglingPolls.
func (f *Future) dangling(err error, missing *int) bool {
	if !errors.Is(err, persistence.ErrNotFound) || f.e.rt.lookupActive(f.childID) != nil {
		*missing = 0
		return false
	}
	*missing++
	return *missing >= danglingPolls
}

// danglingChild fails the call at f, whose child's row does not exist (it
// was deleted, or the journal is corrupt): waiting would never end. The
// error is not retried (a retry would run the child again, though it may
// have done its work); replaying the dead letter does that on purpose.
func (e *execution) danglingChild(f *Future) error {
	e.rt.log.Error("a child named in the journal does not exist; failing the call",
		slog.String("execution_id", e.id), slog.Int("position", f.pos), slog.String("child_id", f.childID))
	return NonRetryable(fmt.Errorf("execution %s: the child %s at journal position %d does not exist (its row was deleted or never written); replay the dead letter to run the call again",
		e.id, f.childID, f.pos))
}

// ctxError is what a durable operation returns when the body's context ends.
func ctxError(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return cause
	}
	return ctx.Err()
}

// Sleep is a durable timer. Inside an execution it records its end in the
// journal; a sleep of PassivateAfter or more passivates the execution (its
// actor and goroutines end, and a timer in the database brings it back).
// Outside an execution it is a plain sleep that honours ctx.
func Sleep(ctx context.Context, d time.Duration) error {
	e := fromContext(ctx)
	if e == nil {
		return plainSleep(ctx, d)
	}
	pos, ent, err := e.begin(persistence.EntrySleep, "")
	if err != nil {
		return err
	}
	var fireAt time.Time
	if ent != nil {
		fireAt = ent.FireAt
	} else {
		if d <= 0 {
			return nil
		}
		fireAt = time.Now().UTC().Add(d)
		intent := &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntrySleep, FireAt: fireAt}
		if d >= e.rt.cfg.PassivateAfter {
			return e.passivate(ctx, intent, d)
		}
		if err := e.write(ctx, &persistence.Commit{ExecutionID: e.id, Journal: []*persistence.JournalEntry{intent}}); err != nil {
			return err
		}
		e.remember(intent)
	}
	remaining := time.Until(fireAt)
	if remaining <= 0 {
		return nil
	}
	if remaining >= e.rt.cfg.PassivateAfter {
		return e.passivate(ctx, nil, remaining)
	}
	return plainSleep(ctx, remaining)
}

// passivate records the sleep (intent may be nil on a replay), schedules the
// wake-up, releases the lease and ends the body's goroutine.
func (e *execution) passivate(ctx context.Context, intent *persistence.JournalEntry, d time.Duration) error {
	wakeIn := d
	if dl := e.rec.Deadline; !dl.IsZero() && time.Until(dl) < wakeIn {
		wakeIn = max(time.Until(dl), 0) // wake at the deadline to end as timed out
	}
	c := &persistence.Commit{ExecutionID: e.id, Update: &persistence.Update{
		Status: persistence.StatusWaiting, SetRunAt: true, RunAfter: wakeIn, Release: true,
	}}
	if intent != nil {
		c.Journal = []*persistence.JournalEntry{intent}
	}
	e.mu.Lock()
	if e.hasOpenChildren() {
		e.mu.Unlock()
		// Children started and not awaited still report to this activation:
		// stay in memory rather than miss them.
		if intent != nil {
			c.Update = nil
			if err := e.write(ctx, c); err != nil {
				return err
			}
			e.remember(intent)
		}
		return plainSleep(ctx, d)
	}
	e.mu.Unlock()
	if err := e.write(ctx, c); err != nil {
		return err
	}
	e.mu.Lock()
	e.passivated = true
	e.mu.Unlock()
	e.close(errPassivated)
	e.rt.kickAt(wakeIn)
	runtime.Goexit()
	return nil
}

// hasOpenChildren reports whether a started child has no outcome yet. e.mu is held.
func (e *execution) hasOpenChildren() bool {
	for _, ent := range e.entries {
		if ent.Kind == persistence.EntryCall && !ent.Done {
			return true
		}
	}
	return false
}

func plainSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	}
}

// Now returns a time recorded once in the journal and returned again on
// replay. Outside an execution it is time.Now.
func Now(ctx context.Context) (time.Time, error) {
	e := fromContext(ctx)
	if e == nil {
		return time.Now(), nil
	}
	pos, ent, err := e.begin(persistence.EntryNow, "")
	if err != nil {
		return time.Time{}, err
	}
	if ent != nil && ent.Done {
		var t time.Time
		if err := json.Unmarshal(ent.Output, &t); err != nil {
			return time.Time{}, fmt.Errorf("decoding the time recorded at position %d of %s: %w", pos, e.id, err)
		}
		return t, nil
	}
	t := time.Now().UTC()
	out, err := json.Marshal(t)
	if err != nil {
		return time.Time{}, fmt.Errorf("encoding a time: %w", err)
	}
	ent = &persistence.JournalEntry{ExecutionID: e.id, Position: pos, Kind: persistence.EntryNow, Done: true, Output: out}
	if err := e.write(ctx, &persistence.Commit{ExecutionID: e.id, Journal: []*persistence.JournalEntry{ent}}); err != nil {
		return time.Time{}, err
	}
	e.remember(ent)
	return t, nil
}
