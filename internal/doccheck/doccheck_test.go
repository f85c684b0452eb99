package doccheck

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stent-go/stent/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the docs' samples from their sources")

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// root is the repository's root, two levels up.
const root = "../.."

// TestDocSamplesMatchTheirSources fails when a ```go block of the docs has
// no source, or differs from it.
func TestDocSamplesMatchTheirSources(t *testing.T) {
	docs, err := Docs(root)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, doc := range docs {
		if *update {
			if _, err := Rewrite(root, doc); err != nil {
				t.Fatal(err)
			}
		}
		samples, err := Samples(root, doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range samples {
			n++
			if s.Ref == "" {
				t.Errorf("%s:%d: a ```go block without a `<!-- sample: path#name -->` line before it", s.Doc, s.Line)
				continue
			}
			src, err := Resolve(root, s)
			if err != nil {
				t.Errorf("%s:%d: %v", s.Doc, s.Line, err)
				continue
			}
			if src != s.Body {
				t.Errorf("%s:%d: the sample differs from %s (run go test ./internal/doccheck -update):\n--- doc\n%s\n--- source\n%s",
					s.Doc, s.Line, s.Ref, s.Body, src)
			}
		}
	}
	if n == 0 {
		t.Fatal("no ```go samples found: wrong root?")
	}
}

func TestDriftIsFound(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("src/a.go", "package a\n\nfunc f() {\n\t// sample:begin body\n\tx := 1\n\t_ = x\n\t// sample:end\n}\n")
	write("README.md", "# A\n\n<!-- sample: src/a.go#body -->\n```go\nx := 2\n_ = x\n```\n\n```go\nfree()\n```\n")
	samples, err := Samples(dir, "README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 2 || samples[0].Ref != "src/a.go#body" || samples[1].Ref != "" {
		t.Fatalf("samples: %+v", samples)
	}
	src, err := Resolve(dir, samples[0])
	if err != nil {
		t.Fatal(err)
	}
	if src != "x := 1\n_ = x" || src == samples[0].Body {
		t.Fatalf("the region %q should differ from the doc's %q", src, samples[0].Body)
	}
	changed, err := Rewrite(dir, "README.md")
	if err != nil || !changed {
		t.Fatalf("rewrite: %v %v", changed, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "```go\nx := 1\n_ = x\n```\n\n```go\nfree()") {
		t.Fatalf("rewritten:\n%s", b)
	}
	if _, err := Region(dir, "src/a.go", "missing"); err == nil {
		t.Fatal("a missing region must be an error")
	}
}
