package stentcli

import (
	"os"
	"strconv"

	"github.com/mattn/go-isatty"
)

// terminal is what the output may use of where it goes.
type terminal struct {
	// tty is true when stdout is a terminal: watch redraws in place.
	tty bool
	// color is true on a tty without NO_COLOR or TERM=dumb.
	color bool
	// width is the width tables fit in; 0 is unlimited.
	width int
}

// detectTerminal looks at f (stdout) and the environment. COLUMNS, when
// set, is the width even off a terminal.
func detectTerminal(f *os.File, getenv func(string) string) terminal {
	t := terminal{tty: isatty.IsTerminal(f.Fd())}
	t.color = t.tty && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
	if n, err := strconv.Atoi(getenv("COLUMNS")); err == nil && n > 0 {
		t.width = n
	} else if t.tty {
		t.width = termWidth(f)
	}
	return t
}
