// Package media is the durable functions of the media_pipeline example: an
// upload is checked, transcoded to several renditions in parallel and given
// a thumbnail; then the pipeline waits, durably, for an editor's approval
// signal, holds the release for an embargo (a durable sleep) and publishes.
// A node binary can register these functions by importing the package.
package media

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stent-go/stent/sdk"
)

// Upload is a video to publish. Embargo is how long the release waits
// after approval.
type Upload struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Embargo time.Duration `json:"embargo"`
}

// Approval is the signal an editor sends: "approval".
type Approval struct {
	Approved bool   `json:"approved"`
	By       string `json:"by"`
}

// Rendition is one transcoded file.
type Rendition struct {
	Resolution string `json:"resolution"`
	File       string `json:"file"`
}

// Release is the pipeline's outcome.
type Release struct {
	ID         string      `json:"id"`
	Renditions []Rendition `json:"renditions"`
	Thumbnail  string      `json:"thumbnail"`
	ApprovedBy string      `json:"approved_by,omitempty"`
	Status     string      `json:"status"` // "published" or "rejected"
	URL        string      `json:"url,omitempty"`
}

// ApprovalSignal is the name of the approval signal.
const ApprovalSignal = "approval"

// ApprovalTimeout is how long the pipeline waits for an editor.
const ApprovalTimeout = 72 * time.Hour

// Resolutions are the renditions made of every upload.
var Resolutions = []string{"1080p", "720p", "480p"}

// transcodeJob is one rendition to make.
type transcodeJob struct {
	UploadID   string `json:"upload_id"`
	Resolution string `json:"resolution"`
}

// The stages, each a durable function with its own retries.
var (
	Validate = sdk.Durable("media_validate", func(ctx context.Context, u Upload) (Upload, error) {
		if !strings.HasSuffix(u.Name, ".mp4") {
			return u, sdk.NonRetryable(fmt.Errorf("upload %s: %q is not an mp4 file", u.ID, u.Name))
		}
		return u, nil
	})
	Transcode = sdk.Durable("media_transcode", func(ctx context.Context, j transcodeJob) (Rendition, error) {
		return Rendition{Resolution: j.Resolution, File: j.UploadID + "-" + j.Resolution + ".mp4"}, nil
	}, sdk.WithMaxConcurrent(2), sdk.WithRetry(sdk.RetryPolicy{MaxAttempts: 5}))
	Thumbnail = sdk.Durable("media_thumbnail", func(ctx context.Context, u Upload) (string, error) {
		return u.ID + "-thumb.jpg", nil
	})
	Publish = sdk.Durable("media_publish", func(ctx context.Context, u Upload) (string, error) {
		return "https://media.example.com/" + u.ID, nil
	})
)

// Pipeline runs every stage of one upload.
var Pipeline = sdk.Durable("media_pipeline", pipeline)

// sample:begin approval
func pipeline(ctx context.Context, u Upload) (Release, error) {
	rel := Release{ID: u.ID}
	stage := func(s string) error { return sdk.SetState(ctx, "stage", s) }
	if _, err := Validate.Call(ctx, u); err != nil {
		return rel, err
	}
	if err := stage("transcoding"); err != nil {
		return rel, err
	}
	jobs := make([]transcodeJob, len(Resolutions))
	for i, r := range Resolutions {
		jobs[i] = transcodeJob{UploadID: u.ID, Resolution: r}
	}
	var err error
	if rel.Renditions, err = Transcode.Map(ctx, jobs); err != nil {
		return rel, err
	}
	if rel.Thumbnail, err = Thumbnail.Call(ctx, u); err != nil {
		return rel, err
	}
	if err := stage("awaiting approval"); err != nil {
		return rel, err
	}
	// Waits durably: no goroutine or worker slot is held meanwhile.
	a, ok, err := sdk.WaitForSignalTimeout[Approval](ctx, ApprovalSignal, ApprovalTimeout)
	if err != nil {
		return rel, err
	}
	if !ok || !a.Approved {
		rel.Status = "rejected"
		return rel, stage("rejected")
	}
	rel.ApprovedBy = a.By
	if err := stage("embargo"); err != nil {
		return rel, err
	}
	if err := sdk.Sleep(ctx, u.Embargo); err != nil { // a durable timer
		return rel, err
	}
	if rel.URL, err = Publish.Call(ctx, u); err != nil {
		return rel, err
	}
	rel.Status = "published"
	return rel, stage("published")
}

// sample:end
