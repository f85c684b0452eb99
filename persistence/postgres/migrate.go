package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/stent-go/stent/persistence"
)

//go:embed migration/*.sql
var migrationFS embed.FS

// migration is one embedded migration file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Their file
// names are NNN_name.up.sql, numbered as the SQLite backend's.
func migrations() ([]migration, error) {
	files, err := fs.Glob(migrationFS, "migration/*.up.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var out []migration
	for _, f := range files {
		base := path.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("reading migration %s: name must start with a version number", base)
		}
		body, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", base, err)
		}
		out = append(out, migration{version: v, name: base, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("reading migrations: %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// SchemaVersion is the version of the newest embedded migration: the
// schema version this package writes.
func SchemaVersion() int {
	m, err := migrations()
	if err != nil || len(m) == 0 {
		return 0
	}
	return m[len(m)-1].version
}

// migrationLockKey is the advisory lock that serialises Inits of one schema;
// Inits of different schemas do not wait for each other.
func (b *Backend) migrationLockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("stent migration " + b.schema)) // hash.Hash.Write never fails
	return int64(h.Sum64())
}

// Init creates the schema and its tables, or migrates them to this version,
// in one transaction holding an advisory lock: concurrent Inits (several
// processes starting at once) wait for each other and the later ones find
// nothing to do. It returns persistence.ErrSchemaTooNew (wrapped, naming
// both versions) when the database was migrated by a newer version.
func (b *Backend) Init(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	schema := pgx.Identifier{b.schema}.Sanitize()
	table := pgx.Identifier{b.schema, "stent_migration"}.Sanitize()
	err = b.do(ctx, true, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", b.migrationLockKey()); err != nil {
				return fmt.Errorf("taking migration lock: %w", err)
			}
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
				return fmt.Errorf("creating schema: %w", err)
			}
			if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+
				" (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
				return fmt.Errorf("creating migration table: %w", err)
			}
			var current int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+table).Scan(&current); err != nil {
				return fmt.Errorf("reading schema version: %w", err)
			}
			if current > latest {
				return fmt.Errorf("database schema %s is at version %d, this version of stent knows up to %d: %w",
					b.schema, current, latest, persistence.ErrSchemaTooNew)
			}
			if current == latest {
				return nil
			}
			// The migration files name tables unqualified.
			if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
				return fmt.Errorf("setting search path: %w", err)
			}
			for _, m := range ms {
				if m.version <= current {
					continue
				}
				if _, err := tx.Exec(ctx, m.sql); err != nil {
					return fmt.Errorf("applying migration %s: %w", m.name, err)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version) VALUES ($1)", m.version); err != nil {
					return fmt.Errorf("recording migration %s: %w", m.name, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("initialising postgres schema %s: %w", b.schema, interpretError(err))
	}
	return nil
}
