package sdk_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// The four workloads of shared/peersbench, on SQLite with the library
// defaults (WAL, synchronous=NORMAL), plus the memory of sleeping executions.
// With STENT_TEST_BACKEND=postgres (and STENT_TEST_POSTGRES) the first three
// and the memory benchmark run on PostgreSQL.
//
//	go test -run '^$' -bench . -benchtime 5x ./sdk/

var (
	benchStep = sdk.Durable("bench_step", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	benchSeq  = sdk.Durable("bench_seq", func(ctx context.Context, n int) (int, error) {
		x, sum := 0, 0
		for i := 0; i < n; i++ {
			v, err := benchStep.Call(ctx, x)
			if err != nil {
				return 0, err
			}
			x = v
			sum += v
		}
		return sum, nil
	})
	benchFanout = sdk.Durable("bench_fanout", func(ctx context.Context, k int) (int, error) {
		ins := make([]int, k)
		for i := range ins {
			ins[i] = i
		}
		outs, err := benchStep.Map(ctx, ins)
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, v := range outs {
			sum += v
		}
		return sum, nil
	})
	benchThree = sdk.Durable("bench_three", func(ctx context.Context, x int) (int, error) {
		for i := 0; i < 3; i++ {
			v, err := benchStep.Call(ctx, x)
			if err != nil {
				return 0, err
			}
			x = v
		}
		return x, nil
	})
	benchSleeper = sdk.Durable("bench_sleeper", func(ctx context.Context, x int) (int, error) {
		if err := sdk.Sleep(ctx, time.Hour); err != nil {
			return 0, err
		}
		return x, nil
	})
)

func benchExecutor(b *testing.B, opts ...sdk.ExecutorOption) (context.Context, *sdk.Executor) {
	b.Helper()
	var be persistence.Backend
	if onPostgres() {
		_, open := testDatabase(b)
		be = open(b)
	} else {
		var err error
		if be, err = sqlite.Open(filepath.Join(b.TempDir(), "bench.db")); err != nil {
			b.Fatal(err)
		}
	}
	opts = append(benchObservability(b), opts...)
	ex, err := sdk.Bootstrap(context.Background(), be, append([]sdk.ExecutorOption{sdk.Serve()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := ex.Close(); err != nil {
			b.Error(err)
		}
	})
	return sdk.WithExecutor(context.Background(), ex), ex
}

// BenchmarkSeq: one workflow of 100 sequential child calls.
func BenchmarkSeq(b *testing.B) {
	ctx, _ := benchExecutor(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runSeq(b, ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*seqSteps), "ms/step")
}

// seqSteps is the length of the benchSeq workflow the benchmarks run.
const seqSteps = 100

// runSeq runs the benchSeq workflow once on ctx's executor, checks its
// result, and returns how long it took.
func runSeq(b *testing.B, ctx context.Context) time.Duration {
	start := time.Now()
	got, err := benchSeq.Call(ctx, seqSteps)
	if err != nil {
		b.Fatal(err)
	}
	if got != seqSteps*(seqSteps+1)/2 {
		b.Fatalf("got %d", got)
	}
	return time.Since(start)
}

// BenchmarkFanout: one workflow starting 200 children at once and joining them.
func BenchmarkFanout(b *testing.B) {
	ctx, _ := benchExecutor(b)
	const k = 200
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := benchFanout.Call(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		if got != k*(k+1)/2 {
			b.Fatalf("got %d", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/fanout")
}

// BenchmarkThroughput: 500 workflows of 3 sequential steps, started from 8
// goroutines, all awaited.
func BenchmarkThroughput(b *testing.B) {
	ctx, _ := benchExecutor(b)
	const w = 500
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		handles := make([]*sdk.Handle[int], w)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for j := g; j < w; j += 8 {
					h, err := benchThree.Start(ctx, j)
					if err != nil {
						errs <- err
						return
					}
					handles[j] = h
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		sum := 0
		for _, h := range handles {
			v, err := h.Result(ctx)
			if err != nil {
				b.Fatal(err)
			}
			sum += v
		}
		if want := w*(w-1)/2 + 3*w; sum != want {
			b.Fatalf("got %d, want %d", sum, want)
		}
	}
	b.ReportMetric(float64(w*b.N)/b.Elapsed().Seconds(), "wf/s")
}

const envStartupHelper = "STENT_BENCH_STARTUP" // the database path

// startupHelper is the child process of BenchmarkStartup: open, migrate,
// start the engine, run one workflow of one step, print the nanoseconds
// since STENT_BENCH_T0.
func startupHelper() int {
	t0, err := strconv.ParseInt(os.Getenv("STENT_BENCH_T0"), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if os.Getenv("STENT_BENCH_VERBOSE") != "" {
		fmt.Fprintf(os.Stderr, "process start to main: %s\n", time.Duration(time.Now().UnixNano()-t0))
	}
	ctx := context.Background()
	be, err := sqlite.Open(os.Getenv(envStartupHelper))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ex, err := sdk.Bootstrap(ctx, be, sdk.Serve())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	got, err := benchThree.Call(ctx, 1)
	elapsed := time.Now().UnixNano() - t0
	if err != nil || got != 4 {
		fmt.Fprintln(os.Stderr, got, err)
		return 2
	}
	fmt.Println(elapsed)
	if err := ex.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

// BenchmarkStartup: process start to the first completed workflow, in a new
// process on a new database each time.
func BenchmarkStartup(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), envStartupHelper+"="+filepath.Join(b.TempDir(), "startup.db"),
			"STENT_BENCH_T0="+strconv.FormatInt(time.Now().UnixNano(), 10))
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%v: %s", err, out)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatalf("reading %q: %v", out, err)
		}
		total += time.Duration(ns)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/startup")
}

// BenchmarkSleepingMemory starts STENT_BENCH_SLEEPERS (default 10,000)
// executions that sleep for an hour, waits until every one has passivated,
// and reports the process's resident memory and live heap.
func BenchmarkSleepingMemory(b *testing.B) {
	n := 10_000
	if v := os.Getenv("STENT_BENCH_SLEEPERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < b.N; i++ {
		ctx, ex := benchExecutor(b)
		rssBefore := residentMB(b)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for j := g; j < n; j += 8 {
					if _, err := benchSleeper.Start(ctx, j); err != nil {
						errs <- err
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			rows, err := ex.Backend().ListExecutions(ctx, persistence.ListFilter{Status: persistence.StatusRunning, Limit: 1})
			if err != nil {
				b.Fatal(err)
			}
			if len(rows) == 0 && len(ex.ActiveExecutions()) == 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("executions did not passivate")
			}
			time.Sleep(50 * time.Millisecond)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(residentMB(b), "rss-MB")
		b.ReportMetric(residentMB(b)-rssBefore, "rss-growth-MB")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
		b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	}
}

func residentMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
