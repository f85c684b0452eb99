// Package actors implements Stent's execution runtime on protoactor-go: the
// node's executions supervisor, one execution actor per running execution,
// the journal and its replay, durable timers and lease renewal.
//
// It is wired up by package sdk; its exported identifiers are not a stable API.
//
// # Shape
//
// Each node runs one actor system with a supervisor actor named "executions".
// An execution that runs on the node is a child actor of that supervisor,
// named by its execution ID. The actor's mailbox never blocks on user code:
// the function body runs on its own goroutine, and a runner goroutine beside
// it loads the journal, waits for the body and records the outcome. Messages
// to an execution (a child's outcome, a wake-up, a cancel) arrive in its
// mailbox and are handed to the body through the in-memory journal.
//
// Children are spawned by the supervisor rather than under their parent's
// actor, so that a child keeps running when its parent passivates in a long
// sleep; the execution tree itself lives in the database (parent ID and
// position), which is what recovery and cancellation walk.
//
// # Fencing
//
// Every write goes through persistence.Backend.Apply with the lease epoch the
// activation holds. A refused write (persistence.ErrStaleEpoch) means another
// activation owns the execution; this one then stops without writing more.
package actors
