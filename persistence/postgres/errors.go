package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stent-go/stent/persistence"
)

// SQLSTATE codes the backend tells apart.
const (
	codeUniqueViolation      = "23505"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeTooManyConnections   = "53300"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
	codeUndefinedTable       = "42P01"
)

// interpretError maps a pgx error onto the persistence errors, keeping the
// driver error in the chain: pgx.ErrNoRows becomes persistence.ErrNotFound,
// a closed pool persistence.ErrClosed. Other errors are returned as they are.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return persistence.ErrNotFound
	}
	if errors.Is(err, pgx.ErrTxClosed) || strings.Contains(err.Error(), "closed pool") {
		return fmt.Errorf("%w: %w", persistence.ErrClosed, err)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return fmt.Errorf("duplicate key (%s): %w", pgErr.ConstraintName, err)
		case codeUndefinedTable:
			return fmt.Errorf("missing table, was Init called? %w", err)
		}
	}
	return err
}

// retryable reports whether err came from a lost or refused connection or
// a transaction the server aborted for concurrency (deadlock, serialization),
// so that running the same work again may succeed. The caller's context
// ending is not retryable.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeSerializationFailure, codeDeadlockDetected, codeTooManyConnections,
			codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow:
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection exceptions
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// statementError reports whether err is an error the server raised for one
// statement (a constraint, bad input), which running it again would repeat.
func statementError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && !retryable(err)
}

// connectionLost reports whether err means the connection it came on is
// gone (the server shut down or terminated it, the network failed), as
// opposed to a failure to connect or a transaction aborted by the server.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeAdminShutdown, codeCrashShutdown:
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var connectErr *pgconn.ConnectError
	return retryable(err) && !errors.As(err, &connectErr)
}

// retryDelay returns how long to wait before attempt+1 after err. When a
// connection was lost, the pool's other connections are likely lost too
// (a server restart, pg_terminate_backend): a pool the backend owns is
// reset, and the first retry goes at once on a fresh connection.
func (b *Backend) retryDelay(attempt int, err error) time.Duration {
	if connectionLost(err) {
		if b.ownPool {
			b.pool.Reset()
		}
		if attempt == 1 {
			return 0
		}
	}
	return backoff.Delay(attempt)
}

// notApplied reports whether the work that failed with err certainly did not
// change the database: it never reached the server, or the server answered
// with an error (which rolls back the statement's implicit transaction).
func notApplied(err error) bool {
	var pgErr *pgconn.PgError
	return pgconn.SafeToRetry(err) || errors.As(err, &pgErr)
}

// do runs fn, and runs it again with backoff while it fails with a
// retryable error, for up to the retry timeout or until ctx ends. When
// idempotent is false, fn is run again only if the failed attempt cannot
// have reached the server.
func (b *Backend) do(ctx context.Context, idempotent bool, fn func(ctx context.Context) error) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !retryable(err) || (!idempotent && !notApplied(err)) {
			return err
		}
		if time.Since(start) > b.opts.retryTimeout {
			return err
		}
		if err := b.checkOpen(); err != nil {
			return err
		}
		b.logger.WarnContext(ctx, "postgres query failed, retrying",
			slog.String("schema", b.schema), slog.Int("attempt", attempt), slog.String("error", err.Error()))
		t := time.NewTimer(b.retryDelay(attempt, err))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
