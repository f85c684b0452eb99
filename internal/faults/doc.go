// Package faults holds Stent's fault suite, in its tests: workflows run
// while the database restarts, goes away for a while, loses its connections
// or (SQLite) fills its disk, and the ledger invariants are checked after
// each fault: no acknowledged workflow lost, no step of a completed one run
// twice except a step in flight when the fault began. The PostgreSQL faults
// run on a throwaway server of the test's own (initdb into a temporary
// directory, on a free port), never on the server other tests share.
//
// `go test ./internal/faults` runs the short suite (a 5 s outage, 40
// workflows); STENT_FAULTS_LONG=1 runs the long one (a 40 s outage, 200
// workflows).
package faults
