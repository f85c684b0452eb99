package ops

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/sdk"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestTraceID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", TraceID("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-abc-00f067aa0ba902b7-01"} {
		require.Empty(t, TraceID(bad), bad)
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	got, err := ParseWhen("2h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-2*time.Hour), got)
	got, err = ParseWhen("2026-11-30T12:00:00Z", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-24*time.Hour), got)
	got, err = ParseWhen("", now)
	require.NoError(t, err)
	require.True(t, got.IsZero())
	_, err = ParseWhen("yesterday", now)
	require.ErrorContains(t, err, "want a duration")
}

func TestRunTimeAndDocuments(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e := ToExecution(sdk.ExecutionInfo{ID: "x", Status: sdk.StatusRunning, CreatedAt: created, Input: []byte(`{"a":1}`), Error: "boom"})
	require.Equal(t, 3*time.Second, e.RunTime(created.Add(3*time.Second)), "to now while it runs")
	require.Equal(t, "boom", e.Error.Message)
	require.JSONEq(t, `{"a":1}`, string(e.Input))
	require.Equal(t, json.RawMessage("null"), e.Output)
	ended := created.Add(time.Second)
	e = ToExecution(sdk.ExecutionInfo{Status: sdk.StatusCompleted, CreatedAt: created, EndedAt: ended})
	require.Equal(t, time.Second, e.RunTime(created.Add(time.Hour)), "to its end once finished")
	require.Equal(t, json.RawMessage(`"not json"`), RawOrNull([]byte("not json")))
	m := ToMember(sdk.Member{ID: "n"})
	require.NotNil(t, m.Addresses)
	require.NotNil(t, m.Functions)
	require.NotNil(t, m.Queues)
	require.NotNil(t, m.Tags)
}
