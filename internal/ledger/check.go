package ledger

import (
	"context"
	"fmt"
	"time"
)

// Report counts what the ledger tables hold.
type Report struct {
	// Completed is how many workflows recorded their completion at least
	// once.
	Completed int
	// CompletedTwice is how many of them recorded it more than once.
	CompletedTwice int
	// StepRuns is how many step runs were recorded for completed
	// workflows.
	StepRuns int
	// RepeatedSteps is how many steps of completed workflows ran more
	// than once, and ExtraStepRuns how many runs beyond the first they
	// had in all. Steps in flight when a node was killed run again, so
	// neither needs to be 0; how many were in flight at a kill is not
	// known here.
	RepeatedSteps int
	ExtraStepRuns int
	// Repeats lists every repeated completion and step of a completed
	// workflow, in the order of recording.
	Repeats []Repeat
}

// Repeat is a completion (Step -1) or a step recorded more than once.
type Repeat struct {
	WorkflowID string
	Step       int
	// PIDs are the processes of the runs, oldest first: every run but the
	// last should come from a process that was killed before the body's
	// outcome was recorded.
	PIDs []int
}

// Check reads the ledger tables and counts completions and repeated runs.
// It may run while nodes work; it then counts what is recorded so far.
func (l *Ledger) Check(ctx context.Context) (Report, error) {
	var r Report
	rows, err := l.db.QueryContext(ctx, `
SELECT workflow_id, -1, pid, at FROM stent_ledger_done
UNION ALL
SELECT r.workflow_id, r.step, r.pid, r.at FROM stent_ledger_runs r
WHERE r.workflow_id IN (SELECT workflow_id FROM stent_ledger_done)
ORDER BY 1, 2, 4`)
	if err != nil {
		return r, fmt.Errorf("checking ledger: %w", err)
	}
	defer rows.Close()
	type key struct {
		wf   string
		step int
	}
	var cur key
	var pids []int
	flush := func() {
		if len(pids) == 0 {
			return
		}
		if cur.step < 0 {
			r.Completed++
		} else {
			r.StepRuns += len(pids)
		}
		if len(pids) > 1 {
			if cur.step < 0 {
				r.CompletedTwice++
			} else {
				r.RepeatedSteps++
				r.ExtraStepRuns += len(pids) - 1
			}
			r.Repeats = append(r.Repeats, Repeat{WorkflowID: cur.wf, Step: cur.step, PIDs: pids})
		}
		pids = nil
	}
	for rows.Next() {
		var k key
		var pid int
		var at int64
		if err := rows.Scan(&k.wf, &k.step, &pid, &at); err != nil {
			return r, fmt.Errorf("checking ledger: %w", err)
		}
		if k != cur {
			flush()
			cur = k
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		return r, fmt.Errorf("checking ledger: %w", err)
	}
	flush()
	return r, nil
}

// Run is one row of the ledger tables: a run of step Step of a workflow, or
// its completion (Step -1), by process PID of node Node, recorded at At
// (taken when the body reached its insert, before the insert itself).
type Run struct {
	WorkflowID string
	Step       int
	Node       string
	PID        int
	At         time.Time
}

// Runs returns every row of the ledger tables, completed workflows or not,
// ordered by workflow, step (completions first, as -1) and time.
func (l *Ledger) Runs(ctx context.Context) ([]Run, error) {
	rows, err := l.db.QueryContext(ctx, `
SELECT workflow_id, -1, node, pid, at FROM stent_ledger_done
UNION ALL
SELECT workflow_id, step, node, pid, at FROM stent_ledger_runs
ORDER BY 1, 2, 5`)
	if err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var at int64
		if err := rows.Scan(&r.WorkflowID, &r.Step, &r.Node, &r.PID, &at); err != nil {
			return nil, fmt.Errorf("reading ledger: %w", err)
		}
		r.At = time.UnixMicro(at)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	return out, nil
}
