package postgres

import "github.com/stent-go/stent/persistence"

var _ persistence.CommitObservable = (*Backend)(nil)

// SetCommitObserver makes o the observer of every batch the group commit
// writes (nil removes it). Safe to call at any time.
func (b *Backend) SetCommitObserver(o persistence.CommitObserver) {
	if o == nil {
		b.observer.Store(nil)
		return
	}
	b.observer.Store(&o)
}

// DBSystem returns "postgresql", the OpenTelemetry db.system.name of the backend.
func (b *Backend) DBSystem() string { return "postgresql" }
