package sqlite

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed queries.sql
var queriesSQL string

// queries holds the statements of queries.sql by name.
var queries = parseQueries(queriesSQL)

// parseQueries splits a file of statements, each introduced by a
// "-- name: Name" line, into a map from name to statement text.
func parseQueries(src string) map[string]string {
	out := make(map[string]string)
	var name string
	var b strings.Builder
	flush := func() {
		if name != "" {
			out[name] = strings.TrimSpace(b.String())
		}
		b.Reset()
	}
	for line := range strings.Lines(src) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			flush()
			name = strings.TrimSpace(n)
			continue
		}
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
	}
	flush()
	return out
}

// query returns the statement of queries.sql called name, or an error if
// there is none.
func query(name string) (string, error) {
	q, ok := queries[name]
	if !ok || q == "" {
		return "", fmt.Errorf("sqlite: no query named %s in queries.sql", name)
	}
	return q, nil
}
