package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/persistencetest"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func TestBackend(t *testing.T) {
	t.Parallel()
	persistencetest.Exercise(t, func(t *testing.T) persistence.Backend {
		b, _ := openTestDB(t)
		return b
	})
}

// withParam adds a connection parameter to a URL or key=value DSN.
func withParam(t testing.TB, dsn, key, value string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + key + "=" + value
	}
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// testBundle is what a test needs beside its backend.
type testBundle struct {
	dsn     string // the DSN the backend opened, with its application_name
	schema  string
	appName string
}

// openTestDB opens a backend on a fresh schema, dropped when the test ends,
// with an application_name of its own (the schema's name).
func openTestDB(t testing.TB, opts ...Option) (*Backend, *testBundle) {
	t.Helper()
	base := testutil.PostgresDSN(t)
	schema := randomName("stent_test_")
	dsn := withParam(t, base, "application_name", schema)
	ctx := context.Background()
	b, err := Open(ctx, dsn, append([]Option{WithSchema(schema)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, b.Close())
		dropSchema(t, base, schema)
	})
	require.NoError(t, b.Init(ctx))
	return b, &testBundle{dsn: dsn, schema: schema, appName: schema}
}

func dropSchema(t testing.TB, dsn, schema string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	require.NoError(t, err)
}

// execSQL runs a statement on the test server outside the backend, with the
// backend's schema first on the search path.
func execSQL(t testing.TB, b *Backend, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	_, err := b.Pool().Exec(ctx, strings.ReplaceAll(sql, "$schema", pgx.Identifier{b.Schema()}.Sanitize()), args...)
	require.NoError(t, err)
}

// terminate ends every server connection with application_name appName and
// returns how many it ended.
func terminate(t testing.TB, dsn, appName string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, withParam(t, dsn, "application_name", "stent_test_terminator"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1`, appName).Scan(&n))
	return n
}

func newExecution(id string) *persistence.Execution {
	return &persistence.Execution{ID: id, Function: "fn", Queue: "default", Input: []byte(`{"n":1}`)}
}

// createLeased creates an execution and leases it to owner.
func createLeased(t testing.TB, b *Backend, id, owner string) *persistence.Execution {
	t.Helper()
	ctx := context.Background()
	_, created, err := b.CreateExecution(ctx, newExecution(id))
	require.NoError(t, err)
	require.True(t, created)
	e, err := b.AcquireLease(ctx, id, owner, time.Minute)
	require.NoError(t, err)
	return e
}

func applyOne(t testing.TB, b *Backend, c *persistence.Commit) error {
	t.Helper()
	errs, err := b.Apply(context.Background(), []*persistence.Commit{c})
	require.NoError(t, err)
	require.Len(t, errs, 1)
	return errs[0]
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dsn := testutil.PostgresDSN(t)
	ctx := context.Background()

	t.Run("BadDSN", func(t *testing.T) {
		t.Parallel()
		_, err := Open(ctx, "postgres://user:secretpw@127.0.0.1:notaport/test")
		require.ErrorContains(t, err, "parsing postgres DSN")
		require.NotContains(t, err.Error(), "secretpw")
	})
	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		_, err := Open(ctx, "postgres://user:secretpw@127.0.0.1:1/test?sslmode=disable")
		require.ErrorContains(t, err, "127.0.0.1:1")
		require.NotContains(t, err.Error(), "secretpw")
	})
	t.Run("LoginRefused", func(t *testing.T) {
		t.Parallel()
		u, err := url.Parse(dsn)
		if err != nil || u.Host == "" {
			t.Skip("STENT_TEST_POSTGRES is not a URL")
		}
		u.User = url.UserPassword("stent_no_such_role", "secretpw")
		_, err = Open(ctx, u.String())
		require.ErrorContains(t, err, u.Host)
		require.ErrorContains(t, err, "stent_no_such_role")
		require.NotContains(t, err.Error(), "secretpw")
	})
	t.Run("BadSchema", func(t *testing.T) {
		t.Parallel()
		_, err := Open(ctx, dsn, WithSchema(strings.Repeat("x", 64)))
		require.ErrorContains(t, err, "schema name")
		_, err = Open(ctx, dsn, WithSchema(""))
		require.ErrorContains(t, err, "schema name")
	})
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		require.NoError(t, b.Close())
		require.NoError(t, b.Close())
		_, err := b.GetExecution(ctx, "x")
		require.ErrorIs(t, err, persistence.ErrClosed)
		_, err = b.Apply(ctx, []*persistence.Commit{{ExecutionID: "x"}})
		require.ErrorIs(t, err, persistence.ErrClosed)
		_, _, err = b.CreateExecution(ctx, newExecution("x"))
		require.ErrorIs(t, err, persistence.ErrClosed)
	})
}

func TestInit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("Idempotent", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		require.NoError(t, b.Init(ctx))
		var n int
		require.NoError(t, b.Pool().QueryRow(ctx, "SELECT count(*) FROM "+
			pgx.Identifier{b.Schema(), "stent_migration"}.Sanitize()).Scan(&n))
		require.Equal(t, SchemaVersion(), n)
	})
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		dsn := testutil.PostgresDSN(t)
		schema := randomName("stent_test_")
		t.Cleanup(func() { dropSchema(t, dsn, schema) })
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				b, err := Open(ctx, dsn, WithSchema(schema))
				if err != nil {
					errs[i] = err
					return
				}
				defer b.Close()
				errs[i] = b.Init(ctx)
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
	})
	t.Run("FromVersion1", func(t *testing.T) {
		t.Parallel()
		dsn := testutil.PostgresDSN(t)
		schema := randomName("stent_test_")
		t.Cleanup(func() { dropSchema(t, dsn, schema) })
		ms, err := migrations()
		require.NoError(t, err)
		require.Equal(t, 1, ms[0].version)
		// A schema as version 1 left it, with one waiting execution.
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		ident := pgx.Identifier{schema}.Sanitize()
		require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, q := range []string{
				"CREATE SCHEMA " + ident,
				"SET LOCAL search_path TO " + ident,
				ms[0].sql,
				"CREATE TABLE stent_migration (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
				"INSERT INTO stent_migration (version) VALUES (1)",
				"INSERT INTO stent_execution (id, function, status, root_id) VALUES ('old', 'f', 'waiting', 'old')",
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		}))

		b, err := Open(ctx, dsn, WithSchema(schema))
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.Init(ctx))
		var version int
		require.NoError(t, b.Pool().QueryRow(ctx, "SELECT max(version) FROM "+
			pgx.Identifier{schema, "stent_migration"}.Sanitize()).Scan(&version))
		require.Equal(t, SchemaVersion(), version, "migrated to the newest version")
		got, err := b.GetExecution(ctx, "old")
		require.NoError(t, err)
		require.False(t, got.CancelRequested, "existing rows get the column's default")
		res, err := b.SendSignal(ctx, &persistence.Signal{ID: "s", ExecutionID: "old", Name: "go"}, 0)
		require.NoError(t, err)
		require.False(t, res.RunAt.IsZero(), "the waiting execution is due")
		ok, err := b.AcquirePermit(ctx, "k", "old", "n", 1, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
	})
	t.Run("SchemaTooNew", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		execSQL(t, b, "INSERT INTO $schema.stent_migration (version) VALUES (999)")
		err := b.Init(ctx)
		require.ErrorIs(t, err, persistence.ErrSchemaTooNew)
		require.ErrorContains(t, err, "999")
		require.ErrorContains(t, err, fmt.Sprint(SchemaVersion()))
	})
	t.Run("SchemasIsolated", func(t *testing.T) {
		t.Parallel()
		a, _ := openTestDB(t)
		b, _ := openTestDB(t)
		_, created, err := a.CreateExecution(ctx, newExecution("shared-id"))
		require.NoError(t, err)
		require.True(t, created)
		_, err = b.GetExecution(ctx, "shared-id")
		require.ErrorIs(t, err, persistence.ErrNotFound)
		_, created, err = b.CreateExecution(ctx, newExecution("shared-id"))
		require.NoError(t, err)
		require.True(t, created)
	})
	t.Run("QuotedSchemaName", func(t *testing.T) {
		t.Parallel()
		b, _ := openTestDB(t)
		odd := `stent test "` + randomName("") + `"; DROP TABLE x; --`
		other, err := Open(ctx, testutil.PostgresDSN(t), WithSchema(odd))
		require.NoError(t, err)
		t.Cleanup(func() {
			require.NoError(t, other.Close())
			execSQL(t, b, "DROP SCHEMA IF EXISTS "+pgx.Identifier{odd}.Sanitize()+" CASCADE")
		})
		require.NoError(t, other.Init(ctx))
		_, created, err := other.CreateExecution(ctx, newExecution("a"))
		require.NoError(t, err)
		require.True(t, created)
	})
}

// TestConnectionLoss terminates every connection of a backend, several
// times, in the middle of a stream of Applies from many goroutines, and
// checks that every Apply succeeds and is written exactly once.
func TestConnectionLoss(t *testing.T) {
	t.Parallel()
	b, bundle := openTestDB(t)
	ctx := context.Background()

	const workers, steps = 8, 40
	execs := make([]*persistence.Execution, workers)
	for i := range execs {
		execs[i] = createLeased(t, b, fmt.Sprintf("exec-%d", i), "node-a")
	}

	stop := make(chan struct{})
	killed := make(chan int, 1)
	go func() {
		total := 0
		defer func() { killed <- total }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				total += terminate(t, bundle.dsn, bundle.appName)
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, workers*steps)
	for w := range workers {
		wg.Go(func() {
			e := execs[w]
			for pos := range steps {
				commit := &persistence.Commit{
					ExecutionID: e.ID,
					Epoch:       e.Epoch,
					Journal: []*persistence.JournalEntry{{
						Position: pos, Kind: persistence.EntryNow, Done: true, Output: []byte(fmt.Sprint(pos)),
					}},
					Update: &persistence.Update{Attempts: pos + 1},
				}
				if pos%10 == 0 {
					// No ID: the backend makes one, which retries must keep.
					commit.DeadLetter = &persistence.DeadLetter{Function: "fn", Attempts: pos}
				}
				res, err := b.Apply(ctx, []*persistence.Commit{commit})
				if err != nil {
					errs <- fmt.Errorf("apply %s/%d: %w", e.ID, pos, err)
					return
				}
				if res[0] != nil {
					errs <- fmt.Errorf("commit %s/%d: %w", e.ID, pos, res[0])
					return
				}
				root := newExecution(fmt.Sprintf("root-%d-%d", w, pos))
				if _, created, err := b.CreateExecution(ctx, root); err != nil || !created {
					errs <- fmt.Errorf("create %s: created %v: %w", root.ID, created, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	n := <-killed
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Positive(t, n, "no connection was terminated")
	t.Logf("terminated %d connections during %d commits", n, workers*steps)

	for _, e := range execs {
		_, entries, err := b.LoadJournal(ctx, e.ID)
		require.NoError(t, err)
		require.Len(t, entries, steps)
		for i, en := range entries {
			require.Equal(t, i, en.Position)
			require.Equal(t, fmt.Sprint(i), string(en.Output))
		}
		got, err := b.GetExecution(ctx, e.ID)
		require.NoError(t, err)
		require.Equal(t, steps, got.Attempts)
		require.Equal(t, e.Epoch, got.Epoch)
	}
	var deadLetters, roots int
	require.NoError(t, b.Pool().QueryRow(ctx, "SELECT count(*) FROM "+
		pgx.Identifier{b.Schema(), "stent_dead_letter"}.Sanitize()).Scan(&deadLetters))
	require.Equal(t, workers*steps/10, deadLetters)
	require.NoError(t, b.Pool().QueryRow(ctx, "SELECT count(*) FROM "+
		pgx.Identifier{b.Schema(), "stent_execution"}.Sanitize()+" WHERE id LIKE 'root-%'").Scan(&roots))
	require.Equal(t, workers*steps, roots)

	// Reads and leases carry on too.
	terminate(t, bundle.dsn, bundle.appName)
	_, err := b.GetExecution(ctx, execs[0].ID)
	require.NoError(t, err)
	terminate(t, bundle.dsn, bundle.appName)
	_, err = b.ClaimDue(ctx, "node-b", nil, nil, time.Minute, 10)
	require.NoError(t, err)
}

func TestCorruptRows(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t)
	ctx := context.Background()
	e := createLeased(t, b, "corrupt", "node-a")
	require.NoError(t, applyOne(t, b, &persistence.Commit{ExecutionID: e.ID, Epoch: e.Epoch,
		Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryNow, Done: true}}}))
	createLeased(t, b, "healthy", "node-a")

	execSQL(t, b, `UPDATE $schema.stent_execution SET error = '{"message": 5}' WHERE id = 'corrupt'`)
	execSQL(t, b, `UPDATE $schema.stent_journal SET error = '[1, 2]' WHERE execution_id = 'corrupt'`)

	_, err := b.GetExecution(ctx, "corrupt")
	require.ErrorContains(t, err, "execution corrupt")
	listed, err := b.ListExecutions(ctx, persistence.ListFilter{})
	require.NoError(t, err, "a listing shows every row, the bad one saying what is wrong")
	require.Len(t, listed, 2)
	for _, e := range listed {
		if e.ID == "corrupt" {
			require.Contains(t, e.Error.Message, "decoding error of execution corrupt")
		}
	}
	_, _, err = b.LoadJournal(ctx, "corrupt")
	require.ErrorContains(t, err, "journal entry 0 of execution corrupt")

	got, err := b.GetExecution(ctx, "healthy")
	require.NoError(t, err, "other executions are unaffected")
	require.Equal(t, "healthy", got.ID)

	// A claim runs a row whose only fault is its stored error (the last
	// attempt's), saying so in its Error, rather than failing the claim of
	// every row with it.
	require.NoError(t, b.ReleaseLeases(ctx, "node-a"))
	claimed, err := b.ClaimDue(ctx, "node-b", nil, nil, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	for _, e := range claimed {
		if e.ID == "corrupt" {
			require.Contains(t, e.Error.Message, "decoding error of execution corrupt: persistence: the stored error does not decode")
		} else {
			require.Nil(t, e.Error)
		}
	}
	require.NoError(t, b.ReleaseLeases(ctx, "node-b"))
	acquired, err := b.AcquireLease(ctx, "corrupt", "node-c", time.Minute)
	require.NoError(t, err)
	require.Equal(t, "node-c", acquired.Owner)
}

// TestFailingCommitFailsAlone sends commits that PostgreSQL refuses (text
// with a NUL byte) in the same batch as good ones.
func TestFailingCommitFailsAlone(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t)
	ctx := context.Background()
	var commits []*persistence.Commit
	for i := range 6 {
		e := createLeased(t, b, fmt.Sprint("e", i), "node-a")
		name := "ok"
		if i%3 == 1 {
			name = "bad\x00name"
		}
		commits = append(commits, &persistence.Commit{ExecutionID: e.ID, Epoch: e.Epoch,
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryCall, Name: name}}})
	}
	commits = append(commits, &persistence.Commit{ExecutionID: "e0", Epoch: 99,
		Journal: []*persistence.JournalEntry{{Position: 1, Kind: persistence.EntryCall}}})
	errs, err := b.Apply(ctx, commits)
	require.NoError(t, err)
	for i, e := range errs[:6] {
		_, entries, lerr := b.LoadJournal(ctx, fmt.Sprint("e", i))
		require.NoError(t, lerr)
		if i%3 == 1 {
			require.ErrorContains(t, e, fmt.Sprint("commit of e", i))
			require.Empty(t, entries)
			continue
		}
		require.NoError(t, e)
		require.Len(t, entries, 1)
	}
	require.ErrorIs(t, errs[6], persistence.ErrStaleEpoch)
}

// TestGroupCommit writes from many goroutines at once and checks every
// commit landed once, in its writer's order.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t, WithMaxBatch(16), WithWriters(3))
	ctx := context.Background()
	const goroutines, steps = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		e := createLeased(t, b, fmt.Sprint("g", g), "node-a")
		wg.Go(func() {
			for pos := range steps {
				res, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: e.ID, Epoch: e.Epoch,
					Journal: []*persistence.JournalEntry{{Position: pos, Kind: persistence.EntryNow, Done: true}},
					Update:  &persistence.Update{Attempts: pos + 1}}})
				if err == nil {
					err = res[0]
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for g := range goroutines {
		_, entries, err := b.LoadJournal(ctx, fmt.Sprint("g", g))
		require.NoError(t, err)
		require.Len(t, entries, steps)
		require.Equal(t, steps, mustGet(t, b, fmt.Sprint("g", g)).Attempts)
	}
}

func mustGet(t *testing.T, b *Backend, id string) *persistence.Execution {
	t.Helper()
	e, err := b.GetExecution(context.Background(), id)
	require.NoError(t, err)
	return e
}

// TestTableLocked holds a lock on the executions table while commits wait
// for it: a caller whose context ends returns at once, even when it was
// writing the batch itself, and the others are written once the lock goes.
func TestTableLocked(t *testing.T) {
	t.Parallel()
	b, _ := openTestDB(t)
	ctx := context.Background()
	impatient := createLeased(t, b, "impatient", "node-a")
	patient := createLeased(t, b, "patient", "node-a")

	tx, err := b.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{b.Schema(), "stent_execution"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	// The lock is held until after this call: that it returns at all
	// shows the caller returns when its context ends.
	_, err = b.Apply(short, []*persistence.Commit{{ExecutionID: impatient.ID, Epoch: impatient.Epoch,
		Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryNow}}}})
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan error, 1)
	go func() {
		errs, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: patient.ID, Epoch: patient.Epoch,
			Journal: []*persistence.JournalEntry{{Position: 0, Kind: persistence.EntryNow}}}})
		if err == nil {
			err = errs[0]
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("commit written through a table lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	require.NoError(t, tx.Rollback(ctx))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("commit not written after the lock was released")
	}
	_, entries, err := b.LoadJournal(ctx, patient.ID)
	require.NoError(t, err)
	require.Len(t, entries, 1)
}

// TestServerRestart restarts the PostgreSQL server in the middle of a
// stream of Applies and checks that every Apply succeeds and that the
// notifier listens again. It restarts the server, so it runs only when
// STENT_TEST_POSTGRES_RESTART holds a shell command that restarts the server
// STENT_TEST_POSTGRES names (point both at a server of the test's own).
func TestServerRestart(t *testing.T) {
	restart := os.Getenv("STENT_TEST_POSTGRES_RESTART")
	if restart == "" {
		t.Skip("STENT_TEST_POSTGRES_RESTART is not set; set it to a command that restarts the test server to run this test")
	}
	b, _ := openTestDB(t)
	ctx := context.Background()
	n := b.Notifier()
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	ch := make(chan persistence.Notification, 64)
	require.NoError(t, n.Subscribe(t.Context(), func(note persistence.Notification) {
		select {
		case ch <- note:
		default:
		}
	}))

	const workers, steps = 4, 100
	execs := make([]*persistence.Execution, workers)
	for i := range execs {
		execs[i] = createLeased(t, b, fmt.Sprintf("exec-%d", i), "node-a")
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	progress := make(chan struct{}, workers*steps)
	for w := range workers {
		wg.Go(func() {
			e := execs[w]
			for pos := range steps {
				res, err := b.Apply(ctx, []*persistence.Commit{{ExecutionID: e.ID, Epoch: e.Epoch,
					Journal: []*persistence.JournalEntry{{Position: pos, Kind: persistence.EntryNow, Done: true}}}})
				if err == nil {
					err = res[0]
				}
				if err != nil {
					errs <- fmt.Errorf("commit %s/%d: %w", e.ID, pos, err)
					return
				}
				progress <- struct{}{}
			}
		})
	}
	for range workers * steps / 4 {
		<-progress
	}
	out, err := exec.Command("sh", "-c", restart).CombinedOutput()
	require.NoError(t, err, "restarting the server: %s", out)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, e := range execs {
		_, entries, err := b.LoadJournal(ctx, e.ID)
		require.NoError(t, err)
		require.Len(t, entries, steps)
	}
	testutil.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if err := n.Publish(ctx, persistence.Notification{Topic: "x", Payload: "after restart"}); err != nil {
			return err
		}
		select {
		case <-ch:
			return nil
		case <-time.After(100 * time.Millisecond):
			return fmt.Errorf("no notification")
		}
	})
}
