package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// execRow holds the columns of executionColumns as scanned, before they are
// checked and decoded into a persistence.Execution.
type execRow struct {
	id, function, queue, status string
	input, output, errJSON      []byte
	parentID                    string
	parentPos                   int32
	rootID                      string
	idempotencyKey              *string
	attempts, priority          int32
	version, owner              string
	epoch                       int64
	leaseExpiresAt              *time.Time
	runAt, deadline             *time.Time
	createdAt, updatedAt        time.Time
	cancelRequested             bool
	traceContext                *string
}

// dest returns the scan targets of executionColumns, in order.
func (r *execRow) dest() []any {
	return []any{&r.id, &r.function, &r.queue, &r.status, &r.input, &r.output, &r.errJSON,
		&r.parentID, &r.parentPos, &r.rootID, &r.idempotencyKey, &r.attempts, &r.priority,
		&r.version, &r.owner, &r.epoch, &r.leaseExpiresAt, &r.runAt, &r.deadline,
		&r.createdAt, &r.updatedAt, &r.cancelRequested, &r.traceContext}
}

// decode checks the row and returns it as an Execution, or an error naming
// the execution and what is wrong with its row.
func (r *execRow) decode() (*persistence.Execution, error) {
	st := persistence.Status(r.status)
	var bad error
	if !st.Valid() {
		// Listed, saying so; never claimed (the claims select by status).
		bad = fmt.Errorf("decoding execution %s: %w: invalid status %q", r.id, persistence.ErrUndecodableError, r.status)
	}
	e := &persistence.Execution{
		ID:             r.id,
		Function:       r.function,
		Queue:          r.queue,
		Status:         st,
		Input:          r.input,
		Output:         r.output,
		ParentID:       r.parentID,
		ParentPos:      int(r.parentPos),
		RootID:         r.rootID,
		Attempts:       int(r.attempts),
		Priority:       int(r.priority),
		Version:        r.version,
		Owner:          r.owner,
		Epoch:          r.epoch,
		LeaseExpiresAt: utc(r.leaseExpiresAt),
		RunAt:          utc(r.runAt),
		Deadline:       utc(r.deadline),
		CreatedAt:      r.createdAt.UTC(),
		UpdatedAt:      r.updatedAt.UTC(),

		CancelRequested: r.cancelRequested,
	}
	if r.idempotencyKey != nil {
		e.IdempotencyKey = *r.idempotencyKey
	}
	if r.traceContext != nil {
		e.TraceContext = *r.traceContext
	}
	var err error
	if e.Error, err = decodeError(r.errJSON); err != nil {
		// The rest of the row is sound: ClaimDue runs it all the same.
		return e, fmt.Errorf("decoding error of execution %s: %w: %w", r.id, persistence.ErrUndecodableError, err)
	}
	return e, bad
}

// journalRow holds the columns JournalList reads.
type journalRow struct {
	position        int32
	kind, name      string
	childID         string
	fireAt          *time.Time
	done            bool
	output, errJSON []byte
}

func (r *journalRow) dest() []any {
	return []any{&r.position, &r.kind, &r.name, &r.childID, &r.fireAt, &r.done, &r.output, &r.errJSON}
}

func (r *journalRow) decode(executionID string) (*persistence.JournalEntry, error) {
	e := &persistence.JournalEntry{
		ExecutionID: executionID,
		Position:    int(r.position),
		Kind:        persistence.EntryKind(r.kind),
		Name:        r.name,
		ChildID:     r.childID,
		FireAt:      utc(r.fireAt),
		Done:        r.done,
		Output:      r.output,
	}
	var err error
	if e.Error, err = decodeError(r.errJSON); err != nil {
		return nil, fmt.Errorf("decoding journal entry %d of execution %s: %w", r.position, executionID, err)
	}
	return e, nil
}

// deadLetterRow holds the columns the DeadLetter queries read.
type deadLetterRow struct {
	id, executionID, function string
	input, errJSON            []byte
	attempts                  int32
	createdAt                 time.Time
}

func (r *deadLetterRow) dest() []any {
	return []any{&r.id, &r.executionID, &r.function, &r.input, &r.errJSON, &r.attempts, &r.createdAt}
}

func (r *deadLetterRow) decode() (*persistence.DeadLetter, error) {
	d := &persistence.DeadLetter{
		ID:          r.id,
		ExecutionID: r.executionID,
		Function:    r.function,
		Input:       r.input,
		Attempts:    int(r.attempts),
		CreatedAt:   r.createdAt.UTC(),
	}
	var err error
	if d.Error, err = decodeError(r.errJSON); err != nil {
		// Listed, replayed and discarded all the same, saying so.
		d.Error = persistence.UndecodableDeadLetterError(r.id, err)
	}
	return d, nil
}

// decodeError decodes an error column; NULL is no error.
func decodeError(b []byte) (*persistence.ErrorInfo, error) {
	if b == nil {
		return nil, nil
	}
	var e persistence.ErrorInfo
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// utc maps NULL to the zero time and any time to UTC.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
