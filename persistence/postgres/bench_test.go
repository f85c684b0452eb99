package postgres

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// stepCommits returns the two commits of one durable step at pos: the
// intent, then the outcome.
func stepCommits(e *persistence.Execution, pos int) (*persistence.Commit, *persistence.Commit) {
	intent := &persistence.Commit{ExecutionID: e.ID, Epoch: e.Epoch, Journal: []*persistence.JournalEntry{{
		Position: pos, Kind: persistence.EntryCall, Name: "child", ChildID: fmt.Sprintf("%s/%d", e.ID, pos),
	}}}
	outcome := &persistence.Commit{ExecutionID: e.ID, Epoch: e.Epoch, Journal: []*persistence.JournalEntry{{
		Position: pos, Kind: persistence.EntryCall, Name: "child", ChildID: fmt.Sprintf("%s/%d", e.ID, pos),
		Done: true, Output: []byte(`{"ok":true}`),
	}}}
	return intent, outcome
}

// BenchmarkApply measures one durable step from one goroutine: two Apply
// calls in sequence (the intent, then the outcome). ns/op is the step.
func BenchmarkApply(b *testing.B) {
	be, _ := openTestDB(b)
	e := createLeased(b, be, "bench", "node")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		intent, outcome := stepCommits(e, i)
		for _, c := range []*persistence.Commit{intent, outcome} {
			errs, err := be.Apply(ctx, []*persistence.Commit{c})
			if err != nil || errs[0] != nil {
				b.Fatal(err, errs)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/step")
	b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkApplyParallel measures commits from many goroutines, each
// writing its own execution's steps as BenchmarkApply does. ns/op is one
// commit.
func BenchmarkApplyParallel(b *testing.B) {
	for _, goroutines := range []int{16, 64, 256} {
		b.Run(fmt.Sprint(goroutines), func(b *testing.B) {
			be, _ := openTestDB(b)
			ctx := context.Background()
			var next atomic.Int64
			execs := make(chan *persistence.Execution, goroutines*4)
			for i := range cap(execs) {
				execs <- createLeased(b, be, fmt.Sprint("bench-", i), "node")
			}
			b.SetParallelism(max(1, goroutines/ncpu()))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				e := <-execs
				for pos := 0; pb.Next(); pos++ {
					intent, _ := stepCommits(e, pos)
					errs, err := be.Apply(ctx, []*persistence.Commit{intent})
					if err != nil || errs[0] != nil {
						b.Error(err, errs)
						return
					}
					next.Add(1)
				}
			})
			b.ReportMetric(float64(next.Load())/time.Since(start).Seconds(), "commits/s")
		})
	}
}

// BenchmarkBaselineInsert measures one autocommit INSERT with pgx, without
// the backend: the floor a commit costs on this server.
func BenchmarkBaselineInsert(b *testing.B) {
	be, _ := openTestDB(b)
	ctx := context.Background()
	execSQL(b, be, "CREATE TABLE $schema.baseline (id bigint PRIMARY KEY, v text)")
	sql := "INSERT INTO " + be.Schema() + ".baseline (id, v) VALUES ($1, $2)"
	for i := 0; b.Loop(); i++ {
		_, err := be.Pool().Exec(ctx, sql, i, "x")
		require.NoError(b, err)
	}
}

func ncpu() int { return runtime.GOMAXPROCS(0) }
