package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/stent-go/stent/persistence"
)

// errNotInitialised reports a call before Init created the schema.
var errNotInitialised = errors.New("sqlite: schema not initialised: call Init first")

// interpretError maps driver errors onto the errors of package persistence.
// It is the one place that knows the driver's error values; errors it does
// not know are returned as they are.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return persistence.ErrNotFound
	}
	if errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %w", persistence.ErrClosed, err)
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		if strings.Contains(se.Error(), "idempotency_key") {
			return fmt.Errorf("%w: %w", persistence.ErrIdempotencyConflict, err)
		}
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("not a SQLite database: %w", err)
	case sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("database file is corrupt: %w", err)
	case sqlite3.SQLITE_FULL:
		return fmt.Errorf("disk full: %w", err)
	case sqlite3.SQLITE_ERROR:
		if strings.Contains(se.Error(), "no such table: stent_") {
			return fmt.Errorf("%w: %w", errNotInitialised, err)
		}
	}
	return err
}

// isBusy reports whether err is SQLite's "database is locked": another
// connection held the write lock for longer than the busy timeout.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
