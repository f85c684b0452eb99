// Package ops holds the operator's queries and their JSON documents, shared
// by the stent CLI (internal/stentcli) and the web console
// (internal/console): list, show, the child tree, dead letters (list,
// resolve, replay, discard), members and stats. The CLI's --json output and
// the console's JSON API are these documents, so `stent --node` reads the
// API into the same types and prints them as it prints a database's.
//
// Its exported identifiers are not a stable API.
package ops
