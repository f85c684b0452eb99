package postgres

import "github.com/stent-go/stent/persistence"

// DefaultNotifier returns the backend's LISTEN/NOTIFY notifier as a
// persistence.Notifier. Package sdk uses it when an executor on this
// backend is given no other notifier (and closes it with the executor), so that processes sharing the
// database wake each other at once instead of waiting for a poll.
func (b *Backend) DefaultNotifier() persistence.Notifier { return b.Notifier() }
