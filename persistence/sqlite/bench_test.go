package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stent-go/stent/persistence"
)

// benchBackend opens a file database and leases n executions, returning
// their IDs and epochs.
func benchBackend(b *testing.B, n int) (*Backend, []string, []int64) {
	b.Helper()
	be, err := Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if n := be.w.batches.Load(); n > 0 {
			b.ReportMetric(float64(be.w.requests.Load())/float64(n), "req/batch")
		}
		if err := be.Close(); err != nil {
			b.Error(err)
		}
	})
	ctx := context.Background()
	if err := be.Init(ctx); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	epochs := make([]int64, n)
	for i := range n {
		ids[i] = fmt.Sprintf("bench-%04d", i)
		if _, _, err := be.CreateExecution(ctx, &persistence.Execution{ID: ids[i], Function: "bench", Input: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		e, err := be.AcquireLease(ctx, ids[i], "bench-node", time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		epochs[i] = e.Epoch
	}
	return be, ids, epochs
}

// stepCommits returns the two commits of the durable step number i: the
// intent, then the outcome. Positions wrap at 1000 so that the journal
// stays small; the output changes at every step, so that every commit
// writes a page (SQLite writes nothing for an upsert that changes nothing).
func stepCommits(id string, epoch int64, i int) (intent, outcome []*persistence.Commit) {
	pos := i % 1000
	intent = []*persistence.Commit{{ExecutionID: id, Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: pos, Kind: persistence.EntryCall, Name: "child", ChildID: id + "/c"}}}}
	outcome = []*persistence.Commit{{ExecutionID: id, Epoch: epoch, Journal: []*persistence.JournalEntry{
		{Position: pos, Kind: persistence.EntryCall, Name: "child", ChildID: id + "/c", Done: true,
			Output: strconv.AppendInt([]byte(`{"step":`), int64(i), 10)}}}}
	return intent, outcome
}

func mustApply(b *testing.B, be *Backend, commits []*persistence.Commit) {
	errs, err := be.Apply(context.Background(), commits)
	if err == nil {
		err = errs[0]
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApply is one Apply of one commit (a journal entry), serially.
func BenchmarkApply(b *testing.B) {
	be, ids, epochs := benchBackend(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, outcome := stepCommits(ids[0], epochs[0], i)
		mustApply(b, be, outcome)
	}
}

// BenchmarkApplyStepRecord is BenchmarkApply with the outcome holding the
// step's record, as a step recorded only in its parent's journal writes
// it: its input, times and attempts.
func BenchmarkApplyStepRecord(b *testing.B) {
	be, ids, epochs := benchBackend(b, 1)
	started := time.Now().UTC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_, outcome := stepCommits(ids[0], epochs[0], i)
		e := outcome[0].Journal[0]
		e.Input = append(strconv.AppendInt([]byte(`{"item":`), int64(i), 10), '}')
		e.StartedAt, e.EndedAt, e.Attempts = started, started.Add(time.Millisecond), 1
		mustApply(b, be, outcome)
	}
}

// BenchmarkDurableStep is a whole durable step, serially: the intent commit
// and the outcome commit.
func BenchmarkDurableStep(b *testing.B) {
	be, ids, epochs := benchBackend(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		intent, outcome := stepCommits(ids[0], epochs[0], i)
		mustApply(b, be, intent)
		mustApply(b, be, outcome)
	}
}

// BenchmarkApplyParallel runs Apply from many goroutines, each for its own
// execution, so that the writer groups their commits.
func BenchmarkApplyParallel(b *testing.B) {
	const goroutines = 64
	be, ids, epochs := benchBackend(b, goroutines*4)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(goroutines / 2) // × GOMAXPROCS
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		k := int(next.Add(1)-1) % len(ids)
		for i := 0; pb.Next(); i++ {
			_, outcome := stepCommits(ids[k], epochs[k], i)
			mustApply(b, be, outcome)
		}
	})
}

// BenchmarkGetExecution is a read from the pool.
func BenchmarkGetExecution(b *testing.B) {
	be, ids, _ := benchBackend(b, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := be.GetExecution(ctx, ids[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWorkflowRow is the life of a workflow's row, serially: created
// running under this node's lease, then completed and released, as a
// started workflow's first and last writes are.
func BenchmarkWorkflowRow(b *testing.B) {
	be, _, _ := benchBackend(b, 0)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("wf-%09d", i)
		e, _, err := be.CreateExecution(ctx, &persistence.Execution{ID: id, Function: "bench", Input: []byte(`{"n":1}`),
			Status: persistence.StatusRunning, Owner: "bench-node", Epoch: 1, LeaseTTL: time.Minute, Attempts: 1})
		if err != nil {
			b.Fatal(err)
		}
		mustApply(b, be, []*persistence.Commit{{ExecutionID: id, Epoch: e.Epoch, Update: &persistence.Update{
			Status: persistence.StatusCompleted, Output: []byte(`2`), Release: true}}})
	}
}
