package actors

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// encodeSnapshot serialises the completed prefix of a journal.
func encodeSnapshot(id string, entries []*persistence.JournalEntry) ([]byte, int) {
	snap := &messages.Snapshot{ExecutionId: id, Position: -1}
	for _, e := range entries {
		snap.Entries = append(snap.Entries, entryToRecord(e))
		snap.Position = int32(e.Position)
	}
	b, err := proto.Marshal(snap)
	if err != nil { // cannot happen for these types; keep the journal as the source
		return nil, -1
	}
	return b, int(snap.Position)
}

// decodeSnapshot reads a snapshot back. A snapshot that does not decode, or
// that belongs to another execution, is an error naming the execution.
func decodeSnapshot(id string, s *persistence.Snapshot) ([]*persistence.JournalEntry, error) {
	var snap messages.Snapshot
	if err := proto.Unmarshal(s.Data, &snap); err != nil {
		return nil, fmt.Errorf("decoding snapshot of %s: %w", id, err)
	}
	if snap.ExecutionId != id {
		return nil, fmt.Errorf("decoding snapshot of %s: it belongs to execution %q", id, snap.ExecutionId)
	}
	if int(snap.Position) != s.Position {
		return nil, fmt.Errorf("decoding snapshot of %s: it ends at position %d, its row says %d", id, snap.Position, s.Position)
	}
	if int(snap.Position) != len(snap.Entries)-1 {
		// The rows after Position are read as the rest: a snapshot that
		// holds fewer entries would lose the ones between.
		return nil, fmt.Errorf("decoding snapshot of %s: it ends at position %d but holds %d entries", id, snap.Position, len(snap.Entries))
	}
	out := make([]*persistence.JournalEntry, 0, len(snap.Entries))
	for i, r := range snap.Entries {
		if int(r.Position) != i {
			return nil, fmt.Errorf("decoding snapshot of %s: entry %d has position %d", id, i, r.Position)
		}
		out = append(out, recordToEntry(id, r))
	}
	return out, nil
}

func entryToRecord(e *persistence.JournalEntry) *messages.JournalRecord {
	r := &messages.JournalRecord{
		Position: int32(e.Position),
		Kind:     string(e.Kind),
		Name:     e.Name,
		ChildId:  e.ChildID,
		Done:     e.Done,
		Output:   e.Output,
		Error:    infoToProto(e.Error),
	}
	if !e.FireAt.IsZero() {
		r.FireAtUnixMs = e.FireAt.UnixMilli()
	}
	return r
}

func recordToEntry(id string, r *messages.JournalRecord) *persistence.JournalEntry {
	e := &persistence.JournalEntry{
		ExecutionID: id,
		Position:    int(r.Position),
		Kind:        persistence.EntryKind(r.Kind),
		Name:        r.Name,
		ChildID:     r.ChildId,
		Done:        r.Done,
		Output:      r.Output,
		Error:       infoFromProto(r.Error),
	}
	if r.FireAtUnixMs != 0 {
		e.FireAt = time.UnixMilli(r.FireAtUnixMs).UTC()
	}
	return e
}

func infoToProto(i *persistence.ErrorInfo) *messages.ErrorInfo {
	if i == nil {
		return nil
	}
	return &messages.ErrorInfo{
		Message:      i.Message,
		Kind:         string(i.Kind),
		NonRetryable: i.NonRetryable,
		Stack:        i.Stack,
		Function:     i.Function,
		ExecutionId:  i.ExecutionID,
		Attempts:     int32(i.Attempts),
	}
}

func infoFromProto(m *messages.ErrorInfo) *persistence.ErrorInfo {
	if m == nil {
		return nil
	}
	return &persistence.ErrorInfo{
		Message:      m.Message,
		Kind:         persistence.ErrorKind(m.Kind),
		NonRetryable: m.NonRetryable,
		Stack:        m.Stack,
		Function:     m.Function,
		ExecutionID:  m.ExecutionId,
		Attempts:     int(m.Attempts),
	}
}

// donePrefix returns the entries 0..k of the journal that are all completed
// without error: what a snapshot may hold. Outcomes after it can still change
// (a child's delivery, a retry discarding a failure), so they stay rows.
func donePrefix(entries map[int]*persistence.JournalEntry) []*persistence.JournalEntry {
	var out []*persistence.JournalEntry
	for p := 0; ; p++ {
		e, ok := entries[p]
		if !ok || !e.Done || e.Error != nil {
			return out
		}
		out = append(out, e)
	}
}

// sortedPositions lists the positions of failed entries, in order.
func failedPositions(entries map[int]*persistence.JournalEntry) []int {
	var out []int
	for p, e := range entries {
		if e.Done && e.Error != nil {
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}

// ReadJournal returns the whole journal of execution id, the snapshot's
// entries and the rows after it, in position order.
func ReadJournal(ctx context.Context, b persistence.Backend, id string) ([]*persistence.JournalEntry, error) {
	snap, tail, err := b.LoadJournal(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("loading journal of %s: %w", id, err)
	}
	var out []*persistence.JournalEntry
	if snap != nil {
		if out, err = decodeSnapshot(id, snap); err != nil {
			return nil, err
		}
	}
	return append(out, tail...), nil
}

// SplitChildID returns the parent and the journal position a child's ID
// names (see childID), or ok false for a root's ID.
func SplitChildID(id string) (parent string, pos int, ok bool) {
	dot := strings.LastIndexByte(id, '.')
	if dot <= 0 {
		return "", 0, false
	}
	num := id[dot+1:]
	if dash := strings.IndexByte(num, '-'); dash >= 0 {
		num = num[:dash]
	}
	p, err := strconv.Atoi(num)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return id[:dot], p, true
}
