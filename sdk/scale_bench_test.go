package sdk_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// BenchmarkScale measures the operations an operator runs on a large
// database: with STENT_BENCH_ROWS finished executions (default 1,000,000),
// the first page and a page from the middle of the list, Stats, the claim of
// a new execution, and Cleanup, whose batches must never hold up live work
// for long (the "live_max_ms" metric: the slowest start-and-claim of a new
// execution while Cleanup runs). Filling the database takes a minute or
// more, so the benchmark runs only with STENT_BENCH_SCALE=1:
//
//	STENT_BENCH_SCALE=1 go test -run '^$' -bench Scale -benchtime 20x ./sdk/
//	STENT_BENCH_SCALE=1 STENT_TEST_BACKEND=postgres STENT_TEST_POSTGRES=... go test -run '^$' -bench Scale -benchtime 20x ./sdk/
func BenchmarkScale(b *testing.B) {
	if os.Getenv("STENT_BENCH_SCALE") != "1" {
		b.Skip("set STENT_BENCH_SCALE=1 to fill a database with many executions and measure")
	}
	rows := 1_000_000
	if v := os.Getenv("STENT_BENCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("STENT_BENCH_ROWS=%q: want a number of rows, 1000 or more", v)
		}
		rows = n
	}
	ctx := context.Background()
	be, fill := scaleBackend(b)
	if err := be.Init(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := fill(ctx, rows); err != nil {
		b.Fatalf("filling %d executions: %v", rows, err)
	}
	b.Logf("filled %d finished executions in %s", rows, time.Since(start).Round(time.Millisecond))
	ex, err := sdk.New(be)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := ex.Close(); err != nil {
			b.Error(err)
		}
	})
	// The bulk insert left its finished counts to fold (PostgreSQL), a
	// one-off: nodes fold them at each heartbeat.
	start = time.Now()
	if _, err := ex.Stats(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("first Stats (folding the counts of the bulk insert) in %s", time.Since(start).Round(time.Millisecond))

	b.Run("ListFirstPage", func(b *testing.B) {
		for b.Loop() {
			p, err := ex.ListPage(ctx, sdk.ListFilter{Limit: 50})
			if err != nil || len(p.Items) != 50 {
				b.Fatal(len(p.Items), err)
			}
		}
		msPerOp(b)
	})
	b.Run("ListMiddlePage", func(b *testing.B) {
		// A cursor at the middle of the list: the page of one execution
		// created before the midpoint.
		mid := time.Now().Add(-time.Duration(rows) * 3 * time.Millisecond / 2)
		first, err := ex.ListPage(ctx, sdk.ListFilter{Until: mid, Limit: 1})
		if err != nil || first.Next == "" {
			b.Fatal(first, err)
		}
		for b.Loop() {
			p, err := ex.ListPage(ctx, sdk.ListFilter{After: first.Next, Limit: 50})
			if err != nil || len(p.Items) != 50 {
				b.Fatal(len(p.Items), err)
			}
		}
		msPerOp(b)
	})
	b.Run("ListFunctionPage", func(b *testing.B) {
		for b.Loop() {
			p, err := ex.ListPage(ctx, sdk.ListFilter{Function: "bench_fn_3", Status: sdk.StatusCompleted, Limit: 50})
			if err != nil || len(p.Items) != 50 {
				b.Fatal(len(p.Items), err)
			}
		}
		msPerOp(b)
	})
	b.Run("Stats", func(b *testing.B) {
		for b.Loop() {
			st, err := ex.Stats(ctx)
			if err != nil || st.Total < rows {
				b.Fatal(st.Total, err)
			}
		}
		msPerOp(b)
	})
	b.Run("Claim", func(b *testing.B) {
		for b.Loop() {
			if _, err := startAndClaim(ctx, be); err != nil {
				b.Fatal(err)
			}
		}
		msPerOp(b)
	})
	var cleanup map[string]float64 // measured once: the first run deletes everything
	b.Run("Cleanup", func(b *testing.B) {
		if cleanup == nil {
			cleanup = benchCleanup(ctx, b, ex, be)
		}
		for unit, v := range cleanup {
			b.ReportMetric(v, unit)
		}
	})
}

// msPerOp reports the mean time of an operation in milliseconds.
func msPerOp(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
}

// startAndClaim inserts a new pending execution and claims it, as a node
// does, and returns how long it took.
func startAndClaim(ctx context.Context, be persistence.Backend) (time.Duration, error) {
	begin := time.Now()
	id := "live-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, _, err := be.CreateExecution(ctx, &persistence.Execution{ID: id, Function: "bench_live", Queue: sdk.DefaultQueue,
		Input: json.RawMessage(`1`)}); err != nil {
		return 0, err
	}
	got, err := be.ClaimDue(ctx, "bench-node", nil, []string{"bench_live"}, time.Minute, 10)
	if err != nil {
		return 0, err
	}
	if len(got) != 1 || got[0].ID != id {
		return 0, fmt.Errorf("claimed %d executions, want the new one", len(got))
	}
	apply := &persistence.Commit{ExecutionID: id, Epoch: got[0].Epoch,
		Update: &persistence.Update{Status: persistence.StatusCompleted, Output: []byte(`1`), Release: true}}
	errs, err := be.Apply(ctx, []*persistence.Commit{apply})
	if err == nil {
		err = errs[0]
	}
	return time.Since(begin), err
}

// benchCleanup deletes every finished execution with Cleanup while live
// work (start, claim, complete) goes on, and returns its metrics: the
// executions deleted, per second, and the slowest live operation.
func benchCleanup(ctx context.Context, b *testing.B, ex *sdk.Executor, be persistence.Backend) map[string]float64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var slowest time.Duration
	var live int
	var durations []time.Duration
	var liveErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			d, err := startAndClaim(ctx, be)
			if err != nil {
				liveErr = err
				return
			}
			live++
			slowest = max(slowest, d)
			durations = append(durations, d)
		}
	}()
	begin := time.Now()
	n, err := ex.Cleanup(ctx, 0)
	elapsed := time.Since(begin)
	close(stop)
	wg.Wait()
	if err != nil || liveErr != nil {
		b.Fatal(err, liveErr)
	}
	slices.Sort(durations)
	p99 := durations[len(durations)*99/100]
	return map[string]float64{"deleted": float64(n), "deleted/s": float64(n) / elapsed.Seconds(),
		"live_max_ms": float64(slowest.Microseconds()) / 1000, "live_p99_ms": float64(p99.Microseconds()) / 1000,
		"live_ops": float64(live)}
}

// scaleBackend opens the backend under test and returns it with a function
// that fills it with n finished root executions: ten functions, created 1ms
// apart, ending before now, without journals.
func scaleBackend(b *testing.B) (persistence.Backend, func(context.Context, int) error) {
	b.Helper()
	if onPostgres() {
		_, open := testDatabase(b)
		be := open(b).(*postgres.Backend)
		return be, func(ctx context.Context, n int) error {
			table := pgx.Identifier{be.Schema(), "stent_execution"}.Sanitize()
			first := time.Now().Add(-time.Duration(2*n) * time.Millisecond)
			_, err := be.Pool().Exec(ctx, `INSERT INTO `+table+` (id, function, queue, status, input, output, root_id,
	attempts, lease_epoch, created_at, updated_at)
SELECT 'bench-' || lpad(i::text, 8, '0'), 'bench_fn_' || (i % 10), 'default', 'completed', '1', '2',
	'bench-' || lpad(i::text, 8, '0'), 1, 1, $1::timestamptz + i * interval '1 ms', $1::timestamptz + i * interval '1 ms' + interval '5 ms'
FROM generate_series(0, $2::int - 1) AS i`, first, n)
			if err != nil {
				return err
			}
			_, err = be.Pool().Exec(ctx, "VACUUM ANALYZE "+table)
			return err
		}
	}
	path := filepath.Join(b.TempDir(), "scale.db")
	be, err := sqlite.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	return be, func(ctx context.Context, n int) error {
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		defer db.Close()
		first := time.Now().Add(-time.Duration(2*n) * time.Millisecond).UnixMilli()
		_, err = db.ExecContext(ctx, `WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?2 - 1)
INSERT INTO stent_execution (id, function, queue, status, input, output, root_id, attempts, lease_epoch,
	created_at, updated_at)
SELECT printf('bench-%08d', i), 'bench_fn_' || (i % 10), 'default', 'completed', X'31', X'32', printf('bench-%08d', i),
	1, 1, ?1 + i, ?1 + i + 5
FROM seq`, first, n)
		if err != nil {
			return err
		}
		_, err = db.ExecContext(ctx, "ANALYZE")
		return err
	}
}
