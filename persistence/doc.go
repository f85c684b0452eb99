// Package persistence defines the storage contract of Stent: the Backend
// interface, the records it stores, and the errors every backend returns.
//
// # Backends
//
// Two backends implement Backend: persistence/sqlite (modernc.org/sqlite,
// no cgo) for one host, and persistence/postgres (pgx/v5) for a cluster.
// persistence/persistencetest holds the conformance suite both must pass.
//
// # Fencing
//
// Every write made on behalf of an execution is a Commit that carries the
// lease epoch its writer holds. A backend applies a Commit only if that epoch
// is still the execution's current one, and returns ErrStaleEpoch otherwise,
// having written nothing of it. This is what keeps a paused or cut-off node
// from completing an execution that another node has taken over.
//
// # Writes outside the fence
//
// The parts of Backend behind caching, progress and tags (Progress,
// Tagging) write outside any Commit: a cache entry, a counter addition
// keyed so that it applies once, a state value, an execution's tags
// written before its row. Cache entries and tags are idempotent, and a
// counter addition is keyed so that a replay that repeats it adds nothing;
// state is last-write-wins, and a replay sets the same values again in the
// same order.
//
// # Import rules
//
// persistence imports nothing from sdk, actors or cluster.
package persistence
