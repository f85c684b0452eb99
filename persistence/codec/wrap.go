package codec

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/persistence"
)

// Backend is a persistence.Backend whose payloads pass through a Codec:
// encoded on their way in, decoded on their way out. The values its callers
// pass are never changed (encoded copies are written). Methods it does not
// override pass through unchanged.
type Backend struct {
	persistence.Backend
	c Codec
}

// Wrap returns b with its payloads encoded by c, or b itself when c is nil.
func Wrap(b persistence.Backend, c Codec) persistence.Backend {
	if c == nil {
		return b
	}
	return &Backend{Backend: b, c: c}
}

// Unwrap returns the backend underneath.
func (b *Backend) Unwrap() persistence.Backend { return b.Backend }

func (b *Backend) encExec(e *persistence.Execution) (*persistence.Execution, error) {
	if e == nil {
		return nil, nil
	}
	cp := *e
	var err error
	if cp.Input, err = b.c.Encode(e.Input); err != nil {
		return nil, fmt.Errorf("encoding input of %s: %w", e.ID, err)
	}
	if cp.Output, err = b.c.Encode(e.Output); err != nil {
		return nil, fmt.Errorf("encoding output of %s: %w", e.ID, err)
	}
	return &cp, nil
}

func (b *Backend) decExec(e *persistence.Execution) error {
	if e == nil {
		return nil
	}
	var err error
	if e.Input, err = b.c.Decode(e.Input); err != nil {
		return fmt.Errorf("decoding input of %s: %w", e.ID, err)
	}
	if e.Output, err = b.c.Decode(e.Output); err != nil {
		return fmt.Errorf("decoding output of %s: %w", e.ID, err)
	}
	return nil
}

func (b *Backend) decExecs(es []*persistence.Execution) error {
	for _, e := range es {
		if err := b.decExec(e); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) encEntry(je *persistence.JournalEntry) (*persistence.JournalEntry, error) {
	if je == nil {
		return nil, nil
	}
	cp := *je
	var err error
	if cp.Output, err = b.c.Encode(je.Output); err != nil {
		return nil, fmt.Errorf("encoding journal entry %d of %s: %w", je.Position, je.ExecutionID, err)
	}
	if cp.Input, err = b.c.Encode(je.Input); err != nil {
		return nil, fmt.Errorf("encoding input of journal entry %d of %s: %w", je.Position, je.ExecutionID, err)
	}
	return &cp, nil
}

// decEntry decodes the payloads of an entry read back.
func (b *Backend) decEntry(je *persistence.JournalEntry, id string) error {
	var err error
	if je.Output, err = b.c.Decode(je.Output); err != nil {
		return fmt.Errorf("decoding journal entry %d of %s: %w", je.Position, id, err)
	}
	if je.Input, err = b.c.Decode(je.Input); err != nil {
		return fmt.Errorf("decoding input of journal entry %d of %s: %w", je.Position, id, err)
	}
	return nil
}

// CreateExecution encodes e's payloads and decodes the row returned.
func (b *Backend) CreateExecution(ctx context.Context, e *persistence.Execution) (*persistence.Execution, bool, error) {
	enc, err := b.encExec(e)
	if err != nil {
		return nil, false, err
	}
	got, created, err := b.Backend.CreateExecution(ctx, enc)
	if derr := b.decExec(got); derr != nil && err == nil {
		err = derr
	}
	return got, created, err
}

// Apply encodes every payload of the commits (copies) before it writes them.
func (b *Backend) Apply(ctx context.Context, commits []*persistence.Commit) ([]error, error) {
	out := make([]*persistence.Commit, len(commits))
	for i, c := range commits {
		enc, err := b.encCommit(c)
		if err != nil {
			return nil, err
		}
		out[i] = enc
	}
	return b.Backend.Apply(ctx, out)
}

func (b *Backend) encCommit(c *persistence.Commit) (*persistence.Commit, error) {
	if c == nil {
		return nil, nil
	}
	cp := *c
	var err error
	if len(c.Create) > 0 {
		cp.Create = make([]*persistence.Execution, len(c.Create))
		for i, e := range c.Create {
			if cp.Create[i], err = b.encExec(e); err != nil {
				return nil, err
			}
		}
	}
	if len(c.Journal) > 0 {
		cp.Journal = make([]*persistence.JournalEntry, len(c.Journal))
		for i, je := range c.Journal {
			if cp.Journal[i], err = b.encEntry(je); err != nil {
				return nil, err
			}
		}
	}
	if cp.Deliver, err = b.encEntry(c.Deliver); err != nil {
		return nil, err
	}
	if c.Update != nil {
		u := *c.Update
		if u.Output, err = b.c.Encode(c.Update.Output); err != nil {
			return nil, fmt.Errorf("encoding output of %s: %w", c.ExecutionID, err)
		}
		cp.Update = &u
	}
	if c.Snapshot != nil {
		s := *c.Snapshot
		if s.Data, err = b.c.Encode(c.Snapshot.Data); err != nil {
			return nil, fmt.Errorf("encoding snapshot of %s: %w", c.ExecutionID, err)
		}
		cp.Snapshot = &s
	}
	if c.DeadLetter != nil {
		d := *c.DeadLetter
		if d.Input, err = b.c.Encode(c.DeadLetter.Input); err != nil {
			return nil, fmt.Errorf("encoding dead letter %s: %w", d.ID, err)
		}
		cp.DeadLetter = &d
	}
	return &cp, nil
}

// GetExecution decodes the row read.
func (b *Backend) GetExecution(ctx context.Context, id string) (*persistence.Execution, error) {
	e, err := b.Backend.GetExecution(ctx, id)
	if derr := b.decExec(e); derr != nil {
		return nil, derr
	}
	return e, err
}

// ListExecutions decodes the rows read. A row whose payloads do not decode
// (a key this codec lacks) is listed without them, its Error saying why,
// instead of hiding the others.
func (b *Backend) ListExecutions(ctx context.Context, f persistence.ListFilter) ([]*persistence.Execution, error) {
	es, err := b.Backend.ListExecutions(ctx, f)
	for _, e := range es {
		if derr := b.decExec(e); derr != nil {
			e.Input, e.Output = nil, nil
			e.Error = &persistence.ErrorInfo{Message: derr.Error(), Kind: persistence.ErrorKindDecode}
		}
	}
	return es, err
}

// LoadJournal decodes the snapshot and the entries read.
func (b *Backend) LoadJournal(ctx context.Context, id string) (*persistence.Snapshot, []*persistence.JournalEntry, error) {
	s, entries, err := b.Backend.LoadJournal(ctx, id)
	if err != nil {
		return s, entries, err
	}
	if s != nil {
		if s.Data, err = b.c.Decode(s.Data); err != nil {
			return nil, nil, fmt.Errorf("decoding snapshot of %s: %w", id, err)
		}
	}
	for _, je := range entries {
		if err := b.decEntry(je, id); err != nil {
			return nil, nil, err
		}
	}
	return s, entries, nil
}

// AcquireLease decodes the execution leased.
func (b *Backend) AcquireLease(ctx context.Context, id, owner string, ttl time.Duration) (*persistence.Execution, error) {
	e, err := b.Backend.AcquireLease(ctx, id, owner, ttl)
	if derr := b.decExec(e); derr != nil {
		return nil, derr
	}
	return e, err
}

// ClaimDue decodes the executions claimed. One that does not decode (a key
// this codec lacks) fails the claim: running it with its payload unread
// would fail it for good, while its lease, left to expire, lets a node
// that has the key run it.
func (b *Backend) ClaimDue(ctx context.Context, owner string, queues, functions []string, ttl time.Duration, limit int) ([]*persistence.Execution, error) {
	es, err := b.Backend.ClaimDue(ctx, owner, queues, functions, ttl, limit)
	if err != nil {
		return es, err
	}
	if err := b.decExecs(es); err != nil {
		return nil, fmt.Errorf("claiming: %w", err)
	}
	return es, nil
}

func (b *Backend) decDeadLetter(d *persistence.DeadLetter) error {
	if d == nil {
		return nil
	}
	var err error
	if d.Input, err = b.c.Decode(d.Input); err != nil {
		return fmt.Errorf("decoding dead letter %s: %w", d.ID, err)
	}
	return nil
}

// ListDeadLetters decodes the dead letters read; one that does not decode
// is listed without its input, its Error saying why.
func (b *Backend) ListDeadLetters(ctx context.Context, limit int) ([]*persistence.DeadLetter, error) {
	ds, err := b.Backend.ListDeadLetters(ctx, limit)
	for _, d := range ds {
		if derr := b.decDeadLetter(d); derr != nil {
			d.Input = nil
			d.Error = &persistence.ErrorInfo{Message: derr.Error(), Kind: persistence.ErrorKindDecode}
		}
	}
	return ds, err
}

// GetDeadLetter decodes the dead letter read.
func (b *Backend) GetDeadLetter(ctx context.Context, id string) (*persistence.DeadLetter, error) {
	d, err := b.Backend.GetDeadLetter(ctx, id)
	if derr := b.decDeadLetter(d); derr != nil {
		return nil, derr
	}
	return d, err
}

// ReplayDeadLetter decodes the execution replayed.
func (b *Backend) ReplayDeadLetter(ctx context.Context, id string) (*persistence.Execution, error) {
	e, err := b.Backend.ReplayDeadLetter(ctx, id)
	if derr := b.decExec(e); derr != nil && err == nil {
		err = derr
	}
	return e, err
}

// SendSignal encodes the signal's payload (s is not changed) and decodes the
// execution returned.
func (b *Backend) SendSignal(ctx context.Context, s *persistence.Signal, maxPending int) (*persistence.Execution, error) {
	cp := *s
	var err error
	if cp.Payload, err = b.c.Encode(s.Payload); err != nil {
		return nil, fmt.Errorf("encoding signal %q to %s: %w", s.Name, s.ExecutionID, err)
	}
	e, err := b.Backend.SendSignal(ctx, &cp, maxPending)
	payload := s.Payload
	*s = cp // what the backend set in it (Seq, CreatedAt, ...)
	s.Payload = payload
	if derr := b.decExec(e); derr != nil && err == nil {
		err = derr
	}
	return e, err
}

// NextSignal decodes the signal's payload.
func (b *Backend) NextSignal(ctx context.Context, executionID, name string) (*persistence.Signal, error) {
	s, err := b.Backend.NextSignal(ctx, executionID, name)
	if err != nil {
		return s, err
	}
	if s.Payload, err = b.c.Decode(s.Payload); err != nil {
		return nil, fmt.Errorf("decoding signal %q of %s: %w", name, executionID, err)
	}
	return s, nil
}

// RequestCancel decodes the executions returned.
func (b *Backend) RequestCancel(ctx context.Context, id string) ([]*persistence.Execution, error) {
	es, err := b.Backend.RequestCancel(ctx, id)
	if derr := b.decExecs(es); derr != nil && err == nil {
		err = derr
	}
	return es, err
}

// DeadLettersOf decodes the dead letters read, as ListDeadLetters does.
func (b *Backend) DeadLettersOf(ctx context.Context, executionID string) ([]*persistence.DeadLetter, error) {
	ds, err := b.Backend.DeadLettersOf(ctx, executionID)
	for _, d := range ds {
		if derr := b.decDeadLetter(d); derr != nil {
			d.Input = nil
			d.Error = &persistence.ErrorInfo{Message: derr.Error(), Kind: persistence.ErrorKindDecode}
		}
	}
	return ds, err
}

// JournalEntries decodes the entries read.
func (b *Backend) JournalEntries(ctx context.Context, executionID string) ([]*persistence.JournalEntry, error) {
	entries, err := b.Backend.JournalEntries(ctx, executionID)
	if err != nil {
		return entries, err
	}
	for _, je := range entries {
		if err := b.decEntry(je, executionID); err != nil {
			return nil, err
		}
	}
	return entries, nil
}

func (b *Backend) encSchedule(s *persistence.Schedule) (*persistence.Schedule, error) {
	if s == nil {
		return nil, nil
	}
	cp := *s
	var err error
	if cp.Input, err = b.c.Encode(s.Input); err != nil {
		return nil, fmt.Errorf("encoding input of schedule %s: %w", s.Name, err)
	}
	return &cp, nil
}

func (b *Backend) decSchedules(ss ...*persistence.Schedule) error {
	for _, s := range ss {
		if s == nil {
			continue
		}
		var err error
		if s.Input, err = b.c.Decode(s.Input); err != nil {
			return fmt.Errorf("decoding input of schedule %s: %w", s.Name, err)
		}
	}
	return nil
}

// CreateSchedule encodes the schedule's input and decodes the row returned.
func (b *Backend) CreateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	enc, err := b.encSchedule(s)
	if err != nil {
		return nil, err
	}
	got, err := b.Backend.CreateSchedule(ctx, enc)
	if derr := b.decSchedules(got); derr != nil && err == nil {
		err = derr
	}
	return got, err
}

// UpdateSchedule encodes the schedule's input and decodes the row returned.
func (b *Backend) UpdateSchedule(ctx context.Context, s *persistence.Schedule) (*persistence.Schedule, error) {
	enc, err := b.encSchedule(s)
	if err != nil {
		return nil, err
	}
	got, err := b.Backend.UpdateSchedule(ctx, enc)
	if derr := b.decSchedules(got); derr != nil && err == nil {
		err = derr
	}
	return got, err
}

// GetSchedule decodes the schedule's input.
func (b *Backend) GetSchedule(ctx context.Context, name string) (*persistence.Schedule, error) {
	s, err := b.Backend.GetSchedule(ctx, name)
	if derr := b.decSchedules(s); derr != nil && err == nil {
		return nil, derr
	}
	return s, err
}

// ListSchedules decodes the schedules' inputs.
func (b *Backend) ListSchedules(ctx context.Context) ([]*persistence.Schedule, error) {
	ss, err := b.Backend.ListSchedules(ctx)
	if derr := b.decSchedules(ss...); derr != nil && err == nil {
		return nil, derr
	}
	return ss, err
}

// ClaimDueSchedules decodes the schedules claimed.
func (b *Backend) ClaimDueSchedules(ctx context.Context, owner string, ttl time.Duration, limit int) ([]*persistence.Schedule, time.Time, error) {
	ss, now, err := b.Backend.ClaimDueSchedules(ctx, owner, ttl, limit)
	if derr := b.decSchedules(ss...); derr != nil && err == nil {
		return nil, now, derr
	}
	return ss, now, err
}

// FireSchedule encodes the inputs of the executions it starts (f is not
// changed) and decodes the executions returned.
func (b *Backend) FireSchedule(ctx context.Context, f *persistence.ScheduleFire) ([]*persistence.Execution, error) {
	cp := *f
	cp.Create = make([]*persistence.Execution, len(f.Create))
	for i, e := range f.Create {
		var err error
		if cp.Create[i], err = b.encExec(e); err != nil {
			return nil, err
		}
	}
	es, err := b.Backend.FireSchedule(ctx, &cp)
	f.LastExecutionID = cp.LastExecutionID // Resolve's, as the backend left it
	if derr := b.decExecs(es); derr != nil && err == nil {
		err = derr
	}
	return es, err
}
