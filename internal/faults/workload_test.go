package faults

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// long reports whether the long suite was asked for.
func long() bool { return os.Getenv("STENT_FAULTS_LONG") != "" }

// The workload: a workflow of steps that each record their run (start and
// end) in memory, in this process, which no fault here kills.

type stepIn struct {
	Run  string `json:"run"`
	Flow int    `json:"flow"`
	Step int    `json:"step"`
}

type flowIn struct {
	Run   string `json:"run"`
	Flow  int    `json:"flow"`
	Steps int    `json:"steps"`
}

type stepRun struct{ start, end time.Time }

var (
	runsMu sync.Mutex
	runs   = map[string][]*stepRun{} // "run/flow/step" → its runs

	faultStep = sdk.Durable("faults_step", func(ctx context.Context, in stepIn) (int, error) {
		r := &stepRun{start: time.Now()}
		key := fmt.Sprintf("%s/%d/%d", in.Run, in.Flow, in.Step)
		runsMu.Lock()
		runs[key] = append(runs[key], r)
		runsMu.Unlock()
		time.Sleep(100 * time.Millisecond) // work: faults find steps in flight
		runsMu.Lock()
		r.end = time.Now()
		runsMu.Unlock()
		return in.Step, nil
	})
	faultFlow = sdk.Durable("faults_flow", func(ctx context.Context, in flowIn) (int, error) {
		sum := 0
		for i := range in.Steps {
			v, err := faultStep.Call(ctx, stepIn{Run: in.Run, Flow: in.Flow, Step: i})
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}, sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 20, InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second}))
)

// workload is one run of the workload: its workflows and what they did.
type workload struct {
	t       *testing.T
	ex      *sdk.Executor
	run     string
	steps   int
	handles []*sdk.Handle[int]
	started []time.Time
}

func newWorkload(t *testing.T, b persistence.Backend, opts ...sdk.ExecutorOption) *workload {
	t.Helper()
	ctx := context.Background()
	all := append([]sdk.ExecutorOption{sdk.Serve(), sdk.WithLeaseDuration(2 * time.Second),
		sdk.WithPollInterval(50 * time.Millisecond), sdk.WithLogger(stenttest.Logger(t))}, opts...)
	ex, err := sdk.Bootstrap(ctx, b, all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ex.Close() })
	return &workload{t: t, ex: ex, run: fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()), steps: 10}
}

// start starts n workflows, spread over spread; those whose Start returned
// an error were not acknowledged and are not counted.
func (w *workload) start(n int, spread time.Duration) (refused int) {
	ctx := sdk.WithExecutor(context.Background(), w.ex)
	for i := range n {
		h, err := faultFlow.Start(ctx, flowIn{Run: w.run, Flow: i, Steps: w.steps})
		if err != nil {
			refused++
			w.t.Logf("start %d refused: %v", i, err)
		} else {
			w.handles = append(w.handles, h)
			w.started = append(w.started, time.Now())
		}
		time.Sleep(spread / time.Duration(n))
	}
	return refused
}

// outcomeGrace is how long after its run a step's outcome may still be
// unwritten (a group commit on a busy machine).
const outcomeGrace = time.Second

// verdict checks the ledger invariants once every acknowledged workflow has
// ended: each completed with the right result (none lost), and no step ran
// twice, except those in flight when the fault began (at fault). It
// returns how many steps ran again, within and outside that exception.
func (w *workload) verdict(fault time.Time, timeout time.Duration) (inFlight, others int) {
	return w.verdictWindow(fault, fault, timeout)
}

// verdictWindow is verdict where the exception covers the steps in flight
// at any time from the fault's start to its end: a step whose outcome could
// not be written (a full disk refuses every write) runs again.
func (w *workload) verdictWindow(fault, faultEnd time.Time, timeout time.Duration) (inFlight, others int) {
	t := w.t
	ctx, cancel := context.WithTimeout(sdk.WithExecutor(context.Background(), w.ex), timeout)
	defer cancel()
	want := 0
	for i := range w.steps {
		want += i
	}
	for i, h := range w.handles {
		got, err := h.Result(ctx)
		require.NoError(t, err, "acknowledged workflow %d (%s) was lost or failed", i, h.ID())
		require.Equal(t, want, got)
	}
	runsMu.Lock()
	defer runsMu.Unlock()
	for key, rs := range runs {
		if len(rs) < 2 || !hasPrefix(key, w.run+"/") {
			continue
		}
		first := rs[0]
		// A step is in flight until its outcome is written, which
		// follows its run by a write: a run that ended within
		// outcomeGrace before the fault may not have been recorded.
		if !first.start.After(faultEnd) && (first.end.IsZero() || !first.end.Before(fault.Add(-outcomeGrace))) && len(rs) == 2 {
			inFlight++
			continue
		}
		others++
		t.Errorf("step %s ran %d times, first at %s (fault at %s)", key, len(rs), first.start.Format(time.StampMicro), fault.Format(time.StampMicro))
	}
	return inFlight, others
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
