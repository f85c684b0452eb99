package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// scheduleName is the schedule `--schedule` adds to the workload.
const scheduleName = "chaos-tick"

// ScheduleCheck is what the check found of the schedule's ticks.
type ScheduleCheck struct {
	// Every is the schedule's interval (0: no schedule in the run).
	Every time.Duration
	// Ticks counts the started ticks the check read (the newest
	// persistence.MaxTicksKept), Skipped the skipped ones, Gaps the missing
	// intervals between consecutive started ticks, Twice the executions
	// that more than one tick names.
	Ticks, Skipped, Gaps, Twice int
	// Executions counts the executions of the schedule's function,
	// Untracked those no tick names, NotCompleted the ticks' executions
	// that did not complete.
	Executions, Untracked, NotCompleted int
	// Trimmed is set when the oldest tick rows were trimmed
	// (persistence.MaxTicksKept): Untracked is then not counted.
	Trimmed bool
}

// ok reports whether every tick was started once.
func (c ScheduleCheck) ok() bool {
	return c.Ticks > 0 && c.Skipped == 0 && c.Gaps == 0 && c.Twice == 0 && c.Untracked == 0 && c.NotCompleted == 0
}

// startSchedule adds the schedule to the workload: a tick every
// cfg.Schedule, each starting ledger_schedule_tick, every tick started
// whatever the overlap, and a catch-up window longer than any outage the
// run makes, so that no tick may be skipped.
func (r *run) startSchedule(ctx context.Context, ex *sdk.Executor) error {
	_, err := ex.CreateSchedule(ctx, scheduleName, sdk.Every(r.cfg.Schedule), ledger.ScheduleTick.Name(), 0,
		sdk.WithOverlap(sdk.OverlapAllowAll), sdk.WithCatchupWindow(r.cfg.Timeout+time.Hour))
	if err != nil {
		return fmt.Errorf("creating the schedule: %w", err)
	}
	fmt.Fprintf(r.out, "schedule %s: a tick every %s\n", scheduleName, r.cfg.Schedule)
	return nil
}

// checkSchedule pauses the schedule, waits (while the nodes still run) for
// the executions of its ticks to end, and checks that every tick was
// started once, with no gap.
func (r *run) checkSchedule(ctx context.Context, ex *sdk.Executor) (ScheduleCheck, error) {
	c := ScheduleCheck{Every: r.cfg.Schedule}
	if _, err := ex.PauseSchedule(ctx, scheduleName, "chaos run over"); err != nil {
		return c, err
	}
	ticks, err := ex.ScheduleTicks(ctx, scheduleName, persistence.MaxTicksKept)
	if err != nil {
		return c, err
	}
	// Beyond MaxTicksKept the oldest tick rows are gone: their executions
	// cannot be matched, and are not counted as executions of no tick.
	c.Trimmed = len(ticks) == persistence.MaxTicksKept
	ids := map[string]int{}
	var prev time.Time
	for i := len(ticks) - 1; i >= 0; i-- { // oldest first
		t := ticks[i]
		if t.Status != "started" {
			c.Skipped += t.Count
			continue
		}
		c.Ticks++
		ids[t.ExecutionID]++
		if !prev.IsZero() && t.At.Sub(prev) != c.Every {
			c.Gaps++
		}
		prev = t.At
	}
	for _, n := range ids {
		c.Twice += n - 1
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.countExecutions(ctx, ex, ids); err != nil {
			return c, err
		}
		if c.NotCompleted == 0 || time.Now().After(deadline) {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// countExecutions counts the executions of the schedule's function: those
// no tick of ids names, and the ticks' executions not completed.
func (c *ScheduleCheck) countExecutions(ctx context.Context, ex *sdk.Executor, ids map[string]int) error {
	const most = 100_000
	rows, err := ex.List(ctx, sdk.ListFilter{Function: ledger.ScheduleTick.Name(), Limit: most})
	if err != nil {
		return fmt.Errorf("listing the ticks' executions: %w", err)
	}
	if len(rows) == most {
		return fmt.Errorf("%d executions of %s or more: shorten the run or lengthen --schedule", most, ledger.ScheduleTick.Name())
	}
	c.Executions, c.Untracked, c.NotCompleted = len(rows), 0, len(ids)
	for _, row := range rows {
		if _, ok := ids[row.ID]; !ok {
			if !c.Trimmed {
				c.Untracked++
			}
			continue
		}
		if row.Status == sdk.StatusCompleted {
			c.NotCompleted--
		}
	}
	return nil
}

// invariant is the row of the schedule's check.
func (c ScheduleCheck) invariant() invariant {
	figures := fmt.Sprintf("%d ticks every %s, %d executions: %d skipped, %d gaps, %d started twice, %d executions of no tick, %d not completed",
		c.Ticks, c.Every, c.Executions, c.Skipped, c.Gaps, c.Twice, c.Untracked, c.NotCompleted)
	if c.Trimmed {
		figures += " (older tick rows trimmed: executions of no tick not counted)"
	}
	return invariant{"I11", "each schedule tick started once", c.ok(), figures}
}
