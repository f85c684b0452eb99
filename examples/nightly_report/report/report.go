// Package report is the nightly_report example's durable function and its
// schedule, declared in code: every night at 02:00, Paris time. A node
// binary that imports the package serves both.
package report

import (
	"context"

	"github.com/stent-go/stent/sdk"
)

// ReportRequest says which report to make.
type ReportRequest struct {
	Kind string `json:"kind"`
}

// sample:begin declare
var Report = sdk.Durable("nightly_report", func(ctx context.Context, r ReportRequest) (string, error) {
	return r.Kind + " report sent", nil
})

var _ = sdk.Schedule("nightly-report", "0 2 * * *", Report, ReportRequest{Kind: "daily"},
	sdk.WithTimeZone("Europe/Paris"), sdk.WithOverlap(sdk.OverlapSkip))

// sample:end
