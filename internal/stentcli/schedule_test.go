package stentcli

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

var cliTick = sdk.Durable("cli_schedule_tick", func(_ context.Context, n int) (int, error) { return n, nil })

func TestScheduleCommandsSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	d := db{"--db", path}
	ok(t, d, "migrate")
	b, err := sqlite.Open(path)
	require.NoError(t, err)
	testScheduleCommands(t, d, b)
}

func TestScheduleCommandsPostgres(t *testing.T) {
	t.Parallel()
	dsn := postgresDSN(t)
	schema := newSchema(t, dsn)
	d := db{"--db", dsn, "--schema", schema}
	ok(t, d, "migrate")
	b, err := postgres.Open(context.Background(), dsn, postgres.WithSchema(schema))
	require.NoError(t, err)
	testScheduleCommands(t, d, b)
}

// testScheduleCommands runs every schedule command of the stent binary on
// the database of d, which a node in this process (on b) serves.
func testScheduleCommands(t *testing.T, d db, b persistence.Backend) {
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithLeaseDuration(2*time.Second), sdk.WithPollInterval(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, ex.Close()) })

	// A spec that does not parse: a usage error with the parser's message.
	fails(t, d, 2, []string{`spec "61 * * * *" does not parse: end of range (61) above maximum (59): 61`},
		"schedule", "create", "bad", "61 * * * *", cliTick.Name())
	fails(t, d, 2, []string{"Mars/Olympus"}, "schedule", "create", "bad", "@daily", cliTick.Name(), "--tz", "Mars/Olympus")
	fails(t, d, 2, []string{"not JSON"}, "schedule", "create", "bad", "@daily", cliTick.Name(), "{oops")
	fails(t, d, 2, []string{"needs a command"}, "schedule")
	require.Contains(t, ok(t, d, "schedule", "list"), "no schedules")

	var s ops.Schedule
	okJSON(t, d, &s, "schedule", "create", "ticker", "@every 1s", cliTick.Name(), "7",
		"--overlap", "allow_all", "--catchup-window", "10m", "--paused", "--jitter", "0s")
	require.Equal(t, "ticker", s.Name)
	require.True(t, s.Paused)
	require.Equal(t, "allow_all", s.Overlap)
	require.Equal(t, "10m0s", s.CatchupWindow)
	require.JSONEq(t, "7", string(s.Input))
	fails(t, d, 1, []string{`schedule "ticker" exists already`}, "schedule", "create", "ticker", "@daily", cliTick.Name())
	okJSON(t, d, &s, "schedule", "create", "nightly", "0 2 * * *", cliTick.Name(), "--tz", "Europe/Paris", "--paused")
	require.Equal(t, "Europe/Paris", s.TimeZone)

	var list []ops.Schedule
	okJSON(t, d, &list, "schedule", "list")
	require.Len(t, list, 2)
	require.Equal(t, "nightly", list[0].Name)
	text := ok(t, d, "schedule", "list")
	for _, want := range []string{"NAME", "ticker", "paused", "@every 1s", "0 2 * * * (Europe/Paris)"} {
		require.Contains(t, text, want)
	}

	compl := ok(t, nil, append(append([]string{"__complete", "schedule", "show"}, d...), "")...)
	require.Contains(t, compl, "ticker\t@every 1s cli_schedule_tick paused")
	require.Contains(t, compl, "nightly\t")

	// Resume: the node fires it; show lists the started ticks.
	okJSON(t, d, &s, "schedule", "resume", "ticker")
	require.False(t, s.Paused)
	var show scheduleShowJSON
	testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		okJSON(t, d, &show, "schedule", "show", "ticker")
		if len(show.Ticks) < 2 {
			return fmt.Errorf("%d ticks", len(show.Ticks))
		}
		return nil
	})
	require.Equal(t, "started", show.Ticks[0].Status)
	require.NotEmpty(t, show.Ticks[0].ExecutionID)
	text = ok(t, d, "schedule", "show", "ticker")
	for _, want := range []string{"Schedule:", "State:", "active", "Next run:", "Ticks (newest first):", "scheduled", "started"} {
		require.Contains(t, text, want)
	}

	okJSON(t, d, &s, "schedule", "pause", "ticker", "--note", "cli test")
	require.True(t, s.Paused)
	require.Equal(t, "cli test", s.Note)

	// Trigger and backfill start executions, each once.
	var started struct{ Executions []string }
	okJSON(t, d, &started, "schedule", "trigger", "ticker")
	require.Len(t, started.Executions, 1)
	var back, again struct{ Executions []string }
	from, to := time.Now().Add(-5*time.Second).UTC().Format(time.RFC3339), time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	okJSON(t, d, &back, "schedule", "backfill", "ticker", "--from", from, "--to", to)
	require.Len(t, back.Executions, 5)
	okJSON(t, d, &again, "schedule", "backfill", "ticker", "--from", from, "--to", to)
	require.Equal(t, back.Executions, again.Executions, "a second backfill starts nothing new")
	require.Contains(t, ok(t, d, "schedule", "backfill", "ticker", "--from", "3s", "--to", "2s"), "\n")
	fails(t, d, 2, []string{"needs --from and --to"}, "schedule", "backfill", "ticker", "--from", "5s")
	fails(t, d, 1, []string{"after now"}, "schedule", "backfill", "ticker", "--from", "5s", "--to", "2099-01-01T00:00:00Z")
	okJSON(t, d, &show, "schedule", "show", "ticker", "--ticks", "1000")
	kinds := map[string]int{}
	for _, tk := range show.Ticks {
		kinds[tk.Kind]++
	}
	require.Equal(t, 1, kinds["trigger"])
	require.Positive(t, kinds["backfill"]+kinds["scheduled"])
	testutil.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		for _, id := range append(back.Executions, started.Executions...) {
			info, err := ex.Execution(ctx, id)
			if err != nil {
				return err
			}
			if info.Status != sdk.StatusCompleted {
				return fmt.Errorf("%s is %s", id, info.Status)
			}
		}
		return nil
	})

	ok(t, d, "schedule", "delete", "ticker")
	fails(t, d, 1, []string{`no such schedule "ticker"`}, "schedule", "show", "ticker")
	fails(t, d, 1, []string{`no such schedule "ticker"`}, "schedule", "trigger", "ticker")
	fails(t, d, 2, []string{"show takes NAME"}, "schedule", "show")
}
