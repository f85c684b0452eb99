package stentcli

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/ops"
	"github.com/stent-go/stent/sdk"
)

func TestShowPrintsProgress(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	info := sdk.ExecutionInfo{ID: "ex2", Function: "f", Status: sdk.StatusCompleted, Attempts: 1,
		Input: json.RawMessage(`1`), Output: json.RawMessage(`2`), CreatedAt: at, UpdatedAt: at, EndedAt: at,
		CachedFrom: "ex1", Counters: map[string]float64{"rows": 3, "bytes": 1.5},
		State: map[string]json.RawMessage{"stage": json.RawMessage(`"done"`)}}
	var out bytes.Buffer
	a := &app{}
	a.printShow(&out, &ops.Show{Execution: ops.ToExecution(info)}, at)
	require.Contains(t, out.String(), "Cached from:  ex1\n")
	require.Contains(t, out.String(), "Counters:     bytes=1.5  rows=3\n")
	require.Contains(t, out.String(), "State:        stage=\"done\"\n")
	b, err := json.Marshal(ops.ToExecution(info))
	require.NoError(t, err)
	require.Contains(t, string(b), `"cached_from":"ex1","counters":{"bytes":1.5,"rows":3},"state":{"stage":"done"}`)
}
