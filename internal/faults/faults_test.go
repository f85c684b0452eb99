package faults

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence/postgres"
)

// size is the number of workflows and the outage of the suite.
func size() (workflows int, outage time.Duration) {
	if long() {
		return 200, 40 * time.Second
	}
	return 40, 5 * time.Second
}

func openPG(t *testing.T, s *pgServer) *postgres.Backend {
	t.Helper()
	b, err := postgres.Open(context.Background(), s.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestPostgresRestart restarts the server mid-run. A step in flight at any
// time of the restart counts as in flight when the fault began.
func TestPostgresRestart(t *testing.T) {
	s := startPG(t)
	w := newWorkload(t, openPG(t, s))
	n, _ := size()
	require.Zero(t, w.start(n, time.Second))
	fault := time.Now()
	s.Restart()
	back := time.Now()
	inFlight, others := w.verdictWindow(fault, back, 3*time.Minute)
	t.Logf("restart under %d workflows: %d completed, %d steps in flight ran again, %d others", n, len(w.handles), inFlight, others)
}

// TestPostgresOutage stops the server mid-run for the outage (5 s, or 40 s
// in the long suite) and starts it again.
func TestPostgresOutage(t *testing.T) {
	s := startPG(t)
	w := newWorkload(t, openPG(t, s))
	n, outage := size()
	require.Zero(t, w.start(n, time.Second))
	// The outage begins somewhere while pg_ctl stops the server (an
	// immediate stop, some milliseconds): a step in flight at any time
	// of that stop counts as in flight when it began.
	fault := time.Now()
	s.Stop()
	down := time.Now()
	time.Sleep(outage)
	s.Start()
	inFlight, others := w.verdictWindow(fault, down, 5*time.Minute)
	t.Logf("%s outage under %d workflows (the stop took %s): %d completed, %d steps in flight when it began ran again, %d others",
		outage, n, down.Sub(fault).Round(time.Millisecond), len(w.handles), inFlight, others)
}

// TestPostgresConnectionKills ends every connection of the server three
// times while the workflows run.
func TestPostgresConnectionKills(t *testing.T) {
	s := startPG(t)
	w := newWorkload(t, openPG(t, s))
	n, _ := size()
	require.Zero(t, w.start(n, time.Second))
	fault := time.Now()
	killed := 0
	for range 3 {
		killed += s.Terminate()
		time.Sleep(100 * time.Millisecond)
	}
	require.Positive(t, killed)
	inFlight, others := w.verdict(fault, 3*time.Minute)
	t.Logf("%d connections killed under %d workflows: %d completed, %d steps in flight ran again, %d others", killed, n, len(w.handles), inFlight, others)
}
