package postgres

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/stent-go/stent/persistence"
)

// The parts a Commit's statement can hold. The statement of a Commit is the
// fence plus the parts its fields need. Each combination is built the first
// time it is used and kept, so pgx prepares and caches it like any fixed
// query.
const (
	partUpdate = 1 << iota
	partCreate
	partJournal    // several entries, as arrays
	partJournalOne // one entry, as plain parameters
	partJournalDelete
	partSnapshot
	partDeadLetter
	partConsume
	partCount = 1 << iota
)

// parts lists the fragments after the fence, in statement order; the
// arguments build appends follow the same order.
var parts = []struct {
	bit  int
	name string
}{
	{partCreate, qCommitCreate},
	{partJournalDelete, qCommitJournalDelete},
	{partJournal, qCommitJournal},
	{partJournalOne, qCommitJournalOne},
	{partSnapshot, qCommitSnapshot},
	{partDeadLetter, qCommitDeadLetter},
	{partConsume, qCommitConsume},
}

// commitCache holds the statement of each combination of parts.
type commitCache struct {
	q   queries
	sql [partCount]atomic.Pointer[string]
}

func newCommitCache(q queries) *commitCache { return &commitCache{q: q} }

// statement returns the statement of the combination mask.
func (c *commitCache) statement(mask int) string {
	if s := c.sql[mask].Load(); s != nil {
		return *s
	}
	var b strings.Builder
	b.WriteString("WITH ")
	offset := 0
	add := func(name string) {
		frag, n := renumber(c.q[name], offset)
		if offset > 0 {
			b.WriteString(",\n")
		}
		b.WriteString(frag)
		offset += n
	}
	if mask&partUpdate != 0 {
		add(qCommitFenceUpdate)
	} else {
		add(qCommitFence)
	}
	for _, p := range parts {
		if mask&p.bit != 0 {
			add(p.name)
		}
	}
	b.WriteString("\n")
	if mask&partConsume != 0 {
		b.WriteString(c.q[qCommitResultConsume])
	} else {
		b.WriteString(c.q[qCommitResult])
	}
	s := b.String()
	c.sql[mask].Store(&s)
	return s
}

// build returns the statement and arguments of one Commit, or an error
// naming what is invalid in it. The argument order follows the fragments'
// order: the fence's four (ID, epoch, ConsumeSignal, ConsumePos), the
// Update's, then those of parts.
func (c *commitCache) build(cm *persistence.Commit) (string, []any, error) {
	if cm == nil {
		return "", nil, errors.New("validating commit: nil")
	}
	id := cm.ExecutionID
	if id == "" {
		return "", nil, errors.New("validating commit: empty execution ID")
	}
	mask := 0
	args := []any{id, cm.Epoch, cm.ConsumeSignal, int32(cm.ConsumePos)}

	if u := cm.Update; u != nil {
		mask |= partUpdate
		var status *string
		if u.Status != "" {
			if !u.Status.Valid() {
				return "", nil, fmt.Errorf("validating commit of %s: invalid status %q", id, u.Status)
			}
			s := string(u.Status)
			status = &s
		}
		errJSON, err := encodeError(u.Error)
		if err != nil {
			return "", nil, fmt.Errorf("encoding error of %s: %w", id, err)
		}
		args = append(args, status, u.Output, errJSON, u.ClearError, int32(u.Attempts),
			u.SetRunAt, u.NoRunAt, u.RunAfter.Microseconds(), u.Release, u.WaitSignal)
	}

	if len(cm.Create) > 0 {
		mask |= partCreate
		a, err := createArgs(cm.Create)
		if err != nil {
			return "", nil, fmt.Errorf("validating commit of %s: %w", id, err)
		}
		args = append(args, a...)
	}

	entries := make([]*persistence.JournalEntry, 0, len(cm.Journal)+1)
	owners := make([]string, 0, len(cm.Journal)+1)
	for _, e := range cm.Journal {
		if e == nil {
			return "", nil, fmt.Errorf("validating commit of %s: nil journal entry", id)
		}
		entries, owners = addEntry(entries, owners, id, e)
	}
	if d := cm.Deliver; d != nil {
		if d.ExecutionID == "" {
			return "", nil, fmt.Errorf("validating commit of %s: delivery without an execution ID", id)
		}
		entries, owners = addEntry(entries, owners, d.ExecutionID, d)
	}

	if len(cm.DeleteJournal) > 0 {
		// A position both deleted and upserted ends up upserted: one
		// statement cannot touch a row twice.
		del := make([]int32, 0, len(cm.DeleteJournal))
		for _, p := range cm.DeleteJournal {
			if !ownedBy(entries, owners, id, p) {
				del = append(del, int32(p))
			}
		}
		if len(del) > 0 {
			mask |= partJournalDelete
			args = append(args, id, del)
		}
	}

	switch len(entries) {
	case 0:
	case 1:
		mask |= partJournalOne
		e := entries[0]
		errJSON, err := encodeError(e.Error)
		if err != nil {
			return "", nil, fmt.Errorf("encoding journal of %s at position %d: %w", id, e.Position, err)
		}
		args = append(args, owners[0], int32(e.Position), string(e.Kind), e.Name, e.ChildID,
			timestamptz(e.FireAt), e.Done, e.Output, errJSON,
			timestamptz(e.StartedAt), timestamptz(e.EndedAt), e.Input, nullInt32(e.Attempts))
	default:
		mask |= partJournal
		a, err := journalArgs(entries, owners)
		if err != nil {
			return "", nil, fmt.Errorf("encoding journal of %s: %w", id, err)
		}
		args = append(args, a...)
	}

	if s := cm.Snapshot; s != nil {
		mask |= partSnapshot
		data := s.Data
		if data == nil {
			data = []byte{}
		}
		args = append(args, id, int32(s.Position), data)
	}

	if dl := cm.DeadLetter; dl != nil {
		mask |= partDeadLetter
		dlID := dl.ID
		if dlID == "" {
			dlID = newID()
		}
		execID := dl.ExecutionID
		if execID == "" {
			execID = id
		}
		errJSON, err := encodeError(dl.Error)
		if err != nil {
			return "", nil, fmt.Errorf("encoding dead letter error of %s: %w", id, err)
		}
		args = append(args, dlID, execID, dl.Function, dl.Input, errJSON, int32(dl.Attempts))
	}

	if cm.ConsumeSignal != "" {
		mask |= partConsume
		args = append(args, cm.ConsumeSignal, int32(cm.ConsumePos))
	}

	return c.statement(mask), args, nil
}

// addEntry appends e for execution owner, replacing an earlier entry at the
// same position: one INSERT cannot upsert a row twice.
func addEntry(entries []*persistence.JournalEntry, owners []string, owner string, e *persistence.JournalEntry) ([]*persistence.JournalEntry, []string) {
	for i := range entries {
		if owners[i] == owner && entries[i].Position == e.Position {
			entries[i] = e
			return entries, owners
		}
	}
	return append(entries, e), append(owners, owner)
}

func ownedBy(entries []*persistence.JournalEntry, owners []string, owner string, pos int) bool {
	for i, e := range entries {
		if owners[i] == owner && e.Position == pos {
			return true
		}
	}
	return false
}

// journalArgs returns the column arrays of CommitJournal.
func journalArgs(entries []*persistence.JournalEntry, owners []string) ([]any, error) {
	n := len(entries)
	pos := make([]int32, n)
	kinds := make([]string, n)
	names := make([]string, n)
	children := make([]string, n)
	fireAt := make([]pgtype.Timestamptz, n)
	done := make([]bool, n)
	outputs := make([][]byte, n)
	errs := make([]*string, n)
	started := make([]pgtype.Timestamptz, n)
	ended := make([]pgtype.Timestamptz, n)
	inputs := make([][]byte, n)
	attempts := make([]*int32, n)
	for i, e := range entries {
		pos[i] = int32(e.Position)
		kinds[i] = string(e.Kind)
		names[i] = e.Name
		children[i] = e.ChildID
		fireAt[i] = timestamptz(e.FireAt)
		done[i] = e.Done
		outputs[i] = e.Output
		s, err := encodeError(e.Error)
		if err != nil {
			return nil, fmt.Errorf("at position %d: %w", e.Position, err)
		}
		errs[i] = s
		started[i], ended[i] = timestamptz(e.StartedAt), timestamptz(e.EndedAt)
		inputs[i], attempts[i] = e.Input, nullInt32(e.Attempts)
	}
	return []any{owners, pos, kinds, names, children, fireAt, done, outputs, errs, started, ended, inputs, attempts}, nil
}

// nullInt32 is n, or NULL for 0 (not recorded).
func nullInt32(n int) *int32 {
	if n == 0 {
		return nil
	}
	v := int32(n)
	return &v
}

// createArgs returns the column arrays of CommitCreate.
func createArgs(execs []*persistence.Execution) ([]any, error) {
	n := len(execs)
	ids := make([]string, n)
	functions := make([]string, n)
	queues := make([]string, n)
	statuses := make([]string, n)
	inputs := make([][]byte, n)
	parents := make([]string, n)
	parentPos := make([]int32, n)
	roots := make([]string, n)
	keys := make([]*string, n)
	attempts := make([]int32, n)
	priorities := make([]int32, n)
	versions := make([]string, n)
	runAt := make([]pgtype.Timestamptz, n)
	deadlines := make([]pgtype.Timestamptz, n)
	outputs := make([][]byte, n)
	errs := make([]*string, n)
	createdAt := make([]pgtype.Timestamptz, n)
	owners := make([]string, n)
	epochs := make([]int64, n)
	leaseExpires := make([]pgtype.Timestamptz, n)
	leaseTTLs := make([]*int64, n)
	traces := make([]*string, n)
	for i, e := range execs {
		if e == nil {
			return nil, errors.New("nil execution to create")
		}
		if err := validateNew(e); err != nil {
			return nil, err
		}
		ids[i] = e.ID
		functions[i] = e.Function
		queues[i] = e.Queue
		statuses[i] = string(statusOrPending(e.Status))
		inputs[i] = e.Input
		parents[i] = e.ParentID
		parentPos[i] = int32(e.ParentPos)
		roots[i] = rootOf(e)
		keys[i] = nullString(e.IdempotencyKey)
		attempts[i] = int32(e.Attempts)
		priorities[i] = int32(e.Priority)
		versions[i] = e.Version
		runAt[i] = timestamptz(e.RunAt)
		deadlines[i] = timestamptz(e.Deadline)
		outputs[i] = e.Output
		createdAt[i] = timestamptz(e.CreatedAt)
		owners[i] = e.Owner
		epochs[i] = e.Epoch
		leaseExpires[i] = timestamptz(e.LeaseExpiresAt)
		leaseTTLs[i] = leaseTTL(e)
		traces[i] = nullString(e.TraceContext)
		var err error
		if errs[i], err = encodeError(e.Error); err != nil {
			return nil, fmt.Errorf("encoding error of %s: %w", e.ID, err)
		}
	}
	return []any{ids, functions, queues, statuses, inputs, parents, parentPos, roots, keys,
		attempts, priorities, versions, runAt, deadlines, outputs, errs, createdAt, owners, epochs, leaseExpires, leaseTTLs, traces}, nil
}

// leaseTTL is the LeaseTTL of a row to insert leased by its Owner, in
// microseconds, or nil: then LeaseExpiresAt is stored as given.
func leaseTTL(e *persistence.Execution) *int64 {
	if e.Owner == "" || e.LeaseTTL <= 0 {
		return nil
	}
	us := e.LeaseTTL.Microseconds()
	return &us
}

// validateNew checks an execution about to be inserted.
func validateNew(e *persistence.Execution) error {
	if e.ID == "" {
		return errors.New("validating execution: empty ID")
	}
	if e.Function == "" {
		return fmt.Errorf("validating execution %s: empty function name", e.ID)
	}
	if e.Status != "" && !e.Status.Valid() {
		return fmt.Errorf("validating execution %s: invalid status %q", e.ID, e.Status)
	}
	return nil
}

func statusOrPending(s persistence.Status) persistence.Status {
	if s == "" {
		return persistence.StatusPending
	}
	return s
}

func rootOf(e *persistence.Execution) string {
	if e.RootID == "" {
		return e.ID
	}
	return e.RootID
}

// encodeError returns e as JSON text for a jsonb column, or nil for NULL.
func encodeError(e *persistence.ErrorInfo) (*string, error) {
	if e == nil {
		return nil, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	s := string(b)
	return &s, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// timestamptz maps the zero time to NULL.
func timestamptz(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// newID returns a random identifier of 128 bits.
func newID() string { return rand.Text() }
