package cluster

import (
	"github.com/asynkron/protoactor-go/actor"
)

// ExecutionsActor is the name of the actor on every node that receives the
// messages for the executions the node owns.
const ExecutionsActor = "executions"

// Owner returns the member that owns execution execID of queue among
// members: of the alive members that serve queue and have good metadata, the
// one with the highest weight(member name, execID) (rendezvous, or highest
// random weight, hashing). It returns false if no member qualifies.
//
// The weight is FNV-1a 64 of the name, a zero byte and the ID, mixed by
// murmur3's 64-bit finaliser, so every process computes the same owner from
// the same view, and removing a member moves only the executions it owned.
// members need not be sorted; ties (equal weights) go to the smaller name.
func Owner(execID, queue string, members []Member) (Member, bool) {
	return OwnerOf(execID, queue, "", members)
}

// OwnerOf is Owner among the members that may run function as well
// (Member.MayRun): the same weights, so an execution goes to the same
// member as with Owner when that member may run it.
func OwnerOf(execID, queue, function string, members []Member) (Member, bool) {
	var (
		best   Member
		bestW  uint64
		chosen bool
	)
	for _, m := range members {
		if m.State != StateAlive || m.MetaErr != nil || !m.Serves(queue) || !m.MayRun(function) {
			continue
		}
		w := weight(m.Name, execID)
		if !chosen || w > bestW || (w == bestW && m.Name < best.Name) {
			best, bestW, chosen = m, w, true
		}
	}
	return best, chosen
}

// weight is a member's score for an execution. FNV-1a alone mixes its last
// bytes poorly, which skews the maximum over members whose names differ
// only at the end, so its sum goes through fmix64.
func weight(member, execID string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(member); i++ {
		h = (h ^ uint64(member[i])) * prime64
	}
	h *= prime64 // the zero byte between name and ID: h ^ 0 == h
	for i := 0; i < len(execID); i++ {
		h = (h ^ uint64(execID[i])) * prime64
	}
	return fmix64(h)
}

// fmix64 is murmur3's 64-bit finaliser.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// PID returns the remote PID of member m's executions actor, to send it
// messages through protoactor's remote. It does not check that m is alive.
func PID(m Member) *actor.PID {
	return actor.NewPID(m.RemoteAddr, ExecutionsActor)
}
