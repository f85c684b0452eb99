package stentcli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/stent-go/stent/internal/console"
)

// DefaultConsoleAddr is where stent console listens without --addr.
const DefaultConsoleAddr = "127.0.0.1:8080"

func (a *app) consoleCmd() *cobra.Command {
	var addr, traceURL string
	c := &cobra.Command{
		Use:   "console",
		Short: "Serve the web console on the database, for a machine that runs no node",
		Long: `Serve the web console (the pages and the JSON API that stent-node serves on
its --admin address) on the database of --db, until Ctrl-C. It reads and
writes the database as the other commands do, and wakes the nodes through
it. On an address other than loopback it needs --token (STENT_ADMIN_TOKEN):
writes are refused without it, and reads without it see no payloads.
docs/console.md describes the pages and the API.`,
		Example: `  stent console --db ./stent.db
  stent console --db postgres://stent@db:5432/stent --addr :8080 --token "$(cat token)"
  stent console --db ./stent.db --trace-url 'http://localhost:16686/trace/{trace_id}'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runConsole(cmd.Context(), addr, traceURL) },
	}
	c.Flags().StringVar(&addr, "addr", DefaultConsoleAddr, "host:port to listen on")
	c.Flags().StringVar(&traceURL, "trace-url", "", "link of a trace in your tracing UI, with {trace_id} (env STENT_TRACE_URL)")
	return c
}

func (a *app) runConsole(ctx context.Context, addr, traceURL string) error {
	if a.remote() {
		return usagef("stent console serves a database (--db), not a node: open the node's --admin address in a browser instead")
	}
	token := a.adminToken()
	if !console.Loopback(addr) && token == "" {
		return usagef("--addr %s is not a loopback address: set --token (STENT_ADMIN_TOKEN) so that the console refuses writes without it, or listen on 127.0.0.1", addr)
	}
	if traceURL == "" {
		traceURL = a.getenv("STENT_TRACE_URL")
	}
	ex, err := a.executor(ctx)
	if err != nil {
		return err
	}
	h, err := console.New(console.Config{Executor: ex, Token: token, TraceURL: traceURL, Notify: a.wake})
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on --addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Fprintf(a.stdout, "console on http://%s (Ctrl-C stops it)\n", ln.Addr())
	select {
	case err := <-done:
		return fmt.Errorf("serving the console: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
