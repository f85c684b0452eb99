package actors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/stent-go/stent/persistence"
)

// NormalizeTags returns tags sorted, without duplicates, or an error naming
// an empty tag.
func NormalizeTags(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := slices.Clone(tags)
	for _, t := range out {
		if t == "" {
			return nil, fmt.Errorf("an empty tag in %q", tags)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Covers reports whether this node has every one of tags: only then may
// it run an execution that needs them. Every node covers no tags.
func (rt *Runtime) Covers(tags []string) bool {
	for _, t := range tags {
		if !slices.Contains(rt.cfg.Tags, t) {
			return false
		}
	}
	return true
}

// CallTags returns the tags an execution of fn started with the call tags
// extra needs: fn's and extra's, sorted, without duplicates. extra must be
// normalized (NormalizeTags).
func (fn *Function) CallTags(extra []string) []string {
	if len(extra) == 0 {
		return fn.Tags
	}
	all := append(slices.Clone(fn.Tags), extra...)
	slices.Sort(all)
	return slices.Compact(all)
}

// tagExecutions records the tags of the executions ids, before their rows
// are written, when there are tags.
func (rt *Runtime) tagExecutions(ctx context.Context, tags []string, ids ...string) error {
	if len(tags) == 0 {
		return nil
	}
	for _, id := range ids {
		if err := rt.backend.SetExecutionTags(ctx, id, tags); err != nil {
			return err
		}
	}
	return nil
}

// TagExecution records the tags execution id needs, before its row is
// written (a root start).
func (rt *Runtime) TagExecution(ctx context.Context, tags []string, id string) error {
	return rt.tagExecutions(ctx, tags, id)
}

// coversStored reports whether this node has every tag execution id was
// started with. An activation sent by another member (placement, a wake-up)
// checks it before taking the lease: the claim query filters by tags, but
// a member places work by hash without knowing them. On error it answers
// false: the execution is left for a claim.
func (rt *Runtime) coversStored(ctx context.Context, id string) bool {
	tags, err := rt.backend.ExecutionTags(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Warn("reading the tags of an execution placed here; leaving it to a claim",
				slog.String("execution_id", id), slog.Any("error", err))
		}
		return false
	}
	return rt.Covers(tags)
}

// refuseUncovered gives back the lease of rec, whose function needs tags
// this node lacks (its tags were not recorded when it started: the
// function had none then), so that a node that has them claims it, and
// reports whether it did.
func (rt *Runtime) refuseUncovered(ctx context.Context, rec *persistence.Execution, fn *Function) bool {
	if rt.Covers(fn.Tags) {
		return false
	}
	// Its tags may be missing (an execution started before its function
	// had them): record them, so that the claims of nodes without them
	// pass it over instead of taking it again at once.
	if err := rt.backend.SetExecutionTags(ctx, rec.ID, fn.Tags); err != nil {
		rt.log.Warn("recording the tags of an execution", slog.String("execution_id", rec.ID), slog.Any("error", err))
	}
	c := &persistence.Commit{ExecutionID: rec.ID, Epoch: rec.Epoch, Update: &persistence.Update{Release: true}}
	if err := rt.write(c, false); err != nil {
		rt.log.Warn("giving back an execution this node lacks the tags for", slog.String("execution_id", rec.ID),
			slog.Any("error", err))
		return true
	}
	rt.log.Debug("execution needs tags this node lacks; given back", slog.String("execution_id", rec.ID),
		slog.Any("tags", fn.Tags))
	rt.publish(persistence.TopicQueue, rec.Queue)
	return true
}
