// Package sdk is Stent's public API: durable functions for Go.
//
// A durable function is an ordinary Go function registered with Durable. Its
// progress is recorded in a backend (SQLite or PostgreSQL), so that a crash,
// a redeploy or a lost node only delays it.
//
// # Defining and calling
//
// Durable registers a function under a unique name and returns a *Func.
// Inside another durable function, Func.Call is a durable child call: it is
// recorded in the caller's journal and never runs again once its outcome is
// recorded. Outside any execution, Call starts a root execution on the
// executor bound to the context (WithExecutor) or on the process default
// (Use, Bootstrap), and waits for it. With no executor at all it calls the
// function directly, which suits unit tests, and logs a warning once per
// function; RequireExecutor(true) makes that an ErrNoExecutor instead.
//
// # Caching, tags and progress
//
// WithCache reuses a completed result of the same function, version and
// input for a time (ExecutionInfo.CachedFrom names its source). WithTags
// keeps a function's executions on workers that have every one of its tags
// (WithWorkerTags). Counter and SetState record progress, durably and
// replay-safe, that Executor.Execution returns in ExecutionInfo.Counters
// and ExecutionInfo.State.
//
// # Determinism
//
// A body is replayed from its journal after a crash or a passivation. Each
// durable operation (a child call, Sleep, Now) takes the next journal
// position; a replay that issues a different operation at a position fails
// with ErrNonDeterministic. Issue durable operations from the body's own
// goroutine; for concurrency use Start and Handle.Result, or Map.
//
// # Executors
//
// An Executor runs executions on one backend. Bootstrap creates the schema,
// makes the executor the process default and, with Serve(), starts its
// worker, which also recovers executions left by a crashed process once
// their leases run out.
//
// # Errors
//
// A function that failed for good returns an *ExecutionError; the sentinels
// ErrNotFound, ErrTimeout, ErrCanceled and ErrNonDeterministic work with
// errors.Is. NonRetryable marks an error that must not be retried.
package sdk
