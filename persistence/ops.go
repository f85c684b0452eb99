package persistence

import (
	"context"
	"time"
)

// Operations is the part of Backend behind operating a deployment: counts,
// retention, the dead letters of an execution, and the registry of the
// nodes that serve. Every Backend implements it.
type Operations interface {
	// Stats counts the executions by status, function and queue, in one
	// consistent read. Times are the backend's clock.
	Stats(ctx context.Context) (*Stats, error)
	// QueueDepth returns how many executions of queue wait to run:
	// pending, or waiting with a RunAt that is reached, and not leased.
	QueueDepth(ctx context.Context, queue string) (int, error)
	// Cleanup deletes up to limit finished trees of executions: a root
	// execution (no parent) whose status is terminal and whose UpdatedAt is
	// before before, when every execution below it is terminal too. With
	// each execution go its journal, snapshot, signals and dead letters.
	// Each call is one short transaction; it returns how many executions it
	// deleted (0 when nothing is left to delete). A limit below 1 means 100.
	Cleanup(ctx context.Context, before time.Time, limit int) (int, error)
	// DeadLettersOf returns the dead letters of an execution, oldest first
	// (none is not an error).
	DeadLettersOf(ctx context.Context, executionID string) ([]*DeadLetter, error)
	// JournalEntries returns every journal entry of an execution, snapshot
	// or not, in position order, with StartedAt, EndedAt, Input and
	// Attempts (none is not an error).
	JournalEntries(ctx context.Context, executionID string) ([]*JournalEntry, error)
	// CacheHitsByFunction counts, per function, the executions that took
	// their result from the cache (CacheMarkHit with a source). Functions
	// without a hit are absent; an empty map is not an error.
	CacheHitsByFunction(ctx context.Context) (map[string]int, error)

	// UpsertNode records n (ID required) as serving, with the backend's
	// clock as its heartbeat, alive for ttl from now; StartedAt is kept
	// from the first call for the same ID and Started. Nodes whose
	// heartbeat is older than an hour are dropped.
	UpsertNode(ctx context.Context, n *Node, ttl time.Duration) error
	// DeleteNode removes a node from the registry (a clean stop); an
	// unknown ID is not an error.
	DeleteNode(ctx context.Context, id string) error
	// ListNodes returns the registered nodes sorted by ID, with Alive and
	// Owned (the unexpired leases each holds) filled in.
	ListNodes(ctx context.Context) ([]*Node, error)
}

// Node is one row of the node registry: a serving executor.
type Node struct {
	ID string
	// Addresses are the node's endpoints by kind ("gossip", "remote",
	// "admin"), those it knows.
	Addresses map[string]string
	// Functions are the durable functions the node runs; Queues the queues
	// it serves (empty: every queue).
	Functions []string
	Queues    []string
	// Tags are the node's worker tags: it runs the executions whose every
	// tag is among them (and untagged ones). Empty: no tags.
	Tags      []string
	Version   string
	StartedAt time.Time
	// HeartbeatAt is the backend's clock at the last UpsertNode;
	// ExpiresAt is HeartbeatAt plus its ttl.
	HeartbeatAt time.Time
	ExpiresAt   time.Time
	// Alive and Owned are filled by ListNodes: the heartbeat has not
	// expired; the number of unexpired leases the node holds.
	Alive bool
	Owned int
}

// Serves reports whether the node runs executions of function on queue.
func (n *Node) Serves(function, queue string) bool {
	fnOK := false
	for _, f := range n.Functions {
		if f == function {
			fnOK = true
			break
		}
	}
	if !fnOK {
		return false
	}
	if len(n.Queues) == 0 {
		return true
	}
	for _, q := range n.Queues {
		if q == queue {
			return true
		}
	}
	return false
}

// Stats are execution counts.
type Stats struct {
	// Groups counts the executions by function, queue and status.
	Groups []StatsGroup
	// At is the backend's clock when the counts were read.
	At time.Time
}

// StatsGroup is the count of executions of one function on one queue in
// one status. OldestCreatedAt is the earliest CreatedAt among them, for
// the statuses that are not terminal (zero for the others, whose count is
// read from an index alone); for
// pending executions, Due counts those that may run now (no RunAt, or RunAt
// reached) and OldestDue is the earliest CreatedAt among those.
type StatsGroup struct {
	Function        string
	Queue           string
	Status          Status
	Count           int
	OldestCreatedAt time.Time
	Due             int
	OldestDue       time.Time
}
