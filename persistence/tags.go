package persistence

import (
	"context"
	"time"
)

// Tagging is the part of Backend behind execution tags: an execution with
// tags runs only on a node that has every one of them; one without runs on
// any node. Every Backend implements it. ClaimDue and NextRunAt are the
// tagged methods for a node without tags.
type Tagging interface {
	// SetExecutionTags records the tags execution id needs. Call it before
	// the execution's row is inserted, so that no claim sees the row
	// without them; calling it again with the same tags is harmless (a
	// replayed start).
	SetExecutionTags(ctx context.Context, id string, tags []string) error
	// ExecutionTags returns the tags of execution id, sorted; none for an
	// untagged or unknown execution.
	ExecutionTags(ctx context.Context, id string) ([]string, error)
	// ClaimDueTagged is ClaimDue for a node that has tags: an execution
	// with a tag not among them is left to other nodes.
	ClaimDueTagged(ctx context.Context, owner string, queues, functions, tags []string, ttl time.Duration, limit int) ([]*Execution, error)
	// NextRunAtTagged is NextRunAt for a node that has tags: executions
	// with a tag not among them are not counted.
	NextRunAtTagged(ctx context.Context, queues, tags []string) (time.Time, error)
}
