package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// scrape is one read of a node's /metrics.
type scrape map[string]*dto.MetricFamily

// scrapeMetrics reads http://addr/metrics.
func scrapeMetrics(addr string) (scrape, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// find returns the sample of family name whose labels include labels
// ("k=v" pairs), or nil.
func (s scrape) find(name string, labels ...string) *dto.Metric {
	f := s[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is the value of a counter or gauge sample, or the count of a
// histogram's (-1 when absent).
func (s scrape) value(name string, labels ...string) float64 {
	m := s.find(name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// testMetrics runs a known workload on a node with an admin address and
// checks that its /metrics counters, gauges and histograms move with it.
func testMetrics(t *testing.T) {
	t.Parallel()
	const (
		workflows = 4
		steps     = 3
	)
	dir := t.TempDir()
	db := filepath.Join(dir, "stent.db")
	logPath := filepath.Join(dir, "node.log")
	startNode(t, logPath, "--db", db, "--node", "metrics-node", "--admin", "127.0.0.1:0")
	var addr string
	testutil.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if addr = logAttr(t, logPath, "admin listening", "addr"); addr == "" || logAttr(t, logPath, "node ready", "node") == "" {
			return errors.New("node not ready")
		}
		return nil
	})
	before, err := scrapeMetrics(addr)
	require.NoError(t, err)
	require.NotNil(t, before["go_goroutines"], "the Go collector is registered")
	require.Equal(t, -1.0, before.value("stent_executions_completed_total"), "nothing ran yet")

	ctx := context.Background()
	b, err := sqlite.Open(db)
	require.NoError(t, err)
	require.NoError(t, b.Init(ctx))
	// The client's own metrics, read in the test: it writes the cancel
	// of the waiting workflow, which no node runs at that moment.
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { require.NoError(t, mp.Shutdown(ctx)) }()
	ex, err := sdk.New(b, sdk.WithLogger(stenttest.Logger(t)), sdk.WithMeterProvider(mp))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	cctx := sdk.WithExecutor(ctx, ex)

	// A workflow waiting for a signal shows in the waiting gauge; it is
	// canceled later.
	waiter, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: 1, Signal: "never"})
	require.NoError(t, err)
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := scrapeMetrics(addr)
		if err != nil {
			return err
		}
		if v := s.value("stent_executions_waiting", "stent_function=ledger_workflow", "stent_queue=default"); v != 1 {
			return fmt.Errorf("stent_executions_waiting of ledger_workflow: %v", v)
		}
		return nil
	})

	var handles []*sdk.Handle[int]
	for range workflows {
		h, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: steps})
		require.NoError(t, err)
		handles = append(handles, h)
	}
	limited, err := ledger.Workflow.Start(cctx, ledger.WorkflowInput{Steps: 2, Limited: true})
	require.NoError(t, err)
	handles = append(handles, limited)
	for _, h := range handles {
		_, err := h.Result(cctx)
		require.NoError(t, err)
	}
	require.NoError(t, ex.Cancel(ctx, waiter.ID()))
	_, err = waiter.Result(cctx)
	require.ErrorIs(t, err, sdk.ErrCanceled)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	require.Equal(t, int64(1), sumOf(rm, "stent.executions.canceled"), "counted by the client that canceled it")

	fn := func(name string) string { return "stent_function=" + name }
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"stent_executions_started_total", []string{fn("ledger_workflow")}, workflows + 2},
		{"stent_executions_completed_total", []string{fn("ledger_workflow"), "stent_queue=default"}, workflows + 1},
		{"stent_executions_completed_total", []string{fn("ledger_step")}, workflows*steps + 1},
		{"stent_executions_completed_total", []string{fn("ledger_limited_step")}, 2},
		{"stent_step_duration_seconds", []string{fn("ledger_step")}, workflows*steps + 1},
		{"stent_step_duration_seconds", []string{fn("ledger_limited_step")}, 2},
		{"stent_execution_duration_seconds", []string{fn("ledger_workflow"), "stent_status=completed"}, workflows + 1},
		{"stent_permits_in_use", []string{fn("ledger_limited_step")}, 0},
		{"stent_permits_waiting", []string{fn("ledger_limited_step")}, 0},
		{"stent_executions_waiting", []string{fn("ledger_workflow")}, 0},
		{"stent_executions_running", []string{fn("ledger_workflow")}, 0},
		{"stent_queue_depth", []string{"stent_queue=default"}, 0},
		{"stent_queue_oldest_pending_age_seconds", []string{"stent_queue=default"}, 0},
		{"stent_node_activations", nil, 0},
		{"stent_leases_held", nil, 0},
	}
	var after scrape
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		s, err := scrapeMetrics(addr)
		if err != nil {
			return err
		}
		for _, w := range want {
			if v := s.value(w.name, w.labels...); v != w.value {
				return fmt.Errorf("%s%v = %v, want %v", w.name, w.labels, v, w.value)
			}
		}
		after = s
		return nil
	})
	// The writer committed the workload in batches: its histograms moved.
	commits := after.find("db_client_operation_duration_seconds", "db_system_name=sqlite", "db_operation_name=commit")
	require.NotNil(t, commits)
	require.Positive(t, commits.GetHistogram().GetSampleCount())
	require.Positive(t, commits.GetHistogram().GetSampleSum())
	batches := after.find("stent_db_commit_batch_size", "db_system_name=sqlite")
	require.NotNil(t, batches)
	require.Equal(t, commits.GetHistogram().GetSampleCount(), batches.GetHistogram().GetSampleCount())
	require.GreaterOrEqual(t, batches.GetHistogram().GetSampleSum(), float64(workflows*steps))
	// Every step took a measurable time, recorded in a bucket.
	step := after.find("stent_step_duration_seconds", fn("ledger_step")).GetHistogram()
	require.Positive(t, step.GetSampleSum())
	require.Equal(t, step.GetSampleCount(), step.GetBucket()[len(step.GetBucket())-1].GetCumulativeCount())
	require.Equal(t, -1.0, after.value("stent_executions_failed_total"), "nothing failed")
	require.Equal(t, -1.0, after.value("stent_cluster_members"), "no cluster")
	if out := os.Getenv("STENT_TEST_METRICS_OUT"); out != "" {
		// The scrape excerpt of docs/observability.md comes from here.
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, errors.Join(err, resp.Body.Close()))
		require.NoError(t, os.WriteFile(out, body, 0o600))
	}
}

// sumOf is the total of the int64 sum instrument name in rm.
func sumOf(rm metricdata.ResourceMetrics, name string) int64 {
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				for _, dp := range s.DataPoints {
					n += dp.Value
				}
			}
		}
	}
	return n
}
