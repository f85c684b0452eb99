package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func sampleEntries(id string) []*persistence.JournalEntry {
	return []*persistence.JournalEntry{
		{ExecutionID: id, Position: 0, Kind: persistence.EntryCall, Name: "step", ChildID: id + ".0", Done: true, Output: []byte(`1`)},
		{ExecutionID: id, Position: 1, Kind: persistence.EntrySleep, FireAt: time.UnixMilli(1_700_000_000_000).UTC(), Done: true},
		{ExecutionID: id, Position: 2, Kind: persistence.EntryNow, Done: true, Output: []byte(`"2026-11-26T00:00:00Z"`)},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	entries := sampleEntries("e1")
	data, pos := encodeSnapshot("e1", entries)
	require.Equal(t, 2, pos)
	got, err := decodeSnapshot("e1", &persistence.Snapshot{ExecutionID: "e1", Position: pos, Data: data})
	require.NoError(t, err)
	require.Equal(t, entries, got)
}

func TestCorruptSnapshotsAreRefusedClearly(t *testing.T) {
	t.Parallel()
	data, pos := encodeSnapshot("e1", sampleEntries("e1"))
	cases := map[string]*persistence.Snapshot{
		"another execution's": {ExecutionID: "e2", Position: pos, Data: data},
		"truncated":           {ExecutionID: "e1", Position: pos, Data: data[:len(data)/2]},
		"wrong position":      {ExecutionID: "e1", Position: pos + 1, Data: data},
		"garbage":             {ExecutionID: "e1", Position: pos, Data: []byte{0xff, 0xff, 0xff}},
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id := s.ExecutionID
			_, err := decodeSnapshot(id, s)
			require.Error(t, err)
			require.Contains(t, err.Error(), "decoding snapshot of "+id)
		})
	}
}

func TestDonePrefixStopsAtTheFirstOpenOrFailedEntry(t *testing.T) {
	t.Parallel()
	m := map[int]*persistence.JournalEntry{}
	for _, e := range sampleEntries("e") {
		m[e.Position] = e
	}
	require.Len(t, donePrefix(m), 3)
	m[1] = &persistence.JournalEntry{Position: 1, Kind: persistence.EntryCall, Done: true, Error: &persistence.ErrorInfo{Message: "x"}}
	require.Len(t, donePrefix(m), 1)
	require.Equal(t, []int{1}, failedPositions(m))
	m[0] = &persistence.JournalEntry{Position: 0, Kind: persistence.EntryCall}
	require.Empty(t, donePrefix(m))
}

func TestSplitChildID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]struct {
		parent string
		pos    int
		ok     bool
	}{
		"abc.3":     {"abc", 3, true},
		"abc.3-2":   {"abc", 3, true},
		"abc.3.12":  {"abc.3", 12, true},
		"abc":       {"", 0, false},
		"abc.x":     {"", 0, false},
		".4":        {"", 0, false},
		"abc.-1":    {"", 0, false},
		"abc.7-2.0": {"abc.7-2", 0, true},
	} {
		parent, pos, ok := SplitChildID(id)
		require.Equal(t, want.ok, ok, id)
		if ok {
			require.Equal(t, want.parent, parent, id)
			require.Equal(t, want.pos, pos, id)
		}
	}
}

func TestExecutionErrorMatchesItsKind(t *testing.T) {
	t.Parallel()
	err := errorFromInfo(&persistence.ErrorInfo{Message: "late", Kind: persistence.ErrorKindTimeout, Function: "f", ExecutionID: "x", Attempts: 2})
	require.ErrorIs(t, err, ErrTimeout)
	require.NotErrorIs(t, err, ErrCanceled)
	require.EqualError(t, err, "f (x) failed after 2 attempts: late")
	require.True(t, IsNonRetryable(NonRetryable(ErrCanceled)))
	require.Nil(t, NonRetryable(nil))
	require.Equal(t, persistence.ErrorKindNonDeterministic, classify(ErrNonDeterministic).Kind)
	require.True(t, classify(ErrNonDeterministic).NonRetryable)
}

// FuzzSnapshotDecode: a snapshot row of any bytes decodes or fails with an
// error; it never panics.
func FuzzSnapshotDecode(f *testing.F) {
	data, pos := encodeSnapshot("e1", sampleEntries("e1"))
	f.Add(data, pos)
	f.Add([]byte{}, -1)
	f.Add([]byte{0x0a, 0x02, 0x65, 0x31}, 0)
	f.Fuzz(func(t *testing.T, data []byte, pos int) {
		entries, err := decodeSnapshot("e1", &persistence.Snapshot{ExecutionID: "e1", Position: pos, Data: data})
		if err == nil {
			for i, e := range entries {
				if e.Position != i {
					t.Fatalf("entry %d has position %d", i, e.Position)
				}
			}
		}
	})
}
