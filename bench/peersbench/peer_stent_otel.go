//go:build stent

package main

// stent-sqlite-otel and stent-postgres-otel: the stent peer (peer_stent.go
// in peersbench) with tracing (the OpenTelemetry SDK sampling every span
// into a batcher whose exporter drops them) and metrics (the SDK meter
// provider exporting to a Prometheus registry) on. bench/peersbench/run.sh
// copies this file into a scratch copy of peersbench.

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

func init() {
	register("stent-postgres-otel", func(cfg Config) Peer { return &stentOtelPeer{stentPeer{cfg: cfg, backend: "postgres"}} })
	register("stent-sqlite-otel", func(cfg Config) Peer { return &stentOtelPeer{stentPeer{cfg: cfg, backend: "sqlite"}} })
}

type stentOtelPeer struct{ stentPeer }

func (p *stentOtelPeer) Name() string { return "stent-" + p.backend + "-otel" }

func (p *stentOtelPeer) Setup(ctx context.Context) error {
	var b persistence.Backend
	var err error
	if p.backend == "postgres" {
		b, err = postgres.Open(ctx, p.dsn)
	} else {
		b, err = sqlite.Open(p.dsn)
	}
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	exp, err := otelprom.New(otelprom.WithRegisterer(prometheus.NewRegistry()))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	p.ex, err = sdk.Bootstrap(ctx, b, sdk.Serve(), sdk.WithTracerProvider(tp), sdk.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	p.ctx = sdk.WithExecutor(context.Background(), p.ex)
	return nil
}
