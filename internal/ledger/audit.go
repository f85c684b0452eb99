package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Receipt is one row of stent_ledger_signals: workflow WorkflowID received
// a signal with Payload, recorded by process PID of node Node at At.
type Receipt struct {
	WorkflowID string
	Payload    string
	Node       string
	PID        int
	At         time.Time
}

// LimitedRun is one row of stent_ledger_limited: a run of
// ledger_limited_step from Start (once its permit was held) to End, which
// is zero when the run recorded no end (its process was killed).
type LimitedRun struct {
	WorkflowID string
	Step       int
	Node       string
	PID        int
	Start, End time.Time
}

// Snapshot is everything the ledger tables hold.
type Snapshot struct {
	// Runs are the step runs and completions (Step -1), as Runs returns
	// them.
	Runs     []Run
	Receipts []Receipt
	Limited  []LimitedRun
}

// Snapshot reads every ledger table.
func (l *Ledger) Snapshot(ctx context.Context) (Snapshot, error) {
	var s Snapshot
	var err error
	if s.Runs, err = l.Runs(ctx); err != nil {
		return s, err
	}
	err = l.query(ctx, `SELECT workflow_id, payload, node, pid, at FROM stent_ledger_signals ORDER BY workflow_id, at`,
		func(rows *sql.Rows) error {
			var r Receipt
			var at int64
			if err := rows.Scan(&r.WorkflowID, &r.Payload, &r.Node, &r.PID, &at); err != nil {
				return err
			}
			r.At = time.UnixMicro(at)
			s.Receipts = append(s.Receipts, r)
			return nil
		})
	if err != nil {
		return s, err
	}
	err = l.query(ctx, `SELECT workflow_id, step, node, pid, start_at, end_at FROM stent_ledger_limited ORDER BY start_at`,
		func(rows *sql.Rows) error {
			var r LimitedRun
			var start int64
			var end sql.NullInt64
			if err := rows.Scan(&r.WorkflowID, &r.Step, &r.Node, &r.PID, &start, &end); err != nil {
				return err
			}
			r.Start = time.UnixMicro(start)
			if end.Valid {
				r.End = time.UnixMicro(end.Int64)
			}
			s.Limited = append(s.Limited, r)
			return nil
		})
	return s, err
}

// query runs q and calls scan for each row.
func (l *Ledger) query(ctx context.Context, q string, scan func(*sql.Rows) error) error {
	rows, err := l.db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("reading ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("reading ledger: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading ledger: %w", err)
	}
	return nil
}

// Faults is what a test did to the node processes, by process ID, so that
// Audit can tell the repeats that a fault explains from bugs.
type Faults struct {
	// Kills maps a process to when it was sent SIGKILL.
	Kills map[int]time.Time
	// Stops maps a process to when it was sent the SIGTERM that ended it
	// after the run (the nodes stop before the ledger is read).
	Stops map[int]time.Time
	// Pauses maps a process to the times it was stopped (SIGSTOP) and
	// continued (SIGCONT).
	Pauses map[int][]Pause
	// Fenced holds, by node and workflow, the times at which the node
	// logged that its activation of the workflow (or of one of its steps)
	// lost its lease to a takeover: another node took it over (a pause of
	// a third node can get a live one declared dead) and the body in
	// flight there runs again, at least once as promised.
	Fenced map[Fence][]time.Time
}

// fenceNotice bounds how long after a rerun began the node of the earlier
// run may log that it lost the workflow's lease (its next write, or its
// next lease renewal).
const fenceNotice = 10 * time.Second

// Fence names a node's activation of a workflow that lost its lease.
type Fence struct{ Node, Workflow string }

// FencedBetween reports whether node logged the loss of its lease on
// workflow at a time in [from, to].
func (f Faults) FencedBetween(node, workflow string, from, to time.Time) bool {
	for _, at := range f.Fenced[Fence{node, workflow}] {
		if !at.Before(from) && !at.After(to) {
			return true
		}
	}
	return false
}

// tailWindow bounds how soon after a SIGCONT a run counts as a tail of
// work its process began before the SIGSTOP.
const tailWindow = time.Second

// Tail reports whether run may be the tail of work that its process began
// before a SIGSTOP: the process was continued at most tailWindow before
// the run, and the node then logged (within fenceNotice) that its
// activation of the workflow had lost its lease. It returns the SIGCONT's
// time. A process checks its lease before each step and after each
// child's outcome, but not between that check and the user code that
// follows; stopped in that gap past its lease, it runs that code when
// continued, after another node took over. Its writes are refused, so the
// execution's outcome is the other node's. Only the first row of the
// workflow that the process records after the SIGCONT can be such a tail
// (AuditSnapshot checks that): a second one would come from a step started
// after the process resumed.
func (f Faults) Tail(run Run) (cont time.Time, ok bool) {
	for _, p := range f.Pauses[run.PID] {
		if !p.Cont.IsZero() && !p.Cont.After(run.At) && run.At.Sub(p.Cont) <= tailWindow {
			return p.Cont, f.FencedBetween(run.Node, run.WorkflowID, p.Cont, run.At.Add(fenceNotice))
		}
	}
	return time.Time{}, false
}

// Pause is one SIGSTOP (Stop) and the SIGCONT that ended it (Cont).
type Pause struct{ Stop, Cont time.Time }

// Interrupted reports whether process pid was killed, or stopped, at a time
// in [from, to]: a body it ran from `from` may then run again from `to`.
func (f Faults) Interrupted(pid int, from, to time.Time) bool {
	if k, ok := f.Kills[pid]; ok && !k.Before(from) && !k.After(to) {
		return true
	}
	for _, p := range f.Pauses[pid] {
		if !p.Stop.Before(from) && !p.Stop.After(to) {
			return true
		}
	}
	return false
}

// Expect is what a test asked of the workload, for Audit.
type Expect struct {
	// Workflows are the IDs of the workflows whose start was acknowledged.
	Workflows []string
	// Steps is how many steps each workflow has.
	Steps int
	// Signals maps a workflow that waits for a signal to the payloads sent
	// to it.
	Signals map[string]Sent
	// Limit is the most limited runs allowed at once (LimitedMax when
	// limited workflows ran); 0 skips that check.
	Limit int
	// Faults are the kills and pauses of the run.
	Faults Faults
	// End is when the check runs: a limited run with no end whose process
	// was neither killed nor stopped is counted as running until End.
	End time.Time
}

// Sent is what was sent to one workflow: the payloads whose SendSignal
// returned nil (Acked), and those whose SendSignal failed (Failed), which
// may have been written all the same.
type Sent struct {
	Acked  []string
	Failed []string
}

// Audit is the outcome of checking a Snapshot against an Expect. Counts
// that are explained by a fault (a repeat whose earlier run came from a
// process killed or stopped between the two runs) are at-least-once side
// effects of the workload, which records its runs outside Stent's journal;
// the Unexplained counts are bugs.
type Audit struct {
	// Started is len(Expect.Workflows); Completed is how many of them
	// recorded their completion (I1).
	Started, Completed int
	// ExtraCompletions counts completion rows beyond one per workflow
	// (I2), TailCompletions those of them that were tails (see
	// Faults.Tail), and UnexplainedCompletions those not explained by a
	// fault.
	ExtraCompletions, TailCompletions, UnexplainedCompletions int
	// StepRuns counts the step runs of completed workflows, MissingSteps
	// the steps of completed workflows with no run at all (I3).
	StepRuns, MissingSteps int
	// ExtraStepRuns counts step runs beyond one per step of a completed
	// workflow (I5), TailStepRuns the tails among them, and
	// UnexplainedStepRuns those not explained by a fault.
	ExtraStepRuns, TailStepRuns, UnexplainedStepRuns int
	// SignalsAcked counts acknowledged signals, SignalsReceived the
	// workflows that recorded a receipt, SignalsLost the acknowledged
	// signals of workflows with no receipt, SignalsWrong the receipts of a
	// payload never sent to that workflow, and SignalsDuplicated the
	// workflows whose receipts hold more than one payload (I7).
	SignalsAcked, SignalsReceived, SignalsLost, SignalsWrong, SignalsDuplicated int
	// ExtraReceipts counts receipt rows beyond one per workflow,
	// TailReceipts the tails among them, UnexplainedReceipts those not
	// explained by a fault.
	ExtraReceipts, TailReceipts, UnexplainedReceipts int
	// LimitedRuns counts the runs of ledger_limited_step; LimitedMax is
	// the most that ran at once (I9). A run of a killed process with no
	// end counts as ending at the kill; a run stopped by SIGSTOP counts as
	// not running while stopped. ZombieTails counts the runs that resumed
	// after a SIGCONT (their process may have lost its permit meanwhile),
	// and LimitedMaxWithZombies is the most at once counting those tails.
	LimitedRuns, LimitedMax, LimitedMaxWithZombies, ZombieTails int
	// UnendedRuns counts limited runs with no end whose process was not
	// killed: they are counted as running until Expect.End. CutOffRuns
	// counts those whose process was stopped after the run (Faults.Stops):
	// a body still running then (one its activation no longer waited for)
	// ends with the process, and counts as running until the stop.
	UnendedRuns, CutOffRuns int
	// Problems describes the violations found, at most MaxProblems.
	Problems []string
	// Suspects are the workflows of the unexplained repeats, in the order
	// found, at most MaxProblems, for a closer look at the node logs.
	Suspects []string
}

// MaxProblems caps Audit.Problems.
const MaxProblems = 20

func (a *Audit) problem(format string, args ...any) {
	if len(a.Problems) < MaxProblems {
		a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
	}
}

// AuditSnapshot checks s against e (see Audit). It is a pure function of
// its arguments.
func AuditSnapshot(s Snapshot, e Expect) Audit {
	a := Audit{Started: len(e.Workflows)}
	started := make(map[string]bool, len(e.Workflows))
	for _, id := range e.Workflows {
		started[id] = true
	}
	// Group runs by workflow and step; Runs are ordered by workflow, step
	// and time, but crafted snapshots need not be.
	type key struct {
		wf   string
		step int
	}
	groups := map[key][]Run{}
	type proc struct {
		wf  string
		pid int
	}
	byProc := map[proc][]time.Time{} // every row of a workflow by one process
	for _, r := range s.Runs {
		k := key{r.WorkflowID, r.Step}
		groups[k] = append(groups[k], r)
		byProc[proc{r.WorkflowID, r.PID}] = append(byProc[proc{r.WorkflowID, r.PID}], r.At)
	}
	for _, r := range s.Receipts {
		byProc[proc{r.WorkflowID, r.PID}] = append(byProc[proc{r.WorkflowID, r.PID}], r.At)
	}
	// isTail: see Faults.Tail, and no other row of the workflow by the
	// same process between the SIGCONT and this one.
	isTail := func(run Run) bool {
		cont, ok := e.Faults.Tail(run)
		if !ok {
			return false
		}
		for _, at := range byProc[proc{run.WorkflowID, run.PID}] {
			if !at.Before(cont) && at.Before(run.At) {
				return false
			}
		}
		return true
	}
	repeats := func(runs []Run, what string) (extra, tails, unexplained int) {
		sort.SliceStable(runs, func(i, j int) bool { return runs[i].At.Before(runs[j].At) })
		for i := 1; i < len(runs); i++ {
			extra++
			prev, next := runs[i-1], runs[i]
			// The earlier run's node learns of a takeover at its next
			// write or renewal, which may come after the rerun began.
			if e.Faults.Interrupted(prev.PID, prev.At, next.At) || e.Faults.FencedBetween(prev.Node, prev.WorkflowID, prev.At, next.At.Add(fenceNotice)) {
				continue
			}
			if isTail(next) {
				tails++
				continue
			}
			unexplained++
			if len(a.Suspects) < MaxProblems && !slices.Contains(a.Suspects, prev.WorkflowID) {
				a.Suspects = append(a.Suspects, prev.WorkflowID)
			}
			a.problem("%s ran again at %s in process %d (node %s) after a run at %s in process %d (node %s): neither was the earlier one's process killed or stopped in between, or told it lost its lease, nor was the later run the tail of a process continued after SIGSTOP that then lost its lease",
				what, next.At.Format(timeFormat), next.PID, next.Node, prev.At.Format(timeFormat), prev.PID, prev.Node)
		}
		return extra, tails, unexplained
	}
	for _, id := range e.Workflows {
		done := groups[key{id, -1}]
		if len(done) == 0 {
			continue
		}
		a.Completed++
		x, tl, u := repeats(done, "completion of "+id)
		a.ExtraCompletions += x
		a.TailCompletions += tl
		a.UnexplainedCompletions += u
		for step := range e.Steps {
			runs := groups[key{id, step}]
			if len(runs) == 0 {
				a.MissingSteps++
				a.problem("workflow %s completed, but its step %d never ran", id, step)
				continue
			}
			a.StepRuns += len(runs)
			x, tl, u := repeats(runs, fmt.Sprintf("step %d of %s", step, id))
			a.ExtraStepRuns += x
			a.TailStepRuns += tl
			a.UnexplainedStepRuns += u
		}
	}
	if a.Completed < a.Started {
		a.problem("%d of %d started workflows did not complete", a.Started-a.Completed, a.Started)
	}

	a.auditSignals(s.Receipts, e, repeats)
	a.auditLimited(s.Limited, e)
	return a
}

// timeFormat is how Problems print times.
const timeFormat = "15:04:05.000000"

func (a *Audit) auditSignals(receipts []Receipt, e Expect, repeats func([]Run, string) (int, int, int)) {
	byWF := map[string][]Receipt{}
	for _, r := range receipts {
		byWF[r.WorkflowID] = append(byWF[r.WorkflowID], r)
	}
	ids := make([]string, 0, len(e.Signals))
	for id := range e.Signals {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sent := e.Signals[id]
		a.SignalsAcked += len(sent.Acked)
		got := byWF[id]
		if len(got) == 0 {
			a.SignalsLost += len(sent.Acked)
			if len(sent.Acked) > 0 {
				a.problem("workflow %s never received the signal acknowledged with payload %q", id, sent.Acked[0])
			}
			continue
		}
		a.SignalsReceived++
		payloads := map[string]bool{}
		runs := make([]Run, len(got))
		for i, r := range got {
			payloads[r.Payload] = true
			runs[i] = Run{WorkflowID: id, Node: r.Node, PID: r.PID, At: r.At}
			if !slices.Contains(sent.Acked, r.Payload) && !slices.Contains(sent.Failed, r.Payload) {
				a.SignalsWrong++
				a.problem("workflow %s received payload %q, which was never sent to it", id, r.Payload)
			}
		}
		if len(payloads) > 1 {
			a.SignalsDuplicated++
			a.problem("workflow %s received %d different payloads, waiting for one signal", id, len(payloads))
		}
		x, tl, u := repeats(runs, "signal receipt of "+id)
		a.ExtraReceipts += x
		a.TailReceipts += tl
		a.UnexplainedReceipts += u
	}
	for id := range byWF {
		if _, ok := e.Signals[id]; !ok {
			a.SignalsWrong += len(byWF[id])
			a.problem("workflow %s received a signal, but none was sent to it", id)
		}
	}
}

// interval is a span of a limited run during which its body ran.
type interval struct {
	start, end time.Time
	zombie     bool // resumed after a SIGCONT
}

func (a *Audit) auditLimited(runs []LimitedRun, e Expect) {
	a.LimitedRuns = len(runs)
	var spans []interval
	for _, r := range runs {
		end := r.End
		if end.IsZero() {
			if k, ok := e.Faults.Kills[r.PID]; ok && !k.Before(r.Start) {
				end = k
			} else if s, ok := e.Faults.Stops[r.PID]; ok && !s.Before(r.Start) {
				end = s
				a.CutOffRuns++
			} else {
				a.UnendedRuns++
				a.problem("limited run of step %d of %s in process %d (node %s) has no end, and its process was not killed",
					r.Step, r.WorkflowID, r.PID, r.Node)
				end = e.End
			}
		}
		// Split the run around the pauses of its process.
		from := r.Start
		zombie := false
		for _, p := range e.Faults.Pauses[r.PID] {
			if p.Stop.Before(from) || !p.Stop.Before(end) {
				continue
			}
			spans = append(spans, interval{from, p.Stop, zombie})
			from, zombie = p.Cont, true
			if p.Cont.IsZero() { // never continued: killed while stopped
				from = end
			}
		}
		if from.Before(end) {
			spans = append(spans, interval{from, end, zombie})
		}
		if zombie {
			a.ZombieTails++
		}
	}
	a.LimitedMax = maxOverlap(spans, false)
	a.LimitedMaxWithZombies = maxOverlap(spans, true)
	if e.Limit > 0 && a.LimitedMax > e.Limit {
		a.problem("%d limited runs at once, over the limit of %d", a.LimitedMax, e.Limit)
	}
}

// maxOverlap is the most intervals that hold at one instant; zombie
// intervals count only if withZombies. An interval ending when another
// starts does not overlap it.
func maxOverlap(spans []interval, withZombies bool) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range spans {
		if s.zombie && !withZombies {
			continue
		}
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta // ends first
	})
	n, most := 0, 0
	for _, ed := range edges {
		n += ed.delta
		most = max(most, n)
	}
	return most
}

// Kill is one SIGKILL: process PID was killed at At.
type Kill struct {
	PID int
	At  time.Time
}

// Takeovers measures how long the workflows that a kill interrupted took
// to progress again. For each kill, it takes the workflows whose latest
// ledger row (step run or completion) before the kill was a step run of
// the killed process at most window before it; for each, the time from the
// kill to the workflow's next ledger row (a step run, which is its own or
// a repeat, or its completion), written by another process. Workflows with
// no later row are counted in stuck.
func Takeovers(runs []Run, kills []Kill, window time.Duration) (times []time.Duration, stuck int) {
	byWF := map[string][]Run{}
	for _, r := range runs {
		byWF[r.WorkflowID] = append(byWF[r.WorkflowID], r)
	}
	wfs := make([]string, 0, len(byWF))
	for id, rs := range byWF {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].At.Before(rs[j].At) })
		wfs = append(wfs, id)
	}
	sort.Strings(wfs)
	for _, k := range kills {
		for _, id := range wfs {
			rs := byWF[id]
			i := sort.Search(len(rs), func(i int) bool { return rs[i].At.After(k.At) })
			if i == 0 {
				continue
			}
			last := rs[i-1]
			if last.Step < 0 || last.PID != k.PID || k.At.Sub(last.At) > window {
				continue
			}
			j := slices.IndexFunc(rs[i:], func(r Run) bool { return r.PID != k.PID })
			if j < 0 {
				stuck++
				continue
			}
			times = append(times, rs[i+j].At.Sub(k.At))
		}
	}
	return times, stuck
}

// Summary is a one-line account of a, for logs.
func (a Audit) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%d completed, %d extra completions (%d unexplained), %d missing steps, %d extra step runs (%d unexplained), signals %d acked/%d received/%d lost/%d wrong, limited max %d (%d with zombie tails)",
		a.Completed, a.Started, a.ExtraCompletions, a.UnexplainedCompletions, a.MissingSteps,
		a.ExtraStepRuns, a.UnexplainedStepRuns, a.SignalsAcked, a.SignalsReceived, a.SignalsLost, a.SignalsWrong,
		a.LimitedMax, a.LimitedMaxWithZombies)
	return b.String()
}
