package persistence

import "time"

// CommitObserver is told of every transaction a backend's writer commits
// (group commit: one transaction holds the writes of many callers). It is
// how the SDK measures the writer without persistence importing a metrics
// library.
//
// ObserveCommit is called on the writer's goroutine after the transaction
// ended, with the number of requests the batch held and how long the
// transaction took; failed is true when the batch failed as a whole (its
// requests got an error). It must return quickly and must not call the
// backend.
type CommitObserver interface {
	ObserveCommit(requests int, took time.Duration, failed bool)
}

// CommitObservable is implemented by the backends that report their
// commits to a CommitObserver: both built-in backends do. SetCommitObserver
// replaces the observer (nil removes it); it is safe to call at any time,
// concurrently with writes. DBSystem names the database as the
// OpenTelemetry attribute db.system.name does ("sqlite", "postgresql").
type CommitObservable interface {
	SetCommitObserver(CommitObserver)
	DBSystem() string
}
