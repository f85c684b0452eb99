package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// openLedgers opens an empty ledger on SQLite, and one on a fresh
// PostgreSQL schema when STENT_TEST_POSTGRES is set (it must be under CI).
func openLedgers(t *testing.T) map[string]*Ledger {
	t.Helper()
	out := map[string]*Ledger{}
	l, err := Open(filepath.Join(t.TempDir(), "ledger.db"), WithNode("test"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })
	out["sqlite"] = l

	dsn := os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STENT_TEST_POSTGRES must be set under CI")
		}
		t.Log("STENT_TEST_POSTGRES is not set: SQLite only")
		return out
	}
	var b [6]byte
	_, err = rand.Read(b[:])
	require.NoError(t, err)
	schema := "ledgertest_" + hex.EncodeToString(b[:])
	pl, err := Open(dsn, WithNode("test"), WithSchema(schema))
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := pl.db.ExecContext(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		require.NoError(t, err)
		require.NoError(t, pl.Close())
	})
	out["postgres"] = pl
	return out
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	for name, l := range openLedgers(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			require.NoError(t, l.exec(ctx, "run", "wf-1", 0))
			require.NoError(t, l.exec(ctx, "done", "wf-1", 0))
			require.NoError(t, l.insert(ctx, "signal receipt", "wf-1",
				`INSERT INTO stent_ledger_signals (workflow_id, payload, node, pid, at) VALUES (?, ?, ?, ?, ?)`,
				"wf-1", "p-1", "n", 7, int64(1000)))
			ended, err := l.limitedStart(ctx, StepInput{WorkflowID: "wf-1", Step: 0})
			require.NoError(t, err)
			_, err = l.limitedStart(ctx, StepInput{WorkflowID: "wf-1", Step: 1}) // killed: no end
			require.NoError(t, err)
			require.NoError(t, l.limitedEnd(ctx, ended))

			s, err := l.Snapshot(ctx)
			require.NoError(t, err)
			require.Len(t, s.Runs, 2)
			require.Equal(t, []Receipt{{WorkflowID: "wf-1", Payload: "p-1", Node: "n", PID: 7, At: time.UnixMicro(1000)}}, s.Receipts)
			require.Len(t, s.Limited, 2)
			require.Equal(t, 0, s.Limited[0].Step)
			require.False(t, s.Limited[0].End.IsZero())
			require.False(t, s.Limited[0].End.Before(s.Limited[0].Start))
			require.True(t, s.Limited[1].End.IsZero(), "no end recorded")
			require.Equal(t, os.Getpid(), s.Limited[1].PID)
		})
	}
}

// at is a time t0+ms milliseconds, for crafted rows.
var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// cleanRun is the snapshot of two workflows of 2 steps that ran once each,
// wf-a with a signal and limited steps.
func cleanRun() (Snapshot, Expect) {
	s := Snapshot{
		Runs: []Run{
			{WorkflowID: "wf-a", Step: -1, Node: "n1", PID: 1, At: at(500)},
			{WorkflowID: "wf-a", Step: 0, Node: "n1", PID: 1, At: at(0)},
			{WorkflowID: "wf-a", Step: 1, Node: "n1", PID: 1, At: at(300)},
			{WorkflowID: "wf-b", Step: -1, Node: "n2", PID: 2, At: at(500)},
			{WorkflowID: "wf-b", Step: 0, Node: "n2", PID: 2, At: at(0)},
			{WorkflowID: "wf-b", Step: 1, Node: "n2", PID: 2, At: at(200)},
		},
		Receipts: []Receipt{{WorkflowID: "wf-a", Payload: "sig-a", Node: "n1", PID: 1, At: at(250)}},
		Limited: []LimitedRun{
			{WorkflowID: "wf-a", Step: 0, Node: "n1", PID: 1, Start: at(0), End: at(100)},
			{WorkflowID: "wf-a", Step: 1, Node: "n1", PID: 1, Start: at(300), End: at(400)},
		},
	}
	e := Expect{
		Workflows: []string{"wf-a", "wf-b"},
		Steps:     2,
		Signals:   map[string]Sent{"wf-a": {Acked: []string{"sig-a"}}},
		Limit:     1,
		End:       at(1000),
	}
	return s, e
}

func TestAuditClean(t *testing.T) {
	t.Parallel()
	s, e := cleanRun()
	a := AuditSnapshot(s, e)
	require.Empty(t, a.Problems)
	require.Equal(t, Audit{
		Started: 2, Completed: 2, StepRuns: 4,
		SignalsAcked: 1, SignalsReceived: 1,
		LimitedRuns: 2, LimitedMax: 1, LimitedMaxWithZombies: 1,
	}, a)
}

func TestAuditFindsViolations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*Snapshot, *Expect)
		check  func(*testing.T, Audit)
	}{
		{"not completed", func(s *Snapshot, e *Expect) { s.Runs = s.Runs[1:] }, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.Completed)
		}},
		{"completed twice", func(s *Snapshot, e *Expect) {
			s.Runs = append(s.Runs, Run{WorkflowID: "wf-b", Step: -1, Node: "n3", PID: 3, At: at(600)})
		}, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.ExtraCompletions)
			require.Equal(t, 1, a.UnexplainedCompletions)
			require.Equal(t, []string{"wf-b"}, a.Suspects)
		}},
		{"step missing", func(s *Snapshot, e *Expect) { s.Runs = append(s.Runs[:2], s.Runs[3:]...) }, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.MissingSteps)
		}},
		{"step ran again", func(s *Snapshot, e *Expect) {
			s.Runs = append(s.Runs, Run{WorkflowID: "wf-b", Step: 0, Node: "n3", PID: 3, At: at(100)})
			e.Faults.Kills = map[int]time.Time{2: at(150)} // killed after the rerun: no excuse
		}, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.ExtraStepRuns)
			require.Equal(t, 1, a.UnexplainedStepRuns)
		}},
		{"signal lost", func(s *Snapshot, e *Expect) { s.Receipts = nil }, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.SignalsLost)
		}},
		{"signal never sent", func(s *Snapshot, e *Expect) {
			s.Receipts = append(s.Receipts, Receipt{WorkflowID: "wf-b", Payload: "x", PID: 2, At: at(100)})
		}, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.SignalsWrong)
		}},
		{"signal received twice", func(s *Snapshot, e *Expect) {
			s.Receipts = append(s.Receipts, Receipt{WorkflowID: "wf-a", Payload: "sig-a", PID: 1, At: at(260)})
		}, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.ExtraReceipts)
			require.Equal(t, 1, a.UnexplainedReceipts)
		}},
		{"over the limit", func(s *Snapshot, e *Expect) {
			s.Limited = append(s.Limited, LimitedRun{WorkflowID: "wf-b", Step: 0, PID: 2, Start: at(50), End: at(60)})
		}, func(t *testing.T, a Audit) {
			require.Equal(t, 2, a.LimitedMax)
		}},
		{"unended limited run", func(s *Snapshot, e *Expect) { s.Limited[1].End = time.Time{} }, func(t *testing.T, a Audit) {
			require.Equal(t, 1, a.UnendedRuns)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, e := cleanRun()
			tc.mutate(&s, &e)
			a := AuditSnapshot(s, e)
			require.NotEmpty(t, a.Problems, "%+v", a)
			tc.check(t, a)
		})
	}
}

func TestAuditExplainedByFaults(t *testing.T) {
	t.Parallel()
	s, e := cleanRun()
	// Step 0 of wf-b ran in process 2, which was killed; it ran again in 3.
	s.Runs = append(s.Runs, Run{WorkflowID: "wf-b", Step: 0, Node: "n2", PID: 3, At: at(200)})
	// wf-a's completion was recorded by process 1, which was stopped, and
	// recorded again by process 4.
	s.Runs = append(s.Runs, Run{WorkflowID: "wf-a", Step: -1, Node: "n3", PID: 4, At: at(800)})
	// A limited run of process 2 killed at 150 has no end; one of process 1
	// was frozen from 600 to 700 while another held the only permit.
	s.Limited = append(s.Limited,
		LimitedRun{WorkflowID: "wf-b", Step: 0, PID: 2, Start: at(120), End: time.Time{}},
		LimitedRun{WorkflowID: "wf-b", Step: 1, PID: 1, Start: at(420), End: at(710)},
		LimitedRun{WorkflowID: "wf-b", Step: 1, PID: 3, Start: at(620), End: at(705)},
	)
	e.Faults = Faults{
		Kills:  map[int]time.Time{2: at(150)},
		Pauses: map[int][]Pause{1: {{Stop: at(600), Cont: at(700)}}},
	}
	a := AuditSnapshot(s, e)
	require.Empty(t, a.Problems)
	require.Equal(t, 1, a.ExtraStepRuns)
	require.Equal(t, 0, a.UnexplainedStepRuns)
	require.Equal(t, 1, a.ExtraCompletions)
	require.Equal(t, 0, a.UnexplainedCompletions)
	require.Equal(t, 1, a.LimitedMax)
	require.Equal(t, 1, a.ZombieTails)
	require.Equal(t, 2, a.LimitedMaxWithZombies, "the zombie tail 700-710 overlaps 620-705")
}

func TestAuditRunCutOffByTheFinalStop(t *testing.T) {
	t.Parallel()
	s, e := cleanRun()
	s.Limited = append(s.Limited, LimitedRun{WorkflowID: "wf-b", Step: 1, Node: "n2", PID: 2, Start: at(600)})
	a := AuditSnapshot(s, e)
	require.Equal(t, 1, a.UnendedRuns, "no end, and its process was neither killed nor stopped")

	e.Faults.Stops = map[int]time.Time{2: at(900)}
	a = AuditSnapshot(s, e)
	require.Empty(t, a.Problems)
	require.Zero(t, a.UnendedRuns)
	require.Equal(t, 1, a.CutOffRuns)
}

func TestAuditTailAfterSIGCONT(t *testing.T) {
	t.Parallel()
	// Step 1 of wf-a ran in process 1 at 300 (n1). Process 3 (n3) was
	// stopped before that, continued at 395, ran step 1 again at 400 (its
	// tail), and then logged that it lost the lease.
	tail := func() (Snapshot, Expect) {
		s, e := cleanRun()
		s.Runs = append(s.Runs, Run{WorkflowID: "wf-a", Step: 1, Node: "n3", PID: 3, At: at(400)})
		e.Faults = Faults{Pauses: map[int][]Pause{3: {{Stop: at(100), Cont: at(395)}}}}
		return s, e
	}
	s, e := tail()
	e.Faults.Fenced = map[Fence][]time.Time{{Node: "n3", Workflow: "wf-a"}: {at(420)}}
	a := AuditSnapshot(s, e)
	require.Empty(t, a.Problems)
	require.Equal(t, 1, a.ExtraStepRuns)
	require.Equal(t, 1, a.TailStepRuns)
	require.Zero(t, a.UnexplainedStepRuns)

	// Without the lost lease, or long after the SIGCONT, it is no tail.
	s, e = tail()
	a = AuditSnapshot(s, e)
	require.Equal(t, 1, a.UnexplainedStepRuns)
	require.Equal(t, []string{"wf-a"}, a.Suspects)

	s, e = tail()
	e.Faults.Pauses[3][0].Cont = at(400).Add(-2 * time.Second)
	e.Faults.Fenced = map[Fence][]time.Time{{Node: "n3", Workflow: "wf-a"}: {at(420)}}
	a = AuditSnapshot(s, e)
	require.Equal(t, 1, a.UnexplainedStepRuns)

	// Nor is a second row of the workflow by the resumed process: that one
	// came from a step it started after it resumed.
	s, e = tail()
	s.Runs = append(s.Runs, Run{WorkflowID: "wf-a", Step: 0, Node: "n3", PID: 3, At: at(397)})
	e.Faults.Fenced = map[Fence][]time.Time{{Node: "n3", Workflow: "wf-a"}: {at(420)}}
	a = AuditSnapshot(s, e)
	require.Equal(t, 1, a.UnexplainedStepRuns, "step 1 at 400 follows the process's own step 0 at 397")
}

func TestTakeovers(t *testing.T) {
	t.Parallel()
	runs := []Run{
		{WorkflowID: "a", Step: 0, PID: 1, At: at(0)},
		{WorkflowID: "a", Step: 0, PID: 2, At: at(2500)}, // taken over 1.5s after the kill
		{WorkflowID: "b", Step: 0, PID: 1, At: at(900)},
		{WorkflowID: "b", Step: 1, PID: 3, At: at(1800)},  // 0.8s
		{WorkflowID: "c", Step: 0, PID: 2, At: at(900)},   // not on the killed node
		{WorkflowID: "d", Step: 0, PID: 1, At: at(-5000)}, // too old
		{WorkflowID: "d", Step: 1, PID: 2, At: at(5000)},
		{WorkflowID: "e", Step: 0, PID: 1, At: at(800)}, // never progressed
		{WorkflowID: "f", Step: 0, PID: 1, At: at(800)},
		{WorkflowID: "f", Step: -1, PID: 1, At: at(900)}, // completed before the kill
	}
	times, stuck := Takeovers(runs, []Kill{{PID: 1, At: at(1000)}}, 3*time.Second)
	require.Equal(t, []time.Duration{1500 * time.Millisecond, 800 * time.Millisecond}, times)
	require.Equal(t, 1, stuck)
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	f := Faults{Kills: map[int]time.Time{1: at(100)}, Pauses: map[int][]Pause{2: {{Stop: at(100), Cont: at(200)}}}}
	require.True(t, f.Interrupted(1, at(0), at(100)))
	require.False(t, f.Interrupted(1, at(101), at(200)), "killed before the run")
	require.False(t, f.Interrupted(1, at(0), at(99)), "killed after the rerun")
	require.True(t, f.Interrupted(2, at(50), at(150)))
	require.False(t, f.Interrupted(2, at(150), at(250)), "stopped before the run")
	require.False(t, f.Interrupted(3, at(0), at(1000)))
}

func TestLedgerSignalAndLimit(t *testing.T) {
	// Not parallel: Register sets the process's ledger.
	path := filepath.Join(t.TempDir(), "stent.db")
	ctx := context.Background()
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	go func() { _ = ex.Serve(ctx) }()
	require.NoError(t, ex.WaitUntilReady(ctx))
	defer func() { require.NoError(t, ex.Close()) }()

	l, err := Open(path, WithNode("test-node"))
	require.NoError(t, err)
	defer func() { require.NoError(t, l.Close()) }()
	require.NoError(t, Register(l))
	defer func() { require.NoError(t, Register(nil)) }()

	cctx := sdk.WithExecutor(ctx, ex)
	const n = 2 * LimitedMax
	var hs []*sdk.Handle[int]
	e := Expect{Steps: 3, Signals: map[string]Sent{}, Limit: LimitedMax}
	for i := range n {
		in := WorkflowInput{Steps: 3, Pause: 20 * time.Millisecond, Limited: true}
		if i%2 == 0 {
			in.Signal = "go"
		}
		h, err := Workflow.Start(cctx, in)
		require.NoError(t, err)
		hs = append(hs, h)
		e.Workflows = append(e.Workflows, h.ID())
		if in.Signal != "" {
			payload := "payload-" + h.ID()
			require.NoError(t, ex.SendSignal(ctx, h.ID(), "go", payload))
			e.Signals[h.ID()] = Sent{Acked: []string{payload}}
		}
	}
	for _, h := range hs {
		sum, err := h.Result(cctx)
		require.NoError(t, err)
		require.Equal(t, 6, sum, "1+2+3")
	}
	s, err := l.Snapshot(ctx)
	require.NoError(t, err)
	e.End = time.Now()
	a := AuditSnapshot(s, e)
	require.Empty(t, a.Problems)
	require.Equal(t, n, a.Completed)
	require.Equal(t, 3*n, a.StepRuns)
	require.Equal(t, 3*n, a.LimitedRuns)
	require.Equal(t, n/2, a.SignalsReceived)
	require.LessOrEqual(t, a.LimitedMax, LimitedMax)
	require.GreaterOrEqual(t, a.LimitedMax, 1)
}

func TestFencedBetween(t *testing.T) {
	t.Parallel()
	f := Faults{Fenced: map[Fence][]time.Time{{Node: "n1", Workflow: "wf-a"}: {at(100)}}}
	require.True(t, f.FencedBetween("n1", "wf-a", at(0), at(200)))
	require.False(t, f.FencedBetween("n1", "wf-a", at(150), at(200)), "fenced before the run")
	require.False(t, f.FencedBetween("n2", "wf-a", at(0), at(200)), "another node")
	require.False(t, f.FencedBetween("n1", "wf-b", at(0), at(200)), "another workflow")

	// A step run again after its node lost the workflow's lease is
	// explained; the same repeat without the fence is not.
	s, e := cleanRun()
	s.Runs = append(s.Runs, Run{WorkflowID: "wf-a", Step: 0, Node: "n2", PID: 3, At: at(300)})
	a := AuditSnapshot(s, e)
	require.Equal(t, 1, a.UnexplainedStepRuns)
	first := s.Runs[0]
	for _, r := range s.Runs {
		if r.WorkflowID == "wf-a" && r.Step == 0 {
			first = r
			break
		}
	}
	e.Faults.Fenced = map[Fence][]time.Time{{Node: first.Node, Workflow: "wf-a"}: {first.At.Add(time.Millisecond)}}
	a = AuditSnapshot(s, e)
	require.Equal(t, 0, a.UnexplainedStepRuns, "%v", a.Problems)
}
