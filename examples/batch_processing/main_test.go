package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/examples/batch_processing/batch"
	"github.com/stent-go/stent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "batch.db")
	var out strings.Builder
	if err := run(context.Background(), &out, path); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"batch of 20 items: 18 succeeded, 2 failed [7 14]\n",
		"sum of squares: 2625\n", // 1²+…+20² = 2870, less 49 and 196
		"counter processed: 18, stage: \"done\"\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
	if p := batch.Peak(); p < 1 || p > batch.MaxConcurrent {
		t.Fatalf("%d items ran at once, limit %d", p, batch.MaxConcurrent)
	}
}
