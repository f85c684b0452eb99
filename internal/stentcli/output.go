package stentcli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/persistence/codec"
)

// ANSI colours.
const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiPurple = "\x1b[35m"
	ansiCyan   = "\x1b[36m"
)

// statusColor is the colour of a status (or of a node state).
func statusColor(s string) string {
	switch s {
	case "completed", "alive":
		return ansiGreen
	case "failed", "dead", "expired":
		return ansiRed
	case "running":
		return ansiBlue
	case "waiting", "pending", "sleeping":
		return ansiYellow
	case "canceled", "timed_out":
		return ansiPurple
	}
	return ""
}

// paint wraps s in colour c when the output is a colour terminal.
func (a *app) paint(c, s string) string {
	if !a.term.color || c == "" {
		return s
	}
	return c + s + ansiReset
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table is rows of text under a header. Column statusCol (-1 for none) is
// coloured by status.
type table struct {
	head      []string
	rows      [][]string
	statusCol int
}

// printTable writes t with columns aligned, fitted to the terminal width
// by shortening the widest columns (cut text ends with …).
func (a *app) printTable(w io.Writer, t table) {
	widths := make([]int, len(t.head))
	for i, h := range t.head {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	fitWidths(widths, t.head, a.term.width)
	line := func(cells []string, header bool) {
		var b strings.Builder
		for i, c := range cells {
			cell := cut(c, widths[i])
			pad := widths[i] - utf8.RuneCountInString(cell)
			switch {
			case header:
				cell = a.paint(ansiBold, cell)
			case i == t.statusCol:
				cell = a.paint(statusColor(c), cell)
			}
			b.WriteString(cell)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", pad+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(t.head, true)
	for _, r := range t.rows {
		line(r, false)
	}
}

// fitWidths shrinks columns until the row fits in width (0: no limit),
// keeping each at least as wide as its header, up to 12: the last column
// (free text) first, then the widest of the others, the first column (IDs,
// to copy) last.
func fitWidths(widths []int, head []string, width int) {
	if width <= 0 {
		return
	}
	excess := 2 * (len(widths) - 1)
	for _, w := range widths {
		excess += w
	}
	excess -= width
	floor := func(i int) int { return min(max(utf8.RuneCountInString(head[i]), 4), 12) }
	last := len(widths) - 1
	for ; excess > 0 && last > 0 && widths[last] > floor(last); excess-- {
		widths[last]--
	}
	for ; excess > 0; excess-- {
		widest := -1
		for i := 1; i < last; i++ {
			if widths[i] > floor(i) && (widest < 0 || widths[i] > widths[widest]) {
				widest = i
			}
		}
		if widest < 0 && widths[0] > floor(0) {
			widest = 0
		}
		if widest < 0 {
			return
		}
		widths[widest]--
	}
}

// cut shortens s to n runes, ending with … when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:n])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// ago is how long before now t was, as text ("3m12s ago"); "-" for zero.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if now.Before(t) {
		return "in " + age(t, now)
	}
	return age(t, now) + " ago"
}

// age is the time between t and now, rounded ("3m12s"); "-" for zero t.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 0 {
		d = -d
	}
	return ops.RoundDur(d).String()
}

// stamp is t in UTC, to the second; "-" for zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// compactJSON is raw JSON on one line, or "-" when empty.
func compactJSON(raw []byte) string {
	raw = codec.ForDisplay(nil, raw) // still encrypted: no key, or not its key
	if len(raw) == 0 {
		return "-"
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}

// indentJSON is raw JSON indented, or "-" when empty.
func indentJSON(raw []byte, prefix string) string {
	raw = codec.ForDisplay(nil, raw) // still encrypted: no key, or not its key
	if len(raw) == 0 {
		return "-"
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, err := json.MarshalIndent(v, prefix, "  ")
	if err != nil {
		return string(raw)
	}
	return string(b)
}
