package stentcli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestFitWidths(t *testing.T) {
	t.Parallel()
	head := []string{"ID", "FUNCTION", "STATUS", "ERROR"}
	w := []int{34, 14, 9, 40}
	fitWidths(w, head, 80)
	require.Equal(t, []int{34, 14, 9, 17}, w, "the last column shrinks first")
	w = []int{34, 14, 9, 40}
	fitWidths(w, head, 60)
	require.Equal(t, 60, w[0]+w[1]+w[2]+w[3]+6)
	require.Equal(t, 34, w[0], "IDs shrink last")
	w = []int{34, 14, 9, 40}
	fitWidths(w, head, 0)
	require.Equal(t, []int{34, 14, 9, 40}, w, "no width, no fitting")
}

func TestPrintTable(t *testing.T) {
	t.Parallel()
	a := &app{term: terminal{width: 30}}
	var b bytes.Buffer
	a.printTable(&b, table{head: []string{"ID", "STATUS", "ERROR"}, statusCol: 1,
		rows: [][]string{{"abc", "failed", "a long message that does not fit"}, {"d", "completed", ""}}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		require.LessOrEqual(t, utf8.RuneCountInString(l), 30, "%q", l)
		require.Equal(t, strings.TrimRight(l, " "), l, "no trailing spaces")
	}
	require.Contains(t, lines[1], "…")
	require.NotContains(t, b.String(), "\x1b[", "no colour off a terminal")

	a.term.color = true
	b.Reset()
	a.printTable(&b, table{head: []string{"ID", "STATUS"}, statusCol: 1, rows: [][]string{{"abc", "failed"}}})
	require.Contains(t, b.String(), ansiRed+"failed"+ansiReset)
}

func TestDetectTerminal(t *testing.T) {
	t.Parallel()
	f, err := os.CreateTemp(t.TempDir(), "out")
	require.NoError(t, err)
	defer f.Close()
	env := map[string]string{"COLUMNS": "77"}
	term := detectTerminal(f, func(k string) string { return env[k] })
	require.Equal(t, terminal{width: 77}, term, "a file is no terminal: no colour, no redraw; COLUMNS still fits")
	require.Equal(t, terminal{}, detectTerminal(f, func(string) string { return "" }))
}
