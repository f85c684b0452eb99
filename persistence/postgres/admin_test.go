package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
)

// A fold of many deltas vacuums their table, which VACUUM allows only
// outside a transaction: the statement must run as the pool runs it.
func TestStatsFoldVacuums(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t)
	ctx := t.Context()
	_, err := b.Pool().Exec(ctx, `INSERT INTO `+b.schema+`.stent_execution (id, function, queue, status, root_id)
SELECT 'x' || i, 'f', 'default', 'completed', 'x' || i FROM generate_series(1, $1::int) i`, vacuumAfterFold)
	require.NoError(t, err)
	st, err := b.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, []persistence.StatsGroup{{Function: "f", Queue: "default", Status: persistence.StatusCompleted,
		Count: vacuumAfterFold}}, st.Groups)
	var left int
	require.NoError(t, b.Pool().QueryRow(ctx, `SELECT count(*) FROM `+b.schema+`.stent_stats_delta`).Scan(&left))
	require.Zero(t, left, "folded")
}
