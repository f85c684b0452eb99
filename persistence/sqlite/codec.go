package sqlite

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// scanner is a *sql.Row or a *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullBlob stores a nil slice as NULL.
func nullBlob(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// nullTime stores the zero time as NULL and any other as unix milliseconds.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// dueMillis is a due time in milliseconds, rounded up, so that a timer
// compared with the millisecond clock never fires early.
func dueMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	ms := t.UnixMilli()
	if t.Sub(time.UnixMilli(ms)) > 0 {
		ms++
	}
	return ms
}

// fromMillis is the inverse of nullTime.
func fromMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// encodeError stores a nil error as NULL and any other as JSON text.
func encodeError(e *persistence.ErrorInfo) (any, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decodeError is the inverse of encodeError.
func decodeError(v sql.NullString) (*persistence.ErrorInfo, error) {
	if !v.Valid {
		return nil, nil
	}
	e := new(persistence.ErrorInfo)
	if err := json.Unmarshal([]byte(v.String), e); err != nil {
		return nil, err
	}
	return e, nil
}

// The shape of executionArgs and of ExecutionGet's columns: the root's ID
// is parameter argRootID (0-based), and the columns are the parameters in
// order with cancel_requested inserted at colCancelRequested.
const (
	executionArgCount  = 22
	argRootID          = 9
	colCancelRequested = 21
)

// executionArgs are the parameters ?1 to ?22 of ExecutionInsert and
// ExecutionInsertChild.
func executionArgs(e *persistence.Execution, status persistence.Status, errJSON any, created, now int64) []any {
	return []any{
		e.ID, e.Function, e.Queue, string(status), nullBlob(e.Input), nullBlob(e.Output), errJSON,
		nullString(e.ParentID), int64(e.ParentPos), e.RootID, nullString(e.IdempotencyKey),
		int64(e.Attempts), int64(e.Priority), e.Version, nullString(e.Owner), e.Epoch,
		leaseOnInsert(e, now), dueMillis(e.RunAt), nullTime(e.Deadline), created, now,
		nullString(e.TraceContext),
	}
}

// insertedRow reads a row just inserted with ExecutionInsert from its
// parameters (executionArgs), as scanExecution would read it from the
// table: the columns in ExecutionGet's order, cancel_requested 0.
type insertedRow []any

func (r insertedRow) Scan(dest ...any) error {
	if len(r) != executionArgCount || len(dest) != executionArgCount+1 {
		return fmt.Errorf("reading an inserted row: %d parameters into %d columns", len(r), len(dest))
	}
	for i, d := range dest {
		var v any
		switch {
		case i < colCancelRequested:
			v = r[i]
		case i == colCancelRequested:
			v = false
		default:
			v = r[i-1]
		}
		if err := assignColumn(d, v); err != nil {
			return fmt.Errorf("reading column %d of an inserted row: %w", i+1, err)
		}
	}
	return nil
}

// assignColumn stores v, a statement parameter, in d as database/sql's Scan
// would store the column value SQLite keeps for it.
func assignColumn(d, v any) error {
	switch d := d.(type) {
	case *string:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%T into a string", v)
		}
		*d = s
	case *sql.NullString:
		s, ok := v.(string)
		*d = sql.NullString{String: s, Valid: ok}
		if !ok && v != nil {
			return fmt.Errorf("%T into a string", v)
		}
	case *[]byte:
		switch b := v.(type) {
		case nil:
			*d = nil
		case []byte:
			*d = nil // an empty blob reads back as NULL does
			if len(b) > 0 {
				*d = bytes.Clone(b)
			}
		default:
			return fmt.Errorf("%T into bytes", v)
		}
	case *int64:
		n, ok := v.(int64)
		if !ok {
			return fmt.Errorf("%T into an integer", v)
		}
		*d = n
	case *sql.NullInt64:
		n, ok := v.(int64)
		*d = sql.NullInt64{Int64: n, Valid: ok}
		if !ok && v != nil {
			return fmt.Errorf("%T into an integer", v)
		}
	case *bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%T into a boolean", v)
		}
		*d = b
	default:
		return fmt.Errorf("no column of type %T", d)
	}
	return nil
}

// leaseOnInsert is the lease expiry of a row about to be inserted: with an
// Owner and a LeaseTTL, the backend's clock now (read inside the write
// transaction, after any wait for the write lock) plus LeaseTTL; otherwise
// LeaseExpiresAt as given.
func leaseOnInsert(e *persistence.Execution, now int64) any {
	if e.Owner != "" && e.LeaseTTL > 0 {
		return now + e.LeaseTTL.Milliseconds()
	}
	return nullTime(e.LeaseExpiresAt)
}

// scanExecution reads one execution row in the column order of
// ExecutionGet. A missing row is persistence.ErrNotFound; a row that does not
// decode is an error naming the execution.
func scanExecution(s scanner) (*persistence.Execution, error) {
	var (
		e                             persistence.Execution
		status                        string
		errText, parentID, key, owner sql.NullString
		traceContext                  sql.NullString
		parentPos, attempts, priority int64
		leaseExpires, runAt, deadline sql.NullInt64
		created, updated              int64
	)
	err := s.Scan(&e.ID, &e.Function, &e.Queue, &status, &e.Input, &e.Output, &errText,
		&parentID, &parentPos, &e.RootID, &key, &attempts, &priority, &e.Version, &owner,
		&e.Epoch, &leaseExpires, &runAt, &deadline, &created, &updated, &e.CancelRequested, &traceContext)
	if err != nil {
		return nil, interpretError(err)
	}
	e.Status = persistence.Status(status)
	var bad error
	if !e.Status.Valid() {
		// Listed, saying so; never claimed (the claims select by status).
		bad = fmt.Errorf("decoding execution %s: %w: invalid status %q", e.ID, persistence.ErrUndecodableError, status)
	}
	e.ParentID = parentID.String
	e.ParentPos = int(parentPos)
	e.IdempotencyKey = key.String
	e.TraceContext = traceContext.String
	e.Attempts = int(attempts)
	e.Priority = int(priority)
	e.Owner = owner.String
	e.LeaseExpiresAt = fromMillis(leaseExpires)
	e.RunAt = fromMillis(runAt)
	e.Deadline = fromMillis(deadline)
	e.CreatedAt = time.UnixMilli(created).UTC()
	e.UpdatedAt = time.UnixMilli(updated).UTC()
	if e.Error, err = decodeError(errText); err != nil {
		// The rest of the row is sound: a claim runs it all the same.
		return &e, fmt.Errorf("decoding error of execution %s: %w: %w", e.ID, persistence.ErrUndecodableError, err)
	}
	return &e, bad
}

// scanJournalRow reads one row of JournalLoad: a snapshot when the first
// column is 0, a journal entry otherwise.
func scanJournalRow(s scanner, id string) (*persistence.Snapshot, *persistence.JournalEntry, error) {
	var (
		rowKind, position int64
		kind, name, child sql.NullString
		fireAt            sql.NullInt64
		done              bool
		data              []byte
		errText           sql.NullString
	)
	if err := s.Scan(&rowKind, &position, &kind, &name, &child, &fireAt, &done, &data, &errText); err != nil {
		return nil, nil, interpretError(err)
	}
	if rowKind == 0 {
		return &persistence.Snapshot{ExecutionID: id, Position: int(position), Data: data}, nil, nil
	}
	je := &persistence.JournalEntry{
		ExecutionID: id,
		Position:    int(position),
		Kind:        persistence.EntryKind(kind.String),
		Name:        name.String,
		ChildID:     child.String,
		FireAt:      fromMillis(fireAt),
		Done:        done,
		Output:      data,
	}
	var err error
	if je.Error, err = decodeError(errText); err != nil {
		return nil, nil, fmt.Errorf("decoding error of journal entry %d of %s: %w", position, id, err)
	}
	return nil, je, nil
}

// scanDeadLetter reads one row in the column order of DeadLetterGet.
func scanDeadLetter(s scanner) (*persistence.DeadLetter, error) {
	var (
		d        persistence.DeadLetter
		errText  sql.NullString
		attempts int64
		created  int64
	)
	if err := s.Scan(&d.ID, &d.ExecutionID, &d.Function, &d.Input, &errText, &attempts, &created); err != nil {
		return nil, interpretError(err)
	}
	var err error
	if d.Error, err = decodeError(errText); err != nil {
		// Listed, replayed and discarded all the same, saying so.
		d.Error = persistence.UndecodableDeadLetterError(d.ID, err)
	}
	d.Attempts = int(attempts)
	d.CreatedAt = time.UnixMilli(created).UTC()
	return &d, nil
}
