package chaos

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stent-go/stent/internal/ledger"
)

// Result is what a chaos run found.
type Result struct {
	// Audit is the ledger's check (ledger.AuditSnapshot).
	Audit ledger.Audit
	// StatusCompleted counts the started workflows whose execution is
	// completed in Stent's tables, NotCompleted the others, WrongOutput the
	// completed ones whose output is not the sum of their steps.
	StatusCompleted, NotCompleted, WrongOutput int
	// SendErrors counts failed SendSignal calls (retried).
	SendErrors int
	// Limit is the limited step's limit (0: no limited workflows), and
	// Permits the permits of it still held after quiet.
	Limit, Permits int
	// Takeovers are the takeover times after kills (ledger.Takeovers over
	// Window), and Stuck the interrupted workflows that never progressed.
	Takeovers []time.Duration
	Stuck     int
	Window    time.Duration
	// StaleWrites counts node log lines of writes refused for a lost
	// lease.
	StaleWrites int
	// Nodes counts the nodes, Healthy those whose /healthz answered 200
	// after quiet; Crashed lists the unexpected exits during the run and
	// UncleanStops the nodes that did not exit 0 on SIGTERM at the end.
	Nodes, Healthy int
	Crashed        []string
	UncleanStops   []string
	// Elapsed is the time from the first start until every workflow
	// ended (or the timeout); Kills, Pauses and Restarts count the faults.
	Elapsed                 time.Duration
	Kills, Pauses, Restarts int
	// Schedule is the check of the schedule's ticks (--schedule).
	Schedule ScheduleCheck
}

// invariant is one row of the result table.
type invariant struct {
	id, name string
	ok       bool
	figures  string
}

// invariants evaluates the invariants of r.
func (r Result) invariants() []invariant {
	a := r.Audit
	rows := []invariant{
		{"I1", "every started workflow completed", a.Completed == a.Started && r.StatusCompleted == a.Started && r.NotCompleted == 0,
			fmt.Sprintf("%d started, %d completed in the ledger, %d completed in Stent, %d not completed", a.Started, a.Completed, r.StatusCompleted, r.NotCompleted)},
		{"I1", "workflow output correct", r.WrongOutput == 0,
			fmt.Sprintf("%d wrong outputs", r.WrongOutput)},
		{"I2", "no execution completed twice", a.UnexplainedCompletions == 0,
			fmt.Sprintf("%d completion rows beyond one: %d after a kill/pause of the earlier run's process (at-least-once side effect), %d tails after SIGCONT, %d unexplained",
				a.ExtraCompletions, a.ExtraCompletions-a.TailCompletions-a.UnexplainedCompletions, a.TailCompletions, a.UnexplainedCompletions)},
		{"I3", "every step of every completed workflow ran", a.MissingSteps == 0,
			fmt.Sprintf("%d step runs, %d steps never ran", a.StepRuns, a.MissingSteps)},
		{"I5", "completed steps not run again", a.UnexplainedStepRuns == 0,
			fmt.Sprintf("%d runs again: %d after a kill/pause of the earlier run's process, %d tails after SIGCONT, %d unexplained",
				a.ExtraStepRuns, a.ExtraStepRuns-a.TailStepRuns-a.UnexplainedStepRuns, a.TailStepRuns, a.UnexplainedStepRuns)},
		{"I7", "every acknowledged signal received once", a.SignalsLost == 0 && a.SignalsWrong == 0 && a.SignalsDuplicated == 0 && a.UnexplainedReceipts == 0,
			fmt.Sprintf("%d acknowledged (%d sends failed), %d received, %d lost, %d wrong, %d received twice; %d receipt rows again (%d tails after SIGCONT, %d unexplained)",
				a.SignalsAcked, r.SendErrors, a.SignalsReceived, a.SignalsLost, a.SignalsWrong, a.SignalsDuplicated, a.ExtraReceipts, a.TailReceipts, a.UnexplainedReceipts)},
	}
	if r.Limit > 0 {
		rows = append(rows, invariant{"I9", "limited step within its limit, no permit leaked",
			a.LimitedMax <= r.Limit && r.Permits == 0 && a.UnendedRuns == 0,
			fmt.Sprintf("%d runs, at most %d at once (limit %d; %d counting %d tails resumed after SIGCONT), %d permits held after quiet, %d runs without end unexplained (%d cut off by the final stop)",
				a.LimitedRuns, a.LimitedMax, r.Limit, a.LimitedMaxWithZombies, a.ZombieTails, r.Permits, a.UnendedRuns, a.CutOffRuns)})
	}
	rows = append(rows, invariant{"I10", "every node healthy at the end", r.Healthy == r.Nodes && len(r.Crashed) == 0 && len(r.UncleanStops) == 0,
		fmt.Sprintf("/healthz 200 from %d of %d after quiet, %d unexpected exits, %d unclean SIGTERM exits", r.Healthy, r.Nodes, len(r.Crashed), len(r.UncleanStops))})
	if r.Schedule.Every > 0 {
		rows = append(rows, r.Schedule.invariant())
	}
	return rows
}

// Broken lists the IDs and names of the invariants that broke.
func (r Result) Broken() []string {
	var out []string
	for _, inv := range r.invariants() {
		if !inv.ok {
			out = append(out, inv.id+" "+inv.name)
		}
	}
	return out
}

// OK reports whether every invariant held.
func (r Result) OK() bool { return len(r.Broken()) == 0 }

// percentile returns the p-th percentile (0-100, nearest rank) of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s) + 99) / 100
	return s[max(i-1, 0)]
}

// Print writes r as a table, then the figures, then the verdict.
func (r Result) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nID\tINVARIANT\tRESULT\tFIGURES")
	for _, inv := range r.invariants() {
		verdict := "ok"
		if !inv.ok {
			verdict = "BROKEN"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", inv.id, inv.name, verdict, inv.figures)
	}
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(w, "printing the table:", err)
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nFIGURE\tVALUE")
	fmt.Fprintf(tw, "faults\t%d kills, %d pauses, %d restarts\n", r.Kills, r.Pauses, r.Restarts)
	fmt.Fprintf(tw, "elapsed\t%s until every workflow ended\n", r.Elapsed.Round(100*time.Millisecond))
	takeover := "no samples"
	if len(r.Takeovers) > 0 {
		takeover = fmt.Sprintf("p50 %s, max %s over %d workflows", percentile(r.Takeovers, 50).Round(time.Millisecond),
			percentile(r.Takeovers, 100).Round(time.Millisecond), len(r.Takeovers))
	}
	fmt.Fprintf(tw, "takeover after a kill\t%s; %d never progressed\n", takeover, r.Stuck)
	fmt.Fprintf(tw, "\t(workflows whose last ledger row before a SIGKILL was a step run of the killed process at most %s\n", r.Window)
	fmt.Fprintf(tw, "\t before it: time from the kill to their next step run or completion by another process, restarted node included)\n")
	fmt.Fprintf(tw, "stale writes refused\t%d node log lines %q\n", r.StaleWrites, staleWriteLog)
	if err := tw.Flush(); err != nil {
		fmt.Fprintln(w, "printing the table:", err)
	}
	for _, p := range r.Audit.Problems {
		fmt.Fprintln(w, "  problem:", p)
	}
	for _, c := range r.Crashed {
		fmt.Fprintln(w, "  unexpected exit:", c)
	}
	for _, c := range r.UncleanStops {
		fmt.Fprintln(w, "  unclean stop:", c)
	}
	if broken := r.Broken(); len(broken) > 0 {
		fmt.Fprintf(w, "\nFAIL: %d invariants broke: %s\n", len(broken), strings.Join(broken, "; "))
		return
	}
	fmt.Fprintln(w, "\nPASS: every invariant held")
}
