package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/persistencetest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

// openTestDB opens and initialises a database at path, closed at cleanup.
func openTestDB(t testing.TB, path string, opts ...Option) *Backend {
	t.Helper()
	b, err := Open(path, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	require.NoError(t, b.Init(context.Background()))
	return b
}

func TestBackend(t *testing.T) {
	t.Parallel()
	persistencetest.Exercise(t, func(t *testing.T) persistence.Backend {
		return openTestDB(t, filepath.Join(t.TempDir(), "stent.db"))
	})
}

func TestBackendMemory(t *testing.T) {
	t.Parallel()
	persistencetest.Exercise(t, func(t *testing.T) persistence.Backend {
		return openTestDB(t, ":memory:")
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("MissingDirectory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "no", "such", "dir", "stent.db")
		_, err := Open(path)
		require.ErrorContains(t, err, path)
		require.ErrorContains(t, err, "no such file or directory")
	})

	t.Run("Directory", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		_, err := Open(dir)
		require.ErrorContains(t, err, dir)
		require.ErrorContains(t, err, "is a directory")
	})

	t.Run("NotADatabase", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "garbage.db")
		require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("this is not sqlite ", 512)), 0o600))
		_, err := Open(path)
		require.ErrorContains(t, err, path)
		require.ErrorContains(t, err, "not a SQLite database")
	})

	t.Run("BadOptions", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "stent.db")
		_, err := Open(path, WithSynchronous("SOMETIMES"))
		require.ErrorContains(t, err, "SOMETIMES")
		_, err = Open(path, WithMaxBatch(0))
		require.ErrorContains(t, err, "max batch")
		_, err = Open(path, WithBusyTimeout(-time.Second))
		require.ErrorContains(t, err, "busy timeout")
		_, err = Open("")
		require.ErrorContains(t, err, "empty path")
	})

	t.Run("FileMode", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "stent.db")
		b := openTestDB(t, path)
		_, _, err := b.CreateExecution(t.Context(), &persistence.Execution{ID: "a", Function: "f"})
		require.NoError(t, err)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), p)
		}
	})

	t.Run("ReservedCharactersInPath", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "a?b#c%d.db")
		b := openTestDB(t, path)
		_, _, err := b.CreateExecution(t.Context(), &persistence.Execution{ID: "a", Function: "f"})
		require.NoError(t, err)
		_, err = os.Stat(path)
		require.NoError(t, err, "the file has exactly the name given")
	})
}

// pragma reads a pragma on the writer's connection.
func pragma(t *testing.T, b *Backend, name string) string {
	t.Helper()
	var v string
	require.NoError(t, b.w.conn.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v))
	return v
}

func TestSynchronous(t *testing.T) {
	t.Parallel()
	for mode, want := range map[string]string{"": "1", "NORMAL": "1", "full": "2", "OFF": "0"} {
		t.Run("Mode"+mode, func(t *testing.T) {
			t.Parallel()
			var opts []Option
			if mode != "" {
				opts = append(opts, WithSynchronous(mode))
			}
			b := openTestDB(t, filepath.Join(t.TempDir(), "stent.db"), opts...)
			require.Equal(t, want, pragma(t, b, "synchronous"))
			require.Equal(t, "wal", pragma(t, b, "journal_mode"))
		})
	}
}

func TestBusyTimeout(t *testing.T) {
	t.Parallel()
	b := openTestDB(t, filepath.Join(t.TempDir(), "stent.db"), WithBusyTimeout(1234*time.Millisecond))
	require.Equal(t, "1234", pragma(t, b, "busy_timeout"))
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	b := openTestDB(t, path)
	_, err := b.w.conn.ExecContext(t.Context(), "INSERT INTO stent_migration (version, applied_at) VALUES (999, 0)")
	require.NoError(t, err)
	require.NoError(t, b.Close())

	b2, err := Open(path)
	require.NoError(t, err)
	defer func() { require.NoError(t, b2.Close()) }()
	err = b2.Init(t.Context())
	require.ErrorIs(t, err, persistence.ErrSchemaTooNew)
	require.ErrorContains(t, err, "999")
	require.ErrorContains(t, err, fmt.Sprintf("version %d", len(mustMigrations(t))))
	_, err = b2.GetExecution(t.Context(), "a")
	require.ErrorIs(t, err, errNotInitialised, "a failed Init leaves the backend unusable")
}

func TestInitConcurrentProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	const n = 4
	backends := make([]*Backend, n)
	for i := range backends {
		b, err := Open(path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		backends[i] = b
	}
	errs := make(chan error, n)
	for _, b := range backends {
		go func() { errs <- b.Init(context.Background()) }()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	var versions int
	require.NoError(t, backends[0].w.conn.QueryRowContext(t.Context(), "SELECT count(*) FROM stent_migration").Scan(&versions))
	require.Equal(t, len(mustMigrations(t)), versions)

	// One backend's writes are visible to the others' reads.
	_, _, err := backends[1].CreateExecution(t.Context(), &persistence.Execution{ID: "shared", Function: "f"})
	require.NoError(t, err)
	got, err := backends[2].GetExecution(t.Context(), "shared")
	require.NoError(t, err)
	require.Equal(t, "shared", got.ID)
}

// mustMigrations returns the embedded migrations.
func mustMigrations(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations()
	require.NoError(t, err)
	return ms
}

func TestMigrateFromVersion1(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "stent.db")
	// A database as version 1 of the schema left it, with one execution.
	uri, err := fileURI(path)
	require.NoError(t, err)
	db, err := sql.Open("sqlite", uri)
	require.NoError(t, err)
	v1 := mustMigrations(t)[0]
	require.Equal(t, 1, v1.version)
	for _, q := range []string{queries["MigrationCreateTable"], v1.sql,
		"INSERT INTO stent_migration (version, applied_at) VALUES (1, 0)",
		"INSERT INTO stent_execution (id, function, status, root_id, created_at, updated_at) VALUES ('old', 'f', 'waiting', 'old', 0, 0)",
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	b := openTestDB(t, path)
	var version int
	require.NoError(t, b.w.conn.QueryRowContext(ctx, "SELECT max(version) FROM stent_migration").Scan(&version))
	migrations, err := loadMigrations()
	require.NoError(t, err)
	require.Equal(t, len(migrations), version, "migrated to the newest version")
	got, err := b.GetExecution(ctx, "old")
	require.NoError(t, err)
	require.False(t, got.CancelRequested, "existing rows get the column's default")
	res, err := b.SendSignal(ctx, &persistence.Signal{ID: "s", ExecutionID: "old", Name: "go"}, 0)
	require.NoError(t, err)
	require.False(t, res.RunAt.IsZero(), "the waiting execution is due")
	ok, err := b.AcquirePermit(ctx, "k", "old", "n", 1, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
}

func TestBeforeInit(t *testing.T) {
	t.Parallel()
	b, err := Open(filepath.Join(t.TempDir(), "stent.db"))
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	_, _, err = b.CreateExecution(t.Context(), &persistence.Execution{ID: "a", Function: "f"})
	require.ErrorIs(t, err, errNotInitialised)
	_, err = b.GetExecution(t.Context(), "a")
	require.ErrorIs(t, err, errNotInitialised)
}

// A child created without a root takes its parent's (or its own, when the
// parent is missing), and CreateExecution returns it as stored.
func TestCreateChildFindsItsRoot(t *testing.T) {
	t.Parallel()
	b := openTestDB(t, filepath.Join(t.TempDir(), "stent.db"))
	ctx := t.Context()
	for _, c := range []struct{ id, parent, root string }{
		{"top", "", "top"},
		{"mid", "top", "top"},
		{"leaf", "mid", "top"},
		{"orphan", "no-such-parent", "orphan"},
	} {
		got, created, err := b.CreateExecution(ctx, &persistence.Execution{ID: c.id, Function: "f", ParentID: c.parent})
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, c.root, got.RootID, c.id)
		stored, err := b.GetExecution(ctx, c.id)
		require.NoError(t, err)
		require.Equal(t, stored, got, c.id)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	a := openTestDB(t, ":memory:")
	b := openTestDB(t, ":memory:")
	_, _, err := a.CreateExecution(t.Context(), &persistence.Execution{ID: "x", Function: "f"})
	require.NoError(t, err)
	_, err = a.GetExecution(t.Context(), "x")
	require.NoError(t, err)
	_, err = b.GetExecution(t.Context(), "x")
	require.ErrorIs(t, err, persistence.ErrNotFound, "each :memory: backend has its own database")
}

func TestCorruptRow(t *testing.T) {
	t.Parallel()
	b := openTestDB(t, filepath.Join(t.TempDir(), "stent.db"))
	ctx := t.Context()
	for _, id := range []string{"bad-error", "bad-status", "good"} {
		_, _, err := b.CreateExecution(ctx, &persistence.Execution{ID: id, Function: "f"})
		require.NoError(t, err)
	}
	_, err := b.w.conn.ExecContext(ctx, `UPDATE stent_execution SET error = '{"message": tru' WHERE id = 'bad-error'`)
	require.NoError(t, err)
	_, err = b.w.conn.ExecContext(ctx, `UPDATE stent_execution SET status = 'exploded' WHERE id = 'bad-status'`)
	require.NoError(t, err)

	_, err = b.GetExecution(ctx, "bad-error")
	require.ErrorContains(t, err, "decoding error of execution bad-error")
	_, err = b.GetExecution(ctx, "bad-status")
	require.ErrorContains(t, err, "bad-status")
	require.ErrorContains(t, err, `invalid status "exploded"`)
	// A listing shows every row, the bad ones saying what is wrong.
	listed, err := b.ListExecutions(ctx, persistence.ListFilter{})
	require.NoError(t, err)
	require.Len(t, listed, 3)
	for _, e := range listed {
		switch e.ID {
		case "good":
			require.Nil(t, e.Error)
		case "bad-status":
			require.Contains(t, e.Error.Message, `execution bad-status: persistence: the stored error does not decode: invalid status "exploded"`)
		default:
			require.Contains(t, e.Error.Message, "decoding error of execution bad-error")
		}
	}
	got, err := b.GetExecution(ctx, "good")
	require.NoError(t, err, "the other rows are unaffected")
	require.Equal(t, "good", got.ID)

	// A claim runs a row whose only fault is its stored error (the last
	// attempt's), saying so in its Error, rather than failing the claim of
	// every row with it; the row with no valid status is not claimed.
	claimed, err := b.ClaimDue(ctx, "n", nil, nil, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	byID := map[string]*persistence.Execution{}
	for _, e := range claimed {
		byID[e.ID] = e
	}
	require.NotNil(t, byID["good"])
	require.Nil(t, byID["good"].Error)
	require.NotNil(t, byID["bad-error"])
	require.Contains(t, byID["bad-error"].Error.Message, "decoding error of execution bad-error: persistence: the stored error does not decode")
	require.NoError(t, b.ReleaseLeases(ctx, "n"))
	acquired, err := b.AcquireLease(ctx, "bad-error", "m", time.Minute)
	require.NoError(t, err)
	require.Equal(t, "m", acquired.Owner)
}

func TestCloseFinishesQueuedWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	b, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, b.Init(t.Context()))
	const n = 50
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := b.CreateExecution(context.Background(), &persistence.Execution{ID: fmt.Sprintf("e%02d", i), Function: "f"})
			errs <- err
		}()
	}
	require.NoError(t, b.Close())
	written := 0
	for range n {
		err := <-errs
		if err == nil {
			written++
			continue
		}
		require.ErrorIs(t, err, persistence.ErrClosed)
	}
	b2 := openTestDB(t, path)
	list, err := b2.ListExecutions(t.Context(), persistence.ListFilter{})
	require.NoError(t, err)
	require.Len(t, list, written, "every write acknowledged before Close is in the file, and no other")
}

// TestInitWaitsForALockedDatabase: a node that starts while another process
// holds the write lock past the busy timeout (stopped by SIGSTOP while it
// writes) waits for the lock instead of failing.
func TestInitWaitsForALockedDatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	first := openTestDB(t, path)
	require.NoError(t, first.Init(t.Context()))

	holder, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer holder.Close()
	conn, err := holder.Conn(t.Context())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(t.Context(), "BEGIN IMMEDIATE")
	require.NoError(t, err)

	b, err := Open(path, WithBusyTimeout(50*time.Millisecond))
	require.NoError(t, err)
	defer b.Close()
	done := make(chan error, 1)
	go func() { done <- b.Init(t.Context()) }()
	select {
	case err := <-done:
		t.Fatalf("Init returned while the lock was held: %v", err)
	case <-time.After(500 * time.Millisecond): // ten busy timeouts
	}
	_, err = conn.ExecContext(t.Context(), "ROLLBACK")
	require.NoError(t, err)
	require.NoError(t, <-done)
}
