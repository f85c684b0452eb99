// Package doccheck keeps the Go samples of the documentation compiled: every
// ```go block of README.md and docs/ is a copy of a marked region of a Go
// file that the build compiles (an example, an Example test), and its test
// fails when a copy drifts from its source.
//
// In a Markdown file, a sample is announced by a comment on the line before
// its fence:
//
//	<!-- sample: examples/saga_trip_booking/trip/trip.go#compensate -->
//	```go
//	...
//	```
//
// and the source marks the region with a line `// sample:begin compensate`
// before it and `// sample:end` after it. The region is compared without
// its common indentation. `go test ./internal/doccheck -update` rewrites
// the copies from their sources.
package doccheck

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sample is one ```go block of a Markdown file.
type Sample struct {
	Doc  string // the Markdown file, relative to the root
	Line int    // the line of its opening fence, from 1
	Ref  string // "path#name" from its comment; "" when it has none
	Body string // its text, without the fences
}

// sampleComment opens the comment that names a sample's source.
const sampleComment = "<!-- sample: "

// Samples returns the ```go blocks of the Markdown file doc (relative to
// root) in order.
func Samples(root, doc string) ([]Sample, error) {
	b, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(b), "\n")
	var out []Sample
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		s := Sample{Doc: doc, Line: i + 1}
		if i > 0 {
			prev := strings.TrimSpace(lines[i-1])
			if ref, ok := strings.CutPrefix(prev, sampleComment); ok {
				s.Ref = strings.TrimSpace(strings.TrimSuffix(ref, "-->"))
			}
		}
		end := i + 1
		for end < len(lines) && strings.TrimSpace(lines[end]) != "```" {
			end++
		}
		if end == len(lines) {
			return nil, fmt.Errorf("%s:%d: a ```go block without its closing fence", doc, i+1)
		}
		s.Body = strings.Join(lines[i+1:end], "\n")
		out = append(out, s)
		i = end
	}
	return out, nil
}

// Region returns the text between `// sample:begin name` and the next
// `// sample:end` in the Go file path (relative to root), without its
// common indentation.
func Region(root, path, name string) (string, error) {
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var body []string
	in, found := false, false
	for sc.Scan() {
		line := sc.Text()
		t := strings.TrimSpace(line)
		switch {
		case t == "// sample:begin "+name:
			if found {
				return "", fmt.Errorf("%s: two regions named %q", path, name)
			}
			in, found = true, true
		case in && t == "// sample:end":
			in = false
		case in:
			body = append(body, line)
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if !found {
		return "", fmt.Errorf("%s: no region `// sample:begin %s`", path, name)
	}
	if in {
		return "", fmt.Errorf("%s: region %q has no `// sample:end`", path, name)
	}
	return dedent(body), nil
}

// dedent removes the tabs every non-blank line starts with, and blank lines
// at both ends.
func dedent(lines []string) string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	common := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, "\t"))
		if common < 0 || n < common {
			common = n
		}
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) >= common && common > 0 {
			l = l[common:]
		}
		out[i] = strings.TrimRight(l, " \t")
	}
	return strings.Join(out, "\n")
}

// Resolve returns the source text a sample names.
func Resolve(root string, s Sample) (string, error) {
	path, name, ok := strings.Cut(s.Ref, "#")
	if !ok || path == "" || name == "" {
		return "", fmt.Errorf("%s:%d: sample reference %q is not path#name", s.Doc, s.Line, s.Ref)
	}
	return Region(root, path, name)
}

// Docs returns README.md and every .md file under docs/, relative to root.
func Docs(root string) ([]string, error) {
	out := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// Rewrite replaces the body of every referenced sample of doc with its
// source region and reports whether the file changed.
func Rewrite(root, doc string) (bool, error) {
	samples, err := Samples(root, doc)
	if err != nil {
		return false, err
	}
	b, err := os.ReadFile(filepath.Join(root, doc))
	if err != nil {
		return false, err
	}
	lines := strings.Split(string(b), "\n")
	// From the last sample up, so earlier line numbers stay valid.
	for i := len(samples) - 1; i >= 0; i-- {
		s := samples[i]
		if s.Ref == "" {
			continue
		}
		src, err := Resolve(root, s)
		if err != nil {
			return false, err
		}
		start := s.Line // the line after the fence, 0-based
		end := start + len(strings.Split(s.Body, "\n"))
		if s.Body == "" {
			end = start
		}
		lines = append(lines[:start], append(strings.Split(src, "\n"), lines[end:]...)...)
	}
	out := strings.Join(lines, "\n")
	if out == string(b) {
		return false, nil
	}
	return true, os.WriteFile(filepath.Join(root, doc), []byte(out), 0o644)
}
