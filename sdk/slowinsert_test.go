package sdk_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// A start whose insert commits later than one lease (the table locked by
// another session meanwhile) must not let the claim loop take the new row
// as expired while its creator runs it: the lease counts from the
// database's clock at the insert, not from the caller's before it.

var (
	slowMu    sync.Mutex
	slowRuns  = map[string]int{}
	slowStep1 = sdk.Durable("test_slow_insert_step", func(ctx context.Context, key string) (string, error) {
		slowMu.Lock()
		slowRuns[key]++
		slowMu.Unlock()
		return key, nil
	})
	slowFlow = sdk.Durable("test_slow_insert_flow", func(ctx context.Context, x int) (int, error) {
		for step := 1; step <= 2; step++ {
			if _, err := slowStep1.Call(ctx, fmt.Sprintf("%d/%d", x, step)); err != nil {
				return 0, err
			}
		}
		return x, nil
	})
)

// databaseOf returns what testDatabase's env names: a SQLite path, or a
// PostgreSQL schema ("" on SQLite).
func databaseOf(env []string) (db, schema string) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "STENT_TEST_DB="); ok {
			db = v
		}
		if v, ok := strings.CutPrefix(kv, envSchema+"="); ok {
			schema = v
		}
	}
	return db, schema
}

// rawExec runs a statement on the test database behind the backend's back
// (to corrupt rows); $schema becomes the PostgreSQL schema, or nothing.
func rawExec(t *testing.T, env []string, stmt string) {
	t.Helper()
	ctx := context.Background()
	db, schema := databaseOf(env)
	if schema == "" {
		h, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(10000)")
		require.NoError(t, err)
		defer h.Close()
		_, err = h.ExecContext(ctx, strings.ReplaceAll(stmt, "$schema.", ""))
		require.NoError(t, err)
		return
	}
	conn, err := pgx.Connect(ctx, os.Getenv(envPostgres))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, strings.ReplaceAll(stmt, "$schema", pgx.Identifier{schema}.Sanitize()))
	require.NoError(t, err)
}

// holdWriteLock holds the database's write lock (SQLite: a write
// transaction of another connection; PostgreSQL: LOCK TABLE ... IN EXCLUSIVE
// MODE) from when it returns until release is called.
func holdWriteLock(t *testing.T, env []string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, schema := databaseOf(env)
	if schema == "" {
		h, err := sql.Open("sqlite", db+"?_pragma=busy_timeout(10000)")
		require.NoError(t, err)
		conn, err := h.Conn(ctx)
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		require.NoError(t, err)
		return func() {
			_, err := conn.ExecContext(ctx, "ROLLBACK")
			require.NoError(t, err)
			require.NoError(t, conn.Close())
			require.NoError(t, h.Close())
		}
	}
	conn, err := pgx.Connect(ctx, os.Getenv(envPostgres))
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "stent_execution"}.Sanitize()+" IN EXCLUSIVE MODE")
	require.NoError(t, err)
	return func() {
		require.NoError(t, tx.Commit(ctx))
		require.NoError(t, conn.Close(ctx))
	}
}

func TestSlowInsertDoesNotRunAStepTwice(t *testing.T) {
	t.Parallel()
	// Two seconds: a lease of one was once lost to a renewal held up past
	// it on a loaded CI machine, and the step then rightly ran again.
	const lease = 2 * time.Second
	env, open := testDatabase(t)
	ctx := context.Background()
	ex, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithLeaseDuration(lease),
		sdk.WithPollInterval(20*time.Millisecond), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, ex.Close()) }()
	wctx := sdk.WithExecutor(ctx, ex)
	// A second node on the same database claims whatever looks expired.
	other, err := sdk.Bootstrap(ctx, open(t), sdk.Serve(), sdk.WithLeaseDuration(lease),
		sdk.WithPollInterval(20*time.Millisecond), sdk.WithLogger(stenttest.Logger(t)))
	require.NoError(t, err)
	defer func() { require.NoError(t, other.Close()) }()

	const n = 5
	base := int(time.Now().UnixNano() % 1_000_000 * 100)
	release := holdWriteLock(t, env)
	handles := make([]*sdk.Handle[int], n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { handles[i], errs[i] = slowFlow.Start(wctx, base+i) })
	}
	// The inserts wait on the lock for one and a half leases (within
	// SQLite's 5 s busy timeout), then commit.
	time.Sleep(lease * 3 / 2)
	release()
	wg.Wait()
	rctx, cancel := context.WithTimeout(wctx, 30*time.Second)
	defer cancel()
	for i := range n {
		require.NoError(t, errs[i])
		got, err := handles[i].Result(rctx)
		require.NoError(t, err)
		require.Equal(t, base+i, got)
	}
	slowMu.Lock()
	defer slowMu.Unlock()
	for i := range n {
		for step := 1; step <= 2; step++ {
			key := fmt.Sprintf("%d/%d", base+i, step)
			require.Equal(t, 1, slowRuns[key], "step %s runs once", key)
		}
	}
}
