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

// tagExecutions records the tags of fn's executions ids, before their rows
// are written, when fn has tags.
func (rt *Runtime) tagExecutions(ctx context.Context, fn *Function, ids ...string) error {
	if len(fn.Tags) == 0 {
		return nil
	}
	for _, id := range ids {
		if err := rt.backend.SetExecutionTags(ctx, id, fn.Tags); err != nil {
			return err
		}
	}
	return nil
}

// TagExecution records the tags execution id of fn needs, before its row
// is written (a root start).
func (rt *Runtime) TagExecution(ctx context.Context, fn *Function, id string) error {
	return rt.tagExecutions(ctx, fn, id)
}

// refuseUncovered gives back the lease of an execution whose function
// needs tags this node lacks (it was placed or activated here by a node
// that does not know them), so that a node that has them claims it, and
// reports whether it did.
func (e *execution) refuseUncovered(ctx context.Context, fn *Function) bool {
	if e.rt.Covers(fn.Tags) || e.isVirtual() {
		return false
	}
	c := &persistence.Commit{ExecutionID: e.id, Epoch: e.currentEpoch(), Update: &persistence.Update{Release: true}}
	if err := e.apply(ctx, c); err != nil {
		e.rt.log.Warn("giving back an execution this node lacks the tags for", slog.String("execution_id", e.id),
			slog.Any("error", err))
		return true
	}
	e.rt.log.Debug("execution needs tags this node lacks; given back", slog.String("execution_id", e.id),
		slog.Any("tags", fn.Tags))
	e.rt.publish(persistence.TopicQueue, e.rec.Queue)
	return true
}
