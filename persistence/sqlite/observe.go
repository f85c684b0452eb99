package sqlite

import "github.com/stent-go/stent/persistence"

var _ persistence.CommitObservable = (*Backend)(nil)

// SetCommitObserver makes o the observer of every transaction of the
// writer (nil removes it). Safe to call at any time.
func (b *Backend) SetCommitObserver(o persistence.CommitObserver) {
	if o == nil {
		b.w.observer.Store(nil)
		return
	}
	b.w.observer.Store(&o)
}

// DBSystem returns "sqlite", the OpenTelemetry db.system.name of the backend.
func (b *Backend) DBSystem() string { return "sqlite" }
