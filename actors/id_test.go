package actors

import (
	"encoding/hex"
	"testing"
	"time"
)

func TestNewIDSortsByTimeAndIsUnique(t *testing.T) {
	seen := make(map[string]bool)
	prev := NewID()
	for i := 0; i < 10000; i++ {
		if i%1000 == 0 {
			time.Sleep(2 * time.Millisecond) // cross a few milliseconds
		}
		id := NewID()
		if len(id) != 32 {
			t.Fatalf("ID %q: %d characters, want 32", id, len(id))
		}
		if _, err := hex.DecodeString(id); err != nil {
			t.Fatalf("ID %q is not hex: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("ID %q made twice", id)
		}
		seen[id] = true
		// Its time is never before the previous ID's: IDs sort by the
		// millisecond they were made in.
		if id[:12] < prev[:12] {
			t.Fatalf("ID %q has an earlier time than the one before, %q", id, prev)
		}
		prev = id
	}
	before := hexMillis(time.Now().UnixMilli())
	id := NewID()
	after := hexMillis(time.Now().UnixMilli())
	if id[:12] < before || id[:12] > after {
		t.Fatalf("ID %q does not begin with the time, between %s and %s", id, before, after)
	}
}

func hexMillis(ms int64) string {
	var b [6]byte
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return hex.EncodeToString(b[:])
}
