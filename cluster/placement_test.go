package cluster

import (
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/stretchr/testify/require"
)

func members(names ...string) []Member {
	ms := make([]Member, len(names))
	for i, n := range names {
		ms[i] = Member{Name: n, RemoteAddr: "127.0.0.1:" + fmt.Sprint(9000+i), State: StateAlive}
	}
	return ms
}

func owners(t *testing.T, n int, queue string, ms []Member) map[string]string {
	t.Helper()
	got := make(map[string]string, n)
	for i := range n {
		id := fmt.Sprintf("exec-%d", i)
		o, ok := Owner(id, queue, ms)
		require.True(t, ok)
		got[id] = o.Name
	}
	return got
}

func TestOwner(t *testing.T) {
	t.Parallel()

	t.Run("Stable", func(t *testing.T) {
		t.Parallel()
		ms := members("node-a", "node-b", "node-c")
		reversed := []Member{ms[2], ms[1], ms[0]}
		first := owners(t, 1000, "default", ms)
		require.Equal(t, first, owners(t, 1000, "default", ms))
		require.Equal(t, first, owners(t, 1000, "default", reversed), "the order of members does not matter")
	})

	t.Run("FixedHash", func(t *testing.T) {
		t.Parallel()
		// Other processes, and other versions of this one, must place the
		// same way: the weights are pinned (computed apart, in Python), and
		// the inlined FNV-1a is hash/fnv's.
		require.Equal(t, uint64(0xfe3ad249e9aad492), weight("node-a", "exec-1"))
		require.Equal(t, uint64(0xfaa015633e9fa88b), weight("node-b", "exec-1"))
		for _, id := range []string{"", "exec-1", "01J9ZQ3K8X7Y6W5V4T3S2R1Q0P"} {
			h := fnv.New64a()
			_, err := h.Write([]byte("node-a\x00" + id))
			require.NoError(t, err)
			require.Equal(t, fmix64(h.Sum64()), weight("node-a", id), id)
		}
	})

	t.Run("Balanced", func(t *testing.T) {
		t.Parallel()
		counts := map[string]int{}
		for _, name := range owners(t, 10000, "default", members("node-a", "node-b", "node-c")) {
			counts[name]++
		}
		require.Len(t, counts, 3)
		for name, n := range counts {
			require.GreaterOrEqual(t, n, 2500, "%s owns %d of 10000", name, n)
			require.LessOrEqual(t, n, 4200, "%s owns %d of 10000", name, n)
		}
	})

	t.Run("MinimalMovement", func(t *testing.T) {
		t.Parallel()
		all := members("node-a", "node-b", "node-c", "node-d")
		before := owners(t, 10000, "default", all)
		for removed := range all {
			rest := append(append([]Member(nil), all[:removed]...), all[removed+1:]...)
			after := owners(t, 10000, "default", rest)
			moved := 0
			for id, o := range before {
				if o == all[removed].Name {
					require.NotEqual(t, all[removed].Name, after[id])
					moved++
				} else {
					require.Equal(t, o, after[id], "%s moved off %s though %s was removed", id, o, all[removed].Name)
				}
			}
			require.Positive(t, moved)
		}
	})

	t.Run("QueueFiltering", func(t *testing.T) {
		t.Parallel()
		ms := members("node-a", "node-b", "node-c")
		ms[0].Queues = []string{"default"}
		ms[1].Queues = []string{"default", "gpu"}
		// node-c lists no queue: it serves every queue.
		for id, o := range owners(t, 1000, "gpu", ms) {
			require.Contains(t, []string{"node-b", "node-c"}, o, id)
		}
		for id, o := range owners(t, 1000, "reports", ms) {
			require.Equal(t, "node-c", o, id)
		}
		ms[2].Queues = []string{"default"}
		_, ok := Owner("exec-1", "reports", ms)
		require.False(t, ok, "no member serves reports")
	})

	t.Run("OnlyAliveMembersWithGoodMetadata", func(t *testing.T) {
		t.Parallel()
		ms := members("node-a", "node-b", "node-c", "node-d")
		ms[0].State = StateLeft
		ms[1].State = StateDead
		ms[2].MetaErr = fmt.Errorf("bad")
		for id, o := range owners(t, 200, "default", ms) {
			require.Equal(t, "node-d", o, id)
		}
		_, ok := Owner("exec-1", "default", nil)
		require.False(t, ok)
	})
}

func TestPID(t *testing.T) {
	t.Parallel()
	pid := PID(Member{Name: "node-a", RemoteAddr: "127.0.0.1:8090"})
	require.Equal(t, "127.0.0.1:8090", pid.Address)
	require.Equal(t, "executions", pid.Id)
}
