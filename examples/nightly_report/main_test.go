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
	var out strings.Builder
	if err := run(context.Background(), &out, filepath.Join(t.TempDir(), "report.db")); err != nil {
		t.Fatal(err)
	}
	want := "schedule nightly-report: nightly_report, next at 02:00 Paris time\ntriggered now: completed \"daily report sent\"\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
