package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/internal/testutil"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trip.db")
	for range 2 { // a second run returns the recorded outcomes
		var out strings.Builder
		if err := run(context.Background(), &out, path); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{
			"trip T-100 to Lisbon\n  booked flight FL-T-100\n  booked hotel  HT-T-100\n  booked car    CR-T-100\n",
			"trip T-200 to Oslo\n  car failed: ",
			"car in Oslo: sold out",
			"  cancelled hotel  HT-T-200\n  cancelled flight FL-T-200\n  nothing stays booked\n",
			"dead letter: trip_book_car after 1 attempt(s): car in Oslo: sold out\n",
		} {
			if !strings.Contains(got, want) {
				t.Fatalf("output lacks %q:\n%s", want, got)
			}
		}
	}
}
