package sdk

import "go.opentelemetry.io/otel/metric"

// WithMeterProvider sets the OpenTelemetry meter provider the executor
// records its metrics with: executions started, completed, failed,
// retried, canceled and timed out, their latencies, queue depth, permits,
// leases, dead letters, the backend's commits and the cluster's members
// (docs/observability.md, "Metrics", lists every instrument). Without it
// the executor uses the global provider (otel.GetMeterProvider), which
// records nothing until one is set. The observable instruments that read
// Backend.Stats query the database only when the provider collects, at
// most once a second. A stent-node (sdk/node) sets a provider of its own
// that serves the metrics at /metrics on its admin address.
func WithMeterProvider(mp metric.MeterProvider) ExecutorOption {
	return func(o *executorOptions) { o.meterProvider = mp }
}
