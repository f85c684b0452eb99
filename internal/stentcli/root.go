// Package stentcli is the `stent` command: the operator's tool for a Stent
// database (list, show, stats, watch, dead letters, signals, cancel, start,
// schedules, cleanup, members, migrate) and the `stent chaos` test
// harness. It is a process outside the cluster: it reads and writes the
// database, and wakes the nodes through the backend's notifier (PostgreSQL
// LISTEN/NOTIFY).
// docs/cli.md describes every command.
//
// It is wired up by cmd/stent; its exported identifiers are not a stable
// API.
package stentcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/sdk"
)

// Exit codes of Main.
const (
	ExitOK     = 0 // the command did what it was asked
	ExitFailed = 1 // the command failed (database, missing execution, ...)
	ExitUsage  = 2 // bad command line: unknown command or flag, bad argument
)

// app is one run of the command: its global flags, streams and the
// database it opened.
type app struct {
	db      string
	schema  string
	jsonOut bool
	// keys are the payload keys (--key, STENT_KEY): with them, encrypted
	// payloads are decoded; without, shown as "encrypted (key ID)".
	keys []string
	// node and token are --node (STENT_NODE) and --token
	// (STENT_ADMIN_TOKEN): with a node, the commands of remoteCommands
	// use its console API instead of the database.
	node, token string
	// command is the path of the command that runs ("stent cleanup"), for
	// errors that name it.
	command string

	stdout, stderr io.Writer
	getenv         func(string) string
	term           terminal

	backend  persistence.Backend
	ex       *sdk.Executor
	notifier persistence.Notifier
}

// usageError is a bad command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef is a usageError with a formatted message.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError carries the exit code of a command that printed its own
// errors (chaos, node).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitCode is nil for code 0 and an exitError otherwise.
func exitCode(code int) error {
	if code == 0 {
		return nil
	}
	return exitError(code)
}

// Main runs the stent command with args (without the program name) and
// returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a := &app{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	a.term = detectTerminal(os.Stdout, os.Getenv)
	return a.run(ctx, args)
}

// run executes args and maps the outcome to an exit code.
func (a *app) run(ctx context.Context, args []string) int {
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if cerr := a.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err == nil {
		return ExitOK
	}
	var exit exitError
	if errors.As(err, &exit) {
		return int(exit)
	}
	fmt.Fprintln(a.stderr, "stent:", err)
	if isUsage(err) {
		fmt.Fprintln(a.stderr, "Run 'stent --help' or 'stent <command> --help' for usage.")
		return ExitUsage
	}
	return ExitFailed
}

// isUsage reports whether err is a bad command line, ours or cobra's.
func isUsage(err error) bool {
	if errors.As(err, new(usageError)) {
		return true
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// rootCmd builds the command tree.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "stent",
		Short: "Operate Stent: executions, dead letters, signals, schedules, nodes",
		Long: `stent operates a Stent database: it lists and shows executions, counts them,
replays dead letters, sends signals, cancels and starts executions, deletes
old ones, manages schedules and lists the nodes that serve. It runs outside the cluster: it
reads and writes the database and wakes the nodes through it.

The database is --db or STENT_DB: a SQLite file path, or a PostgreSQL DSN
(postgres:// or postgresql://), with --schema (STENT_SCHEMA) for a schema
other than public. Every command that prints takes --json.`,
		Example: `  export STENT_DB=postgres://stent@db.internal:5432/stent
  stent list --status failed
  stent show 01J9Z3K5X8V6Q2M4N7P1R0S9T8
  stent dlq replay-all`,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			a.command = cmd.CommandPath()
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.db, "db", "", "database: a SQLite file path or a postgres:// DSN (env STENT_DB)")
	pf.StringVar(&a.schema, "schema", "", "PostgreSQL schema of the tables (env STENT_SCHEMA; default public)")
	pf.BoolVar(&a.jsonOut, "json", false, "print JSON instead of text")
	pf.StringArrayVar(&a.keys, "key", nil, "payload key ID:BASE64-SECRET to decrypt (and encrypt) payloads; repeat it for old keys, the first encrypts (env STENT_KEY, keys separated by commas)")
	pf.StringVar(&a.node, "node", "", "a node's admin URL, e.g. http://10.0.0.5:8080: list, show, start, signal, cancel, stats, watch, members, dlq and schedule list go through its API instead of --db (env STENT_NODE)")
	pf.StringVar(&a.token, "token", "", "the node's admin token, for --node and stent console (env STENT_ADMIN_TOKEN)")
	root.AddGroup(&cobra.Group{ID: "exec", Title: "Executions:"}, &cobra.Group{ID: "ops", Title: "Operations:"})
	for _, c := range []*cobra.Command{a.listCmd(), a.showCmd(), a.startCmd(), a.signalCmd(), a.cancelCmd()} {
		c.GroupID = "exec"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.statsCmd(), a.watchCmd(), a.dlqCmd(), a.scheduleCmd(), a.cleanupCmd(), a.membersCmd(), a.consoleCmd(), a.migrateCmd(), a.chaosCmd()} {
		c.GroupID = "ops"
		root.AddCommand(c)
	}
	root.AddCommand(a.nodeCmd())
	return root
}

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// argsBetween accepts min to max arguments, named in the error by usage.
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("%s takes %s; got %d arguments", cmd.CommandPath(), argsText(cmd.Use), len(args))
		}
		return nil
	}
}

// argsText is the arguments part of a Use line.
func argsText(use string) string {
	if _, rest, ok := strings.Cut(use, " "); ok {
		return rest
	}
	return "no arguments"
}
