package sdk_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stent-go/stent/sdk"
)

// Benchmarks of the coordination features:
//
//	go test -run '^$' -bench 'Signal|Limited' -benchtime 200x ./sdk/

var (
	benchPongs    = make(chan time.Time, 1)
	benchSignaled = sdk.Durable("bench_signaled", func(ctx context.Context, n int) (int, error) {
		for i := 0; i < n; i++ {
			if _, err := sdk.WaitForSignal[int](ctx, "ping"); err != nil {
				return 0, err
			}
			benchPongs <- time.Now()
		}
		return n, nil
	})
	benchLimitedStep = sdk.Durable("bench_limited_step", func(ctx context.Context, x int) (int, error) {
		time.Sleep(10 * time.Millisecond) // a call to a rate-limited API
		return x, nil
	}, sdk.WithMaxConcurrent(8))
)

// BenchmarkSignalRoundTrip: SendSignal returns, then the waiting body
// resumes with the signal (the wait is in memory, on the same node).
func BenchmarkSignalRoundTrip(b *testing.B) {
	ctx, ex := benchExecutor(b)
	h, err := benchSignaled.Start(ctx, b.N)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := ex.SendSignal(ctx, h.ID(), "ping", i); err != nil {
			b.Fatal(err)
		}
		t1 := <-benchPongs
		lat = append(lat, t1.Sub(t0))
	}
	b.StopTimer()
	if _, err := h.Result(ctx); err != nil {
		b.Fatal(err)
	}
	reportLatency(b, lat)
}

// BenchmarkLimitedThroughput: 200 root calls of a function limited to 8
// that takes 10 ms; the ideal is 800 calls/s.
func BenchmarkLimitedThroughput(b *testing.B) {
	ctx, _ := benchExecutor(b)
	const calls, limit = 200, 8
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		handles := make([]*sdk.Handle[int], calls)
		var wg sync.WaitGroup
		for j := range handles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, err := benchLimitedStep.Start(ctx, j)
				if err != nil {
					b.Error(err)
					return
				}
				handles[j] = h
			}()
		}
		wg.Wait()
		for _, h := range handles {
			if h == nil {
				b.FailNow()
			}
			if _, err := h.Result(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	perSec := float64(calls*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "calls/s")
	b.ReportMetric(perSec/(limit*100), "of-ideal")
}
