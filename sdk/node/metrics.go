package node

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
)

// nodeMetrics is a node's OpenTelemetry meter provider, exported to a
// Prometheus registry of its own (never the process-wide default, so that
// two nodes in one process do not collide), served by handler at /metrics.
type nodeMetrics struct {
	provider *sdkmetric.MeterProvider
	handler  http.Handler
}

// newNodeMetrics makes the meter provider of node nodeID: Stent's
// instruments (sdk.WithMeterProvider) plus the Go runtime's and the
// process's collectors.
func newNodeMetrics(nodeID string) (*nodeMetrics, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("registering the Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("registering the process collector: %w", err)
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("making the Prometheus exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "stent-node"),
		attribute.String("service.instance.id", nodeID))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil, ErrorHandling: promhttp.ContinueOnError})
	return &nodeMetrics{provider: mp, handler: h}, nil
}

// shutdown stops the meter provider.
func (m *nodeMetrics) shutdown() error {
	if err := m.provider.Shutdown(context.Background()); err != nil {
		return fmt.Errorf("stopping the meter provider: %w", err)
	}
	return nil
}
