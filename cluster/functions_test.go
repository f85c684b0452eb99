package cluster

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFunctionFilter(t *testing.T) {
	t.Parallel()
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("fn_%d", i)
	}
	f := NewFunctionFilter(names)
	for _, n := range names {
		require.True(t, f.MayHave(n), "no false negatives: %s", n)
	}
	falsePositives := 0
	for i := range 1000 {
		if f.MayHave(fmt.Sprintf("other_%d", i)) {
			falsePositives++
		}
	}
	require.Less(t, falsePositives, 200, "about 1 in 10 with 50 functions")
	require.False(t, NewFunctionFilter(nil).MayHave("x"), "an empty filter holds nothing")
}

func TestOwnerOfPlacesOnlyWhereTheFunctionIs(t *testing.T) {
	t.Parallel()
	members := []Member{
		{Name: "a", State: StateAlive, Functions: NewFunctionFilter([]string{"alpha"})},
		{Name: "b", State: StateAlive, Functions: NewFunctionFilter([]string{"beta"})},
		{Name: "c", State: StateAlive}, // no filter: every function
	}
	for i := range 200 {
		id := fmt.Sprintf("exec-%d", i)
		m, ok := OwnerOf(id, "default", "beta", members)
		require.True(t, ok)
		require.Contains(t, []string{"b", "c"}, m.Name, "never a member without the function")
		plain, ok := Owner(id, "default", members)
		require.True(t, ok)
		if plain.Name != "a" {
			require.Equal(t, plain.Name, m.Name, "the same weights as Owner")
		}
	}
	_, ok := OwnerOf("x", "default", "gamma", members[:2])
	require.False(t, ok)
}
