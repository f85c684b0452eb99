package console

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// latencySamples is how many of a function's latest completed executions
// its latency percentiles are computed from.
const latencySamples = 500

// Function is a function in GET /api/functions: its counts, its latency,
// and, when it is registered in the process that serves the console, its
// limit and cache.
type Function struct {
	Function string         `json:"function"`
	Total    int            `json:"total"`
	ByStatus map[string]int `json:"by_status"`
	// Latency is over the latest completed executions (creation to end).
	Latency Latency `json:"latency"`
	// Registered is true when the function is registered in this process;
	// Queue, MaxConcurrent and CacheTTL come from its options then.
	Registered    bool   `json:"registered"`
	Queue         string `json:"queue,omitempty"`
	MaxConcurrent int    `json:"max_concurrent,omitempty"`
	CacheTTL      string `json:"cache_ttl,omitempty"`
	// PermitsInUse counts the unexpired permits of a function with a
	// concurrency limit (executions running under it, cluster-wide).
	PermitsInUse int `json:"permits_in_use"`
	// CacheHits counts the executions of the function that took their
	// result from the cache (WithCache) instead of running.
	CacheHits int `json:"cache_hits"`
}

// Latency are percentiles of run time, in milliseconds, over Samples
// completed executions (none: all zero).
type Latency struct {
	Samples int   `json:"samples"`
	P50MS   int64 `json:"p50_ms"`
	P95MS   int64 `json:"p95_ms"`
	P99MS   int64 `json:"p99_ms"`
	MaxMS   int64 `json:"max_ms"`
}

// functionsOf describes every function that has executions or is
// registered here, sorted by name.
func functionsOf(ctx context.Context, ex *sdk.Executor) ([]Function, error) {
	st, err := ex.Stats(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*Function{}
	get := func(name string) *Function {
		f := byName[name]
		if f == nil {
			f = &Function{Function: name, ByStatus: map[string]int{}}
			byName[name] = f
		}
		return f
	}
	for _, fs := range ops.ToStats(st).Functions {
		f := get(fs.Function)
		f.Total, f.ByStatus = fs.Total, fs.ByStatus
	}
	for _, r := range sdk.RegisteredFunctions() {
		f := get(r.Name)
		f.Registered, f.Queue, f.MaxConcurrent = true, r.Queue, r.MaxConcurrent
		if r.CacheTTL > 0 {
			f.CacheTTL = r.CacheTTL.String()
		}
	}
	b := ex.Backend()
	hits, err := b.CacheHitsByFunction(ctx)
	if err != nil {
		return nil, err
	}
	for name, n := range hits {
		get(name).CacheHits = n
	}
	out := make([]Function, 0, len(byName))
	for _, f := range byName {
		if f.ByStatus[string(sdk.StatusCompleted)] > 0 {
			if f.Latency, err = latencyOf(ctx, b, f.Function); err != nil {
				return nil, err
			}
		}
		if f.MaxConcurrent > 0 {
			if f.PermitsInUse, err = b.CountPermits(ctx, f.Function); err != nil {
				return nil, fmt.Errorf("counting the permits of %s: %w", f.Function, err)
			}
		}
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Function) int {
		if a.Function < b.Function {
			return -1
		}
		if a.Function > b.Function {
			return 1
		}
		return 0
	})
	return out, nil
}

// latencyOf computes the run-time percentiles of function's latest
// completed executions.
func latencyOf(ctx context.Context, b persistence.Backend, function string) (Latency, error) {
	rows, err := b.ListExecutions(ctx, persistence.ListFilter{Function: function, Status: persistence.StatusCompleted, Limit: latencySamples})
	if err != nil {
		return Latency{}, fmt.Errorf("reading the latency of %s: %w", function, err)
	}
	ds := make([]time.Duration, 0, len(rows))
	for _, r := range rows {
		if !r.CreatedAt.IsZero() && !r.UpdatedAt.Before(r.CreatedAt) {
			ds = append(ds, r.UpdatedAt.Sub(r.CreatedAt))
		}
	}
	if len(ds) == 0 {
		return Latency{}, nil
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(p float64) int64 {
		i := int(p*float64(len(ds))+0.999999) - 1 // nearest rank
		return ds[min(max(i, 0), len(ds)-1)].Milliseconds()
	}
	return Latency{Samples: len(ds), P50MS: at(0.50), P95MS: at(0.95), P99MS: at(0.99), MaxMS: ds[len(ds)-1].Milliseconds()}, nil
}

// schedulesOf lists the schedules, inputs redacted unless payloads may be
// seen.
func schedulesOf(ctx context.Context, ex *sdk.Executor, payloads bool) ([]ops.Schedule, error) {
	ss, err := ex.ListSchedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ops.Schedule, len(ss))
	for i, s := range ss {
		out[i] = ops.ToSchedule(s)
		if !payloads {
			out[i].Input = redactedJSON
		}
	}
	return out, nil
}
