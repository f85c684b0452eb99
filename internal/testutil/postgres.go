package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresSchema returns a fresh schema name, prefix_ and random hex, for a
// test on the PostgreSQL server of dsn, and drops that schema (if the test
// created it) when the test ends.
func PostgresSchema(t testing.TB, dsn, prefix string) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := prefix + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx) //nolint:errcheck // the schema is dropped or the error reported
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// PostgresDSN returns STENT_TEST_POSTGRES, the DSN of the PostgreSQL
// server that tests use. When it is not set, the test is skipped, except
// under CI (CI set), where a missing database fails it.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("STENT_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("STENT_TEST_POSTGRES must be set under CI")
		}
		t.Skip("STENT_TEST_POSTGRES is not set")
	}
	return dsn
}
