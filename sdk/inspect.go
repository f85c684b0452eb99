package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stent-go/stent/persistence"
)

// JournalEntry is one durable operation of an execution, as its journal
// records it.
type JournalEntry struct {
	// Position is the operation's place in the order the body issued them.
	Position int
	// Kind is "call" (a child execution or step), "sleep", "signal" (a
	// signal wait) or "now" (a recorded time).
	Kind string
	// Name is the child's function for a call, the signal's name for a
	// signal wait.
	Name string
	// ChildID is the child execution of a call.
	ChildID string
	// FireAt is when a sleep ends, or a signal wait times out (zero when it
	// has no timeout).
	FireAt time.Time
	// Done is set once the outcome is recorded.
	Done bool
	// Output is the outcome (a child's output, a signal's payload, a
	// recorded time), JSON.
	Output json.RawMessage
	// Failure is a failed outcome (a child that failed), nil otherwise.
	Failure *ErrorDetail
	// StartedAt and EndedAt are when the operation began and when its
	// outcome was recorded, by the database's clock; for a call whose
	// entry records its child (see Input), the child's creation and end.
	// Zero when not known (not ended yet, or recorded by a version of
	// Stent that did not keep them).
	StartedAt time.Time
	EndedAt   time.Time
	// Input and Attempts are a call's child's input (JSON) and, once done,
	// the attempts it took: nil and 0 when the entry does not record them
	// (other kinds, or a version of Stent that did not keep them).
	Input    json.RawMessage
	Attempts int
}

// Journal returns the durable operations of execution id in the order the
// body issued them: each child call, sleep, signal wait and recorded time,
// with its times and outcome. It returns an error matching ErrNotFound when
// no such execution exists.
func (e *Executor) Journal(ctx context.Context, id string) ([]JournalEntry, error) {
	if _, err := e.backend.GetExecution(ctx, id); err != nil {
		if errors.Is(err, persistence.ErrNotFound) {
			return nil, fmt.Errorf("execution %q: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("reading journal of %q: %w", id, err)
	}
	entries, err := e.backend.JournalEntries(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading journal of %q: %w", id, err)
	}
	out := make([]JournalEntry, len(entries))
	for i, je := range entries {
		out[i] = JournalEntry{Position: je.Position, Kind: string(je.Kind), Name: je.Name, ChildID: je.ChildID,
			FireAt: je.FireAt, Done: je.Done, Output: shown(je.Output), StartedAt: je.StartedAt, EndedAt: je.EndedAt,
			Input: shown(je.Input), Attempts: je.Attempts}
		if je.Error != nil {
			out[i].Failure = &ErrorDetail{Message: je.Error.Message, Kind: string(je.Error.Kind),
				NonRetryable: je.Error.NonRetryable, Stack: je.Error.Stack}
		}
	}
	return out, nil
}

// waitingOn describes what an execution waits for, from its journal.
func waitingOn(info ExecutionInfo, entries []JournalEntry) string {
	if info.Status.Terminal() || info.Status == StatusPending && info.RunAt.IsZero() {
		return ""
	}
	for i := len(entries) - 1; i >= 0; i-- {
		je := entries[i]
		if je.Done {
			break
		}
		switch je.Kind {
		case string(persistence.EntrySignal):
			if je.FireAt.IsZero() {
				return "signal " + je.Name
			}
			return "signal " + je.Name + " (until " + je.FireAt.UTC().Format(time.RFC3339) + ")"
		case string(persistence.EntrySleep):
			return "timer until " + je.FireAt.UTC().Format(time.RFC3339)
		case string(persistence.EntryCall):
			return "child " + je.ChildID + " (" + je.Name + ")"
		}
	}
	if !info.RunAt.IsZero() {
		if info.Failure != nil {
			return "retry at " + info.RunAt.UTC().Format(time.RFC3339)
		}
		return "start at " + info.RunAt.UTC().Format(time.RFC3339)
	}
	return ""
}

// Page is one page of executions, newest first. Next, when not "", is the
// cursor of the following page (ListFilter.After).
type Page struct {
	Items []ExecutionInfo
	Next  string
}

// ListPage returns one page of the executions matching f, newest first (by
// creation time, then ID), and the cursor of the next page. Pass Next back
// as f.After, with the same filter, for the page after; Next is "" on the
// last page. A cursor that does not decode is an error naming it.
// Executions recorded only in their parent's journal (see Execution) are
// not listed.
func (e *Executor) ListPage(ctx context.Context, f ListFilter) (Page, error) {
	pf, err := f.backendFilter()
	if err != nil {
		return Page{}, err
	}
	limit := pf.Limit
	if limit <= 0 {
		limit = 100
	}
	pf.Limit = limit + 1 // one more tells whether a next page exists
	rs, err := e.backend.ListExecutions(ctx, pf)
	if err != nil {
		return Page{}, fmt.Errorf("listing executions: %w", err)
	}
	var p Page
	if len(rs) > limit {
		rs = rs[:limit]
		last := rs[limit-1]
		p.Next = encodeCursor(last.CreatedAt, last.ID)
	}
	p.Items = make([]ExecutionInfo, len(rs))
	for i, r := range rs {
		p.Items[i] = infoOf(r)
	}
	return p, nil
}

// backendFilter checks f and returns it as the backend's filter.
func (f ListFilter) backendFilter() (persistence.ListFilter, error) {
	if f.Status != "" && !f.Status.Valid() {
		return persistence.ListFilter{}, fmt.Errorf("listing executions: unknown status %q: want one of pending, running, waiting, completed, failed, canceled, timed_out", f.Status)
	}
	if f.Limit < 0 {
		return persistence.ListFilter{}, fmt.Errorf("listing executions: negative limit %d", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return persistence.ListFilter{}, fmt.Errorf("listing executions: since %s is not before until %s",
			f.Since.UTC().Format(time.RFC3339), f.Until.UTC().Format(time.RFC3339))
	}
	pf := persistence.ListFilter{Status: f.Status, Function: f.Function, ParentID: f.ParentID, Queue: f.Queue,
		Since: f.Since, Until: f.Until, Limit: f.Limit}
	if f.After != "" {
		at, id, err := decodeCursor(f.After)
		if err != nil {
			return persistence.ListFilter{}, err
		}
		pf.BeforeCreatedAt, pf.BeforeID = at, id
	}
	return pf, nil
}

// encodeCursor makes the opaque cursor of the row (at, id).
func encodeCursor(at time.Time, id string) string {
	raw := strconv.FormatInt(at.UnixMicro(), 10) + ":" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeCursor reads a cursor of encodeCursor.
func decodeCursor(c string) (time.Time, string, error) {
	bad := fmt.Errorf("listing executions: cursor %q is not one that ListPage returned (pass Page.Next as it is)", c)
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	us, id, ok := strings.Cut(string(raw), ":")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || id == "" {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// resolveDeadLetter returns the ID of a dead letter named by its own ID or
// by its execution's ID (the newest dead letter of that execution).
func (e *Executor) resolveDeadLetter(ctx context.Context, id string) (string, error) {
	if _, err := e.backend.GetDeadLetter(ctx, id); err == nil {
		return id, nil
	} else if !errors.Is(err, persistence.ErrNotFound) {
		return "", err
	}
	ds, err := e.backend.DeadLettersOf(ctx, id)
	if err != nil {
		return "", err
	}
	if len(ds) == 0 {
		if _, gerr := e.backend.GetExecution(ctx, id); gerr == nil {
			return "", fmt.Errorf("execution %q has no dead letter (only an execution that failed for good has one): %w", id, ErrNotFound)
		}
		return "", fmt.Errorf("%q is neither a dead letter ID nor the ID of an execution: %w", id, ErrNotFound)
	}
	return ds[len(ds)-1].ID, nil
}
