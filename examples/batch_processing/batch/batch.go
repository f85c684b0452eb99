// Package batch is the durable functions of the batch_processing example:
// a batch of items fanned out to one durable execution each (Map), at most
// MaxConcurrent at once across every node, and fanned in to a summary,
// with a counter that shows how far the batch is. A node binary can
// register these functions by importing the package.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/stent-go/stent/sdk"
)

// MaxConcurrent is how many items are processed at once, cluster-wide.
const MaxConcurrent = 4

// Item is one unit of work.
type Item struct {
	ID    int `json:"id"`
	Value int `json:"value"`
}

// Result is a processed item.
type Result struct {
	ID     int `json:"id"`
	Square int `json:"square"`
}

// Summary is the fan-in of a batch.
type Summary struct {
	Items     int   `json:"items"`
	Succeeded int   `json:"succeeded"`
	Failed    []int `json:"failed,omitempty"`
	Total     int   `json:"total"`
}

// errInvalid is an item that can never be processed.
var errInvalid = errors.New("invalid item")

// running and peak measure the concurrency this process sees, so that the
// example can show the limit holding.
var running, peak atomic.Int64

// Peak returns the most items this process processed at once.
func Peak() int64 { return peak.Load() }

// ProcessItem processes one item: items with a negative value are invalid
// and fail without retry. At most MaxConcurrent run at once.
var ProcessItem = sdk.Durable("batch_process_item", processItem, sdk.WithMaxConcurrent(MaxConcurrent))

func processItem(ctx context.Context, it Item) (Result, error) {
	n := running.Add(1)
	defer running.Add(-1)
	for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
	}
	if it.Value < 0 {
		return Result{}, sdk.NonRetryable(fmt.Errorf("item %d: %w", it.ID, errInvalid))
	}
	time.Sleep(20 * time.Millisecond) // the work
	if err := sdk.Counter(ctx, "processed").Add(1); err != nil {
		return Result{}, err
	}
	return Result{ID: it.ID, Square: it.Value * it.Value}, nil
}

// ProcessBatch fans the items out, waits for all of them and sums up.
var ProcessBatch = sdk.Durable("batch_process_batch", processBatch)

// sample:begin fanout
func processBatch(ctx context.Context, items []Item) (Summary, error) {
	if err := sdk.SetState(ctx, "stage", "processing"); err != nil {
		return Summary{}, err
	}
	results, err := ProcessItem.MapResults(ctx, items) // one child per item, in parallel
	if err != nil {
		return Summary{}, err
	}
	s := Summary{Items: len(items)}
	for i, r := range results {
		v, err := r.Value()
		if err != nil {
			s.Failed = append(s.Failed, items[i].ID)
			continue
		}
		s.Succeeded++
		s.Total += v.Square
	}
	return s, sdk.SetState(ctx, "stage", "done")
}

// sample:end
