package ledger

import (
	"context"

	"github.com/stent-go/stent/sdk"
)

// ScheduleTick is the function of the schedule that `stent chaos
// --schedule` adds to the workload: each tick of the schedule starts one
// execution of it, and the check counts them (one per tick). Its body has
// nothing to record: a tick's execution, not its body, is what is started
// once.
var ScheduleTick = sdk.Durable("ledger_schedule_tick", func(ctx context.Context, n int) (int, error) { return n, nil })
