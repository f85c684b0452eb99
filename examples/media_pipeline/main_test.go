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
	path := filepath.Join(t.TempDir(), "media.db")
	var out strings.Builder
	if err := run(context.Background(), &out, path); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"for launch.mp4\n",
		"stage: awaiting approval\nsending the editor's approval\n",
		`"renditions": [`,
		`"file": "VID-42-1080p.mp4"`, `"file": "VID-42-720p.mp4"`, `"file": "VID-42-480p.mp4"`,
		`"thumbnail": "VID-42-thumb.jpg"`,
		`"approved_by": "editor@example.com"`,
		`"status": "published"`,
		`"url": "https://media.example.com/VID-42"`,
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("output lacks %q:\n%s", want, got)
		}
	}
}
