// Package cluster gives Stent nodes membership and placement.
//
// It is wired up by package sdk; its exported identifiers are not a stable
// API.
//
// # Membership
//
// [Join] starts a node's gossip over hashicorp/memberlist: it binds the
// gossip port, joins the cluster through [Config.Seeds] and publishes the
// node's metadata: the address of its protoactor remote endpoint
// ([Config.RemoteAddr]) and the queues it serves ([Config.Queues]). Gossip is
// encrypted with [Config.SecretKey] (AES-GCM; a node without the key cannot
// join), and [Config.Label] keeps two clusters on one network apart.
//
// memberlist calls its event delegates while it holds its node lock, so they
// only copy the node they are told about and signal a goroutine, which
// rebuilds the view and publishes it: [Membership.Members] returns it, and
// [Membership.Changes] wakes those who wait for the next change. The view is
// not read from memberlist's Members: the nodes it returns are updated in
// place by memberlist's goroutines, so reading them races
// (hashicorp/memberlist#306), and calling it from a delegate deadlocks.
//
// # Placement
//
// [Owner] places an execution by rendezvous (highest random weight) hashing
// of its ID over the alive members that serve its queue; [PID] gives the
// remote PID of the owner's "executions" actor. Placement is only a hint
// about where an execution runs: the lease and its epoch in the database
// decide who runs it, so two members that briefly disagree about the view
// cost time, never correctness.
//
// protoactor's own cluster package is not used (see DESIGN.md): its lookups
// wait seconds for a dead owner and it can activate one identity twice.
//
// # Imports
//
// cluster imports memberlist and protoactor's actor package; it imports
// nothing from sdk, actors or persistence.
package cluster
