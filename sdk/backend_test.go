package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/stenttest"
)

// The SDK suite runs on SQLite in the test process. TestSuiteOnPostgres runs
// the whole suite again, in a child process of this test binary with
// STENT_TEST_BACKEND=postgres, so that every test also passes on PostgreSQL
// (STENT_TEST_POSTGRES names the server; each test gets its own schema).

const (
	envBackend  = "STENT_TEST_BACKEND"  // "" or "sqlite", or "postgres"
	envPostgres = "STENT_TEST_POSTGRES" // a DSN
	envSchema   = "STENT_TEST_SCHEMA"   // set for helper processes on PostgreSQL
)

func onPostgres() bool { return os.Getenv(envBackend) == "postgres" }

// testDatabase returns what a helper process needs to open the same
// database: a SQLite path, or a PostgreSQL schema (in env).
func testDatabase(t testing.TB) (env []string, open func(testing.TB) persistence.Backend) {
	t.Helper()
	if !onPostgres() {
		path := filepath.Join(t.TempDir(), "stent.db")
		return []string{"STENT_TEST_DB=" + path}, func(t testing.TB) persistence.Backend {
			b, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	schema := newSchema(t)
	return []string{"STENT_TEST_DB=" + os.Getenv(envPostgres), envSchema + "=" + schema}, func(t testing.TB) persistence.Backend {
		b, err := postgres.Open(context.Background(), os.Getenv(envPostgres), postgres.WithSchema(schema))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// openHelperBackend opens the database a helper process was given.
func openHelperBackend(ctx context.Context) (persistence.Backend, error) {
	db := os.Getenv("STENT_TEST_DB")
	if schema := os.Getenv(envSchema); schema != "" {
		return postgres.Open(ctx, db, postgres.WithSchema(schema))
	}
	return sqlite.Open(db)
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "sdktest_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, os.Getenv(envPostgres))
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// worker is stenttest.Worker on the backend under test.
func worker(t testing.TB, opts ...sdk.ExecutorOption) (context.Context, *sdk.Executor) {
	t.Helper()
	if !onPostgres() {
		return stenttest.Worker(t, opts...)
	}
	_, open := testDatabase(t)
	all := append([]sdk.ExecutorOption{
		sdk.Serve(),
		sdk.WithLeaseDuration(2 * time.Second),
		sdk.WithPollInterval(50 * time.Millisecond),
		sdk.WithLogger(stenttest.Logger(t)),
	}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := sdk.Bootstrap(ctx, open(t), all...)
	if err != nil {
		t.Fatalf("starting the executor on PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := ex.Close(); err != nil {
			t.Errorf("closing the executor: %v", err)
		}
	})
	return sdk.WithExecutor(context.Background(), ex), ex
}

func TestSuiteOnPostgres(t *testing.T) {
	if os.Getenv(envBackend) != "" {
		t.Skip("this is the inner run")
	}
	if os.Getenv(envPostgres) == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STENT_TEST_POSTGRES must be set under CI")
		}
		t.Skip("STENT_TEST_POSTGRES is not set; the SDK suite runs on SQLite only")
	}
	t.Parallel()
	args := []string{"-test.run=^Test", "-test.count=1", "-test.timeout=5m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), envBackend+"=postgres")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the SDK suite failed on PostgreSQL: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	t.Logf("the SDK suite on PostgreSQL: %s", lines[len(lines)-1])
}
