package ops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// Errors of the queries, to match with errors.Is: the CLI exits 1 with
// them, the console answers 404 and 409.
var (
	// ErrNotFound is an execution or dead letter that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is an action that the target's state refuses: a signal or
	// cancel of an execution that has ended, a replay of an execution that
	// is not a dead letter.
	ErrConflict = errors.New("conflict")
)

// kindError is a message of its own that matches kind with errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// NoSuchExecution is the error for an unknown execution ID.
func NoSuchExecution(id string) error {
	return &kindError{ErrNotFound, fmt.Sprintf("no such execution %q: check the ID (the execution list shows them)", id)}
}

// ExecutionError turns the SDK's errors about an execution into ones that
// name the fix; doing is the action refused ("a signal", "cancel").
func ExecutionError(err error, id, doing string) error {
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		return NoSuchExecution(id)
	case errors.Is(err, sdk.ErrFinished):
		return &kindError{ErrConflict, fmt.Sprintf("execution %s has already ended: %s applies only to executions still running", id, doing)}
	}
	return err
}

// MaxTree caps the executions Show reads for the children tree.
const MaxTree = 500

// ListPage returns one page of the executions matching f, newest first.
// With search set, it returns the execution of that ID, or else the one
// started with that idempotency key (none: an empty page).
func ListPage(ctx context.Context, ex *sdk.Executor, f sdk.ListFilter, search string) (List, error) {
	out := List{Executions: []Execution{}}
	if search != "" {
		e, err := Search(ctx, ex, search)
		if errors.Is(err, ErrNotFound) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out.Executions = append(out.Executions, e)
		return out, nil
	}
	page, err := ex.ListPage(ctx, f)
	if err != nil {
		return out, err
	}
	out.NextCursor = page.Next
	for _, r := range page.Items {
		out.Executions = append(out.Executions, ToExecution(r))
	}
	return out, nil
}

// Search finds the execution whose ID is q, or else the one started with
// the idempotency key q; ErrNotFound when neither exists.
func Search(ctx context.Context, ex *sdk.Executor, q string) (Execution, error) {
	info, err := ex.Execution(ctx, q)
	if err == nil {
		return ToExecution(info), nil
	}
	if !errors.Is(err, sdk.ErrNotFound) {
		return Execution{}, err
	}
	rows, err := ex.Backend().ListExecutions(ctx, persistence.ListFilter{IdempotencyKey: q, Limit: 1})
	if err != nil {
		return Execution{}, fmt.Errorf("searching executions by idempotency key: %w", err)
	}
	if len(rows) == 0 {
		return Execution{}, &kindError{ErrNotFound, fmt.Sprintf("no execution has the ID or idempotency key %q", q)}
	}
	info, err = ex.Execution(ctx, rows[0].ID)
	if err != nil {
		return Execution{}, err
	}
	return ToExecution(info), nil
}

// ShowExecution reads execution id with its journal, its children (up to
// MaxTree), its dead letters and its trace ID.
func ShowExecution(ctx context.Context, ex *sdk.Executor, id string) (*Show, error) {
	info, err := ex.Execution(ctx, id)
	if errors.Is(err, sdk.ErrNotFound) {
		return nil, NoSuchExecution(id)
	}
	if err != nil {
		return nil, err
	}
	out := &Show{Execution: ToExecution(info), Journal: []Entry{}, DeadLetters: []DeadLetter{}}
	journal, err := ex.Journal(ctx, id)
	if err != nil && !errors.Is(err, sdk.ErrNotFound) { // a step recorded only in its parent's journal has none
		return nil, err
	}
	for _, e := range journal {
		j := Entry{Position: e.Position, Kind: e.Kind, Name: e.Name, ChildID: e.ChildID, FireAt: TimePtr(e.FireAt),
			Done: e.Done, Error: ErrorOfDetail(e.Failure), StartedAt: TimePtr(e.StartedAt), EndedAt: TimePtr(e.EndedAt),
			Attempts: e.Attempts}
		if len(e.Output) > 0 {
			j.Output = RawOrNull(e.Output)
		}
		if len(e.Input) > 0 {
			j.Input = RawOrNull(e.Input)
		}
		out.Journal = append(out.Journal, j)
	}
	if out.Children, err = ChildTree(ctx, ex, id); err != nil {
		return nil, err
	}
	dead, err := ex.Backend().DeadLettersOf(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", id, err)
	}
	for _, d := range dead {
		out.DeadLetters = append(out.DeadLetters, ToDeadLetter(d))
	}
	if !info.JournalOnly {
		row, err := ex.Backend().GetExecution(ctx, id)
		if err != nil && !errors.Is(err, persistence.ErrNotFound) {
			return nil, fmt.Errorf("reading execution %s: %w", id, err)
		}
		if row != nil {
			out.TraceID = TraceID(row.TraceContext)
		}
	}
	return out, nil
}

// TraceID is the trace ID of a W3C traceparent ("00-TRACEID-SPANID-FLAGS"),
// or "" when tp is not one.
func TraceID(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || len(parts[1]) != 32 || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	return parts[1]
}

// ChildTree reads the children of id, and theirs, up to MaxTree in all,
// oldest first.
func ChildTree(ctx context.Context, ex *sdk.Executor, id string) ([]*TreeNode, error) {
	read := 0
	now := time.Now()
	var walk func(parent string) ([]*TreeNode, error)
	walk = func(parent string) ([]*TreeNode, error) {
		out := []*TreeNode{}
		if read >= MaxTree {
			return out, nil
		}
		rows, err := ex.List(ctx, sdk.ListFilter{ParentID: parent, Limit: MaxTree - read})
		if err != nil {
			return nil, fmt.Errorf("listing the children of %s: %w", parent, err)
		}
		read += len(rows)
		for i := len(rows) - 1; i >= 0; i-- {
			r := rows[i]
			n := &TreeNode{ID: r.ID, Function: r.Function, Status: r.Status, Attempts: r.Attempts,
				CreatedAt: r.CreatedAt, EndedAt: TimePtr(r.EndedAt), DurationMS: ToExecution(r).RunTime(now).Milliseconds()}
			if !r.JournalOnly { // a step recorded only in its parent's journal has no children
				if n.Children, err = walk(r.ID); err != nil {
					return nil, err
				}
			}
			out = append(out, n)
		}
		// Oldest first: the steps recorded only in the parent's journal
		// come after the children with rows in List's order.
		slices.SortStableFunc(out, func(a, b *TreeNode) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		return out, nil
	}
	return walk(id)
}

// DeadLetters lists up to limit dead letters, oldest first.
func DeadLetters(ctx context.Context, b persistence.Backend, limit int) ([]*persistence.DeadLetter, error) {
	ds, err := b.ListDeadLetters(ctx, limit)
	if err != nil {
		return nil, fmt.Errorf("listing dead letters: %w", err)
	}
	return ds, nil
}

// DeadLetterList is ds as documents.
func DeadLetterList(ds []*persistence.DeadLetter) []DeadLetter {
	out := make([]DeadLetter, len(ds))
	for i, d := range ds {
		out[i] = ToDeadLetter(d)
	}
	return out
}

// ResolveDead finds the dead letters id names: the dead letter of that ID,
// or else those of the execution of that ID. An execution without one is
// an ErrConflict that says it is not a dead letter.
func ResolveDead(ctx context.Context, b persistence.Backend, id string) ([]*persistence.DeadLetter, error) {
	d, err := b.GetDeadLetter(ctx, id)
	if err == nil {
		return []*persistence.DeadLetter{d}, nil
	}
	if !errors.Is(err, persistence.ErrNotFound) {
		return nil, fmt.Errorf("reading dead letter %s: %w", id, err)
	}
	ds, err := b.DeadLettersOf(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading the dead letters of %s: %w", id, err)
	}
	if len(ds) > 0 {
		return ds, nil
	}
	e, err := b.GetExecution(ctx, id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, &kindError{ErrNotFound, fmt.Sprintf("no such dead letter or execution %q: the dead-letter list shows them", id)}
	}
	if err != nil {
		return nil, fmt.Errorf("reading execution %s: %w", id, err)
	}
	return nil, &kindError{ErrConflict, fmt.Sprintf("execution %s is not a dead letter (status %s): only executions that failed for good are in the dead-letter queue", id, e.Status)}
}

// ApplyDead replays (verb "replay") or discards (verb "discard") ds, in
// order, calling done after each and replayed with each execution
// replayed (to wake the nodes). With skipGone, a dead letter gone
// meanwhile (a parent's, replayed with its child's) is passed over;
// without, it is an ErrNotFound.
func ApplyDead(ctx context.Context, b persistence.Backend, verb string, ds []*persistence.DeadLetter, skipGone bool,
	done func(DeadAction), replayed func(*persistence.Execution)) ([]DeadAction, error) {
	out := []DeadAction{}
	for _, d := range ds {
		past := "replayed"
		var err error
		if verb == "discard" {
			past = "discarded"
			err = b.DeleteDeadLetter(ctx, d.ID)
		} else {
			var e *persistence.Execution
			if e, err = b.ReplayDeadLetter(ctx, d.ID); err == nil && replayed != nil {
				replayed(e)
			}
		}
		if errors.Is(err, persistence.ErrNotFound) {
			if skipGone {
				continue
			}
			err = &kindError{ErrNotFound, fmt.Sprintf("dead letter %s is gone (replayed or discarded meanwhile)", d.ID)}
		}
		if err != nil {
			return out, fmt.Errorf("%s dead letter %s: %w", verb, d.ID, err)
		}
		a := DeadAction{DeadLetter: d.ID, ExecutionID: d.ExecutionID, Function: d.Function, Action: past}
		out = append(out, a)
		if done != nil {
			done(a)
		}
	}
	return out, nil
}

// ReplayAll replays every dead letter (of function, when not ""), a
// thousand at a time, as ApplyDead does.
func ReplayAll(ctx context.Context, b persistence.Backend, function string, done func(DeadAction), replayed func(*persistence.Execution)) ([]DeadAction, error) {
	all := []DeadAction{}
	for {
		ds, err := DeadLetters(ctx, b, 1000)
		if err != nil {
			return all, err
		}
		var pick []*persistence.DeadLetter
		for _, d := range ds {
			if function == "" || d.Function == function {
				pick = append(pick, d)
			}
		}
		got, err := ApplyDead(ctx, b, "replay", pick, true, done, replayed)
		all = append(all, got...)
		if err != nil {
			return all, err
		}
		if len(ds) < 1000 || len(pick) == 0 {
			return all, nil
		}
	}
}

// Members reads the node registry.
func Members(ctx context.Context, ex *sdk.Executor) ([]Member, error) {
	ms, err := ex.Members(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Member, len(ms))
	for i, m := range ms {
		out[i] = ToMember(m)
	}
	return out, nil
}

// ParseWhen reads a time filter: a duration back from now (2h), or an RFC
// 3339 time; the zero time for "".
func ParseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want a duration such as 2h or a time such as 2026-11-30T12:00:00Z")
	}
	return t, nil
}
