package actors

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/stent-go/stent/messages"
	"github.com/stent-go/stent/persistence"
)

// Fuzz tests of what a node decodes from stored or received bytes: journal
// snapshots (rows) and cluster messages. `go test` runs their seeds.

func seedEntries() []*persistence.JournalEntry {
	return []*persistence.JournalEntry{
		{Position: 0, Kind: persistence.EntryCall, Name: "f", ChildID: "x/0", Done: true, Output: []byte(`{"a":1}`)},
		{Position: 1, Kind: persistence.EntrySleep, FireAt: time.UnixMilli(1_700_000_000_000).UTC(), Done: true},
		{Position: 2, Kind: persistence.EntrySignal, Name: "go", Done: true, Output: []byte(`"yes"`)},
		{Position: 3, Kind: persistence.EntryCall, Name: "g", ChildID: "x/3", Done: true,
			Error: &persistence.ErrorInfo{Message: "boom", Kind: persistence.ErrorKindPanic, Attempts: 2}},
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	good, pos := encodeSnapshot("x", seedEntries())
	f.Add(good, pos)
	f.Add([]byte{}, -1)
	f.Add([]byte{0x0a, 0x01, 'y'}, 0)
	f.Add(good[:len(good)/2], pos)
	f.Fuzz(func(t *testing.T, data []byte, pos int) {
		entries, err := decodeSnapshot("x", &persistence.Snapshot{ExecutionID: "x", Position: pos, Data: data})
		if err != nil {
			return
		}
		// What decodes encodes back to a snapshot that decodes the same.
		again, p := encodeSnapshot("x", entries)
		if len(entries) > 0 && p != pos {
			t.Fatalf("re-encoded snapshot ends at %d, not %d", p, pos)
		}
		back, err := decodeSnapshot("x", &persistence.Snapshot{ExecutionID: "x", Position: p, Data: again})
		if err != nil {
			t.Fatalf("a re-encoded snapshot does not decode: %v", err)
		}
		if len(back) != len(entries) {
			t.Fatalf("%d entries, then %d", len(entries), len(back))
		}
		for i := range back {
			if back[i].Position != i || back[i].Kind != entries[i].Kind || !bytes.Equal(back[i].Output, entries[i].Output) {
				t.Fatalf("entry %d changed: %+v, then %+v", i, entries[i], back[i])
			}
		}
	})
}

// FuzzClusterMessage unmarshals bytes as each message a node receives from
// another, and hands a child's outcome to an execution: nothing panics, and
// an outcome never replaces a recorded outcome or an entry that is not a
// call, nor lands at a negative position.
func FuzzClusterMessage(f *testing.F) {
	for _, m := range []proto.Message{
		&messages.ChildOutcome{ParentId: "p", Position: 0, ChildId: "p/0", Function: "f", Output: []byte(`1`)},
		&messages.ChildOutcome{ParentId: "p", Position: 1, ChildId: "p/1", Error: &messages.ErrorInfo{Message: "x", Attempts: 3}},
		&messages.ChildOutcome{ParentId: "p", Position: -5},
		&messages.Activate{ExecutionId: "e"},
		&messages.Wake{ExecutionId: "e"},
		&messages.CancelExecution{ExecutionId: "e"},
		&messages.Finished{ExecutionId: "e"},
		&messages.PermitRequest{Function: "k", Holder: "h", Limit: 3},
		&messages.PermitGranted{Function: "k", Holder: "h"},
		&messages.PermitReleased{Function: "k", Holder: "h"},
		&messages.PermitCanceled{Function: "k", Holder: "h"},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range []proto.Message{
			&messages.Activate{}, &messages.Wake{}, &messages.CancelExecution{}, &messages.Finished{},
			&messages.PermitRequest{}, &messages.PermitGranted{}, &messages.PermitReleased{}, &messages.PermitCanceled{},
			&messages.JournalRecord{}, &messages.Snapshot{},
		} {
			_ = proto.Unmarshal(data, m)
		}
		var rec messages.JournalRecord
		if proto.Unmarshal(data, &rec) == nil {
			_ = recordToEntry("p", &rec)
		}
		var m messages.ChildOutcome
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		open := &persistence.JournalEntry{ExecutionID: "p", Position: 0, Kind: persistence.EntryCall, Name: "f", ChildID: "p/0"}
		done := &persistence.JournalEntry{ExecutionID: "p", Position: 1, Kind: persistence.EntryCall, Name: "f", ChildID: "p/1", Done: true}
		sleep := &persistence.JournalEntry{ExecutionID: "p", Position: 2, Kind: persistence.EntrySleep}
		e := &execution{id: "p", entries: map[int]*persistence.JournalEntry{0: open, 1: done, 2: sleep},
			awaits: map[int][]*opAwait{0: {{pos: 0, reply: newReply()}}}, rt: &Runtime{cfg: Config{LeaseTTL: time.Hour}}}
		e.confirm(time.Now())
		e.deliver(nil, &m)
		if e.entries[1] != done || e.entries[2] != sleep {
			t.Fatalf("a recorded outcome or a sleep was replaced by %+v", &m)
		}
		for p := range e.entries {
			if p < 0 {
				t.Fatalf("an outcome landed at position %d", p)
			}
		}
		if got := e.entries[0]; got != open && (got.ChildID != m.ChildId || !got.Done || got.Kind != persistence.EntryCall) {
			t.Fatalf("position 0 holds %+v after %+v", got, &m)
		}
	})
}
