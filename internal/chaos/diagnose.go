package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stent-go/stent/internal/ledger"
)

// event is one fault or restart of a node process, for the diagnosis of a
// broken invariant.
type event struct {
	at   time.Time
	node string
	pid  int
	what string // "start", "SIGKILL", "SIGSTOP", "SIGCONT"
}

// note records an event of node n's current process.
func (r *run) note(n *node, what string) { r.noteAt(n, what, time.Now()) }

// noteAt records an event of node n's current process at a given time.
func (r *run) noteAt(n *node, what string, at time.Time) {
	r.events = append(r.events, event{at: at, node: n.name, pid: n.pid(), what: what})
}

// timeFormat is how the diagnosis prints times, as the audit does.
const timeFormat = "15:04:05.000000"

// diagnosisLines caps the node log lines printed per workflow and for the
// cluster.
const diagnosisLines = 40

// diagnose prints what the run knows about the workflows of unexplained
// repeats: their ledger rows, the node log lines that name them, and the
// faults and membership changes around them. A run's directory may not
// outlive the machine it ran on (CI), so this goes to the output.
func (r *run) diagnose(w io.Writer, suspects []string, runs []ledger.Run) {
	if len(suspects) == 0 {
		return
	}
	const maxSuspects = 3
	if len(suspects) > maxSuspects {
		suspects = suspects[:maxSuspects]
	}
	fmt.Fprintf(w, "\ndiagnosis of %d workflows with unexplained repeats:\n", len(suspects))
	var from, to time.Time
	for _, id := range suspects {
		fmt.Fprintf(w, "  workflow %s, ledger rows:\n", id)
		for _, run := range runs {
			if run.WorkflowID != id {
				continue
			}
			what := fmt.Sprintf("step %d", run.Step)
			if run.Step < 0 {
				what = "completion"
			}
			fmt.Fprintf(w, "    %s  %-10s %s pid %d\n", run.At.Format(timeFormat), what, run.Node, run.PID)
			if from.IsZero() || run.At.Before(from) {
				from = run.At
			}
			if run.At.After(to) {
				to = run.At
			}
		}
		fmt.Fprintf(w, "  node log lines naming it:\n")
		r.printLogLines(w, time.Time{}, time.Time{}, func(l logLine) bool { return strings.Contains(l.raw, id) })
	}
	from, to = from.Add(-5*time.Second), to.Add(5*time.Second)
	fmt.Fprintf(w, "  faults from %s to %s:\n", from.Format(timeFormat), to.Format(timeFormat))
	for _, ev := range r.events {
		if !ev.at.Before(from) && !ev.at.After(to) {
			fmt.Fprintf(w, "    %s  %-8s %s pid %d\n", ev.at.Format(timeFormat), ev.what, ev.node, ev.pid)
		}
	}
	fmt.Fprintf(w, "  membership log lines then:\n")
	r.printLogLines(w, from, to, func(l logLine) bool {
		return l.Component == "cluster" || strings.Contains(l.Msg, "member") || strings.Contains(l.Msg, "joined")
	})
}

// printLogLines prints the node log lines (of every node, in time order)
// that keep accepts, from `from` to `to` (either zero: unbounded), the
// last diagnosisLines of them.
func (r *run) printLogLines(w io.Writer, from, to time.Time, keep func(logLine) bool) {
	var lines []logLine
	for _, n := range r.nodes {
		err := eachLogLine(n.logPath, func(l logLine) {
			if l.json && (from.IsZero() || !l.Time.Before(from)) && (to.IsZero() || !l.Time.After(to)) && keep(l) {
				lines = append(lines, l)
			}
		})
		if err != nil {
			fmt.Fprintf(w, "    (reading the log of %s: %v)\n", n.name, err)
		}
	}
	slices.SortStableFunc(lines, func(a, b logLine) int { return a.Time.Compare(b.Time) })
	if len(lines) > diagnosisLines {
		fmt.Fprintf(w, "    (%d lines; the last %d)\n", len(lines), diagnosisLines)
		lines = lines[len(lines)-diagnosisLines:]
	}
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", l.raw)
	}
}
