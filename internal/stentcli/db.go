package stentcli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/codec"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/node"
)

// errNoSchema is a database without Stent's tables.
var errNoSchema = errors.New("no Stent tables")

// database is --db, or STENT_DB; an error when neither is set.
func (a *app) database() (db, schema string, err error) {
	db, schema = a.db, a.schema
	if db == "" {
		db = a.getenv("STENT_DB")
	}
	if schema == "" {
		schema = a.getenv("STENT_SCHEMA")
	}
	if db == "" {
		return "", "", usagef("no database given: set --db or STENT_DB to a SQLite file path or a postgres:// DSN")
	}
	if schema != "" && !node.IsPostgres(db) {
		return "", "", usagef("--schema applies to PostgreSQL only: drop it (or STENT_SCHEMA), or give a postgres:// DSN")
	}
	return db, schema, nil
}

// openBackend opens the database. Unless create is true, a SQLite file
// must exist already, and the tables must be there.
func (a *app) openBackend(ctx context.Context, create bool) (persistence.Backend, error) {
	if a.backend != nil {
		return a.backend, nil
	}
	if a.remote() {
		return nil, a.errNeedsDatabase()
	}
	db, schema, err := a.database()
	if err != nil {
		return nil, err
	}
	var b persistence.Backend
	if node.IsPostgres(db) {
		opts := []postgres.Option{postgres.WithRetryTimeout(5 * time.Second)}
		if schema != "" {
			opts = append(opts, postgres.WithSchema(schema))
		}
		octx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		pb, err := postgres.Open(octx, db, opts...)
		if err != nil {
			return nil, fmt.Errorf("database unreachable: %w (check --db or STENT_DB, and that the server runs)", err)
		}
		b = pb
	} else {
		if !create {
			if err := sqliteHasSchema(ctx, db); err != nil {
				return nil, err
			}
		}
		sb, err := sqlite.Open(db)
		if err != nil {
			return nil, fmt.Errorf("database unreachable: %w (check --db or STENT_DB)", err)
		}
		b = sb
		// A SQLite backend serves reads once Init has checked the schema in
		// this process; the tables exist (sqliteHasSchema), so it creates
		// nothing.
		if !create {
			if err := sb.Init(ctx); err != nil {
				return nil, errors.Join(fmt.Errorf("opening %s: %w", db, err), sb.Close())
			}
		}
	}
	if !create {
		if err := probe(ctx, b); err != nil {
			return nil, errors.Join(err, b.Close())
		}
	}
	if d, ok := b.(interface{ DefaultNotifier() persistence.Notifier }); ok {
		a.notifier = d.DefaultNotifier()
	}
	c, err := a.codec()
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	b = codec.Wrap(b, c) // b itself without keys
	a.backend = b
	return b, nil
}

// codec is the payload codec of --key or STENT_KEY, or nil without keys.
func (a *app) codec() (codec.Codec, error) {
	specs := a.keys
	if len(specs) == 0 {
		if env := a.getenv("STENT_KEY"); env != "" {
			specs = strings.Split(env, ",")
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	keys := make([]codec.Key, len(specs))
	for i, s := range specs {
		k, err := codec.ParseKey(s)
		if err != nil {
			return nil, usagef("--key or STENT_KEY: %v", err)
		}
		keys[i] = k
	}
	c, err := codec.NewAESGCM(keys...)
	if err != nil {
		return nil, usagef("--key or STENT_KEY: %v", err)
	}
	return c, nil
}

// sqliteHasSchema checks, without writing, that the SQLite file at path
// exists and holds Stent's tables.
func sqliteHasSchema(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s: check --db or STENT_DB (run stent migrate to create one)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro"}).String())
	if err != nil {
		return fmt.Errorf("database unreachable: %w (check --db or STENT_DB)", err)
	}
	defer db.Close() //nolint:errcheck // a read-only handle: nothing to lose
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'stent_execution'").Scan(&n)
	if err != nil {
		return fmt.Errorf("database unreachable: %s is not a SQLite database, or cannot be read: %w (check --db or STENT_DB)", path, err)
	}
	if n == 0 {
		return fmt.Errorf("%w in %s: run stent migrate to create them, or check --db", errNoSchema, path)
	}
	return nil
}

// probe checks that b has Stent's tables: a read of an execution that does
// not exist finds none.
func probe(ctx context.Context, b persistence.Backend) error {
	_, err := b.GetExecution(ctx, "stent-cli-probe")
	if err == nil || errors.Is(err, persistence.ErrNotFound) {
		return nil
	}
	var pgErr *pgconn.PgError
	if (errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000")) ||
		strings.Contains(err.Error(), "no such table") {
		return fmt.Errorf("%w in this database: run stent migrate to create them, or check --db and --schema", errNoSchema)
	}
	return fmt.Errorf("database unreachable: %w (check --db or STENT_DB)", err)
}

// executor opens the database and an executor on it that does not serve:
// it reads and writes the database, and wakes the nodes through the
// backend's notifier.
func (a *app) executor(ctx context.Context) (*sdk.Executor, error) {
	if a.ex != nil {
		return a.ex, nil
	}
	b, err := a.openBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	ex, err := sdk.New(b, sdk.WithNodeID("stent-cli-"+node.DefaultNodeID()),
		// The CLI publishes its wake-ups itself, before it exits (wake).
		sdk.WithLogger(slog.New(slog.DiscardHandler)), sdk.WithNotifications(nil))
	if err != nil {
		return nil, err
	}
	a.ex = ex
	return ex, nil
}

// wake tells the serving nodes, through the notifier (PostgreSQL
// LISTEN/NOTIFY), that something changed: work on a queue
// (persistence.TopicQueue) or a message for an execution
// (persistence.TopicExecution). Without a notifier (SQLite) the nodes find
// it at their next poll. A failed wake-up costs latency only: it is not an
// error of the command.
func (a *app) wake(ctx context.Context, topic, payload string) {
	if a.notifier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.notifier.Publish(ctx, persistence.Notification{Topic: topic, Payload: payload}); err != nil {
		fmt.Fprintln(a.stderr, "stent: warning: the nodes were not notified (they find the change at their next poll):", err)
	}
}

// close closes what the command opened.
func (a *app) close() error {
	var err error
	if a.notifier != nil {
		err = a.notifier.Close()
	}
	switch {
	case a.ex != nil:
		err = errors.Join(err, a.ex.Close()) // closes the backend too
	case a.backend != nil:
		err = errors.Join(err, a.backend.Close())
	}
	a.ex, a.backend, a.notifier = nil, nil, nil
	return err
}
