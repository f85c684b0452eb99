// Package actors implements Stent's execution runtime on protoactor-go: the
// node's executions supervisor, one execution actor per running execution,
// the journal and its replay, durable timers and lease renewal.
//
// It is wired up by package sdk; its exported identifiers are not a stable API.
//
// # Shape
//
// Each node runs one actor system. Every activation of an execution is an
// actor (execution) registered as "executions/<execution ID>" that owns its
// state: journal in memory, lease epoch, timers, children, permit. The
// function body runs on its own goroutine and asks the actor for each
// durable operation (request and answer); the actor writes to the database
// off its mailbox and handles the result as a message. Child outcomes,
// wake-ups, signals, cancels and lost leases are messages to the
// execution's actor, local or remote.
//
// The node's "executions" supervisor is the parent of executions that are
// roots on this node; a child that runs in memory on its parent's node is a
// child actor of its parent's, so stopping a parent stops its subtree.
// Supervision (restartStrategy) restarts an actor that panics from its
// snapshot and journal, with a backoff. docs/development.md has the table
// of the actor's messages.
//
// # Fencing
//
// Every write goes through persistence.Backend.Apply with the lease epoch the
// activation holds. A refused write (persistence.ErrStaleEpoch) means another
// activation owns the execution; this one then stops without writing more.
package actors
