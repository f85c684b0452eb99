// Package nodecli is the stent-node command: one serving node of Stent on a
// SQLite file or a PostgreSQL database. Nodes on one database share its work
// through leases: a node that dies loses its leases, and another claims its
// executions once they run out (a node restarted under the same --node name
// takes its own back at once). With --gossip the nodes also form a cluster:
// they gossip membership, send each other messages over protoactor remote,
// and a member declared dead has its executions taken over in about a second
// instead of at the end of its leases.
//
// Main is also the template for hosting your own functions. A node runs
// only the durable functions registered in its binary, and this package is
// internal, so copy it into your own command: register your functions
// (import the packages that declare them with sdk.Durable, or declare them
// in main), then run the same setup as serve does: open the backend,
// sdk.Bootstrap it with sdk.Serve(), WithNodeID, WithQueues,
// WithConcurrency, WithLeaseDuration, a logger and, for a cluster,
// WithCluster (clusterConfig builds its cluster.Config from the flags), and
// Close the executor on SIGTERM. Every node on one database must register the functions of every
// queue it serves.
//
// It is wired up by cmd/stent-node; its exported identifiers are not a
// stable API.
package nodecli

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/internal/ledger"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// Exit codes of Main.
const (
	ExitOK    = 0 // stopped by SIGTERM or SIGINT after a clean Close
	ExitError = 1 // failed while running, or Close failed
	ExitUsage = 2 // bad flags, or the database cannot be opened
)

// config is the parsed command line.
type config struct {
	db          string
	schema      string
	node        string
	queues      []string
	tags        []string
	concurrency int
	lease       time.Duration
	admin       string
	logLevel    slog.Level

	// The cluster: gossip is empty when the node runs alone.
	gossip    string
	remote    string
	seeds     []string
	gossipKey []byte
	label     string
	tlsCert   string
	tlsKey    string
	tlsCA     string
}

// usageError is a bad flag or database: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs a node with args (without the program name) until SIGTERM or
// SIGINT, and returns the process exit code.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args, os.Stderr)
}

// run is Main with the stop signal as ctx and logs going to stderr.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parse(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "stent-node:", err)
		return ExitUsage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("node failed", slog.Any("error", err))
		if errors.As(err, new(usageError)) {
			fmt.Fprintln(stderr, "stent-node:", err)
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// parse reads the flags, each defaulting to its STENT_* variable.
func parse(args []string, getenv func(string) string, out io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("stent-node", flag.ContinueOnError)
	fs.SetOutput(out)
	db := fs.String("db", env("STENT_DB", ""), "database: a SQLite file path, or a postgres:// DSN (env STENT_DB)")
	schema := fs.String("schema", env("STENT_SCHEMA", ""), "PostgreSQL schema of the tables (env STENT_SCHEMA; default public)")
	node := fs.String("node", env("STENT_NODE", ""), "node ID, unique among live nodes; reuse it on restart to take back leases at once (env STENT_NODE; default hostname-pid)")
	queues := fs.String("queues", env("STENT_QUEUES", ""), "comma-separated queues to serve (env STENT_QUEUES; default every queue)")
	tags := fs.String("tags", env("STENT_TAGS", ""), "comma-separated tags of this node: it runs executions whose every tag is one of them, and untagged ones (env STENT_TAGS; default none)")
	concurrency := fs.String("concurrency", env("STENT_CONCURRENCY", "0"), "most executions run at once (env STENT_CONCURRENCY; 0: the SDK default, 1000)")
	lease := fs.String("lease", env("STENT_LEASE", "0s"), "lease duration (env STENT_LEASE; 0: the SDK default, 10s)")
	admin := fs.String("admin", env("STENT_ADMIN", "127.0.0.1:0"), "HTTP address of /healthz and /readyz; empty disables (env STENT_ADMIN)")
	level := fs.String("log-level", env("STENT_LOG_LEVEL", "info"), "debug, info, warn or error (env STENT_LOG_LEVEL)")
	gossip := fs.String("gossip", env("STENT_GOSSIP", ""), "host:port of this node's gossip (UDP and TCP); set it to run in a cluster (env STENT_GOSSIP)")
	remote := fs.String("remote", env("STENT_REMOTE", "127.0.0.1:0"), "host:port of this node's remote endpoint, where the other members send it messages (env STENT_REMOTE)")
	seeds := fs.String("seeds", env("STENT_SEEDS", ""), "comma-separated gossip addresses of members to join; empty starts a new cluster (env STENT_SEEDS)")
	gossipKey := fs.String("gossip-key", env("STENT_GOSSIP_KEY", ""), "base64 of a 16, 24 or 32-byte key that encrypts gossip; every member needs the same (env STENT_GOSSIP_KEY)")
	label := fs.String("cluster-label", env("STENT_CLUSTER_LABEL", ""), "label that keeps clusters on one network apart (env STENT_CLUSTER_LABEL)")
	tlsCert := fs.String("tls-cert", env("STENT_TLS_CERT", ""), "PEM certificate of this node for mutual TLS between nodes (env STENT_TLS_CERT)")
	tlsKey := fs.String("tls-key", env("STENT_TLS_KEY", ""), "PEM key of --tls-cert (env STENT_TLS_KEY)")
	tlsCA := fs.String("tls-ca", env("STENT_TLS_CA", ""), "PEM certificate of the cluster CA; with --tls-cert and --tls-key it turns mutual TLS on (env STENT_TLS_CA)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := config{db: *db, schema: *schema, node: *node, admin: *admin,
		gossip: *gossip, remote: *remote, label: *label, tlsCert: *tlsCert, tlsKey: *tlsKey, tlsCA: *tlsCA}
	if cfg.db == "" {
		return config{}, errors.New("--db (or STENT_DB) is required: a SQLite path or a postgres:// DSN")
	}
	if cfg.schema != "" && !ledger.IsPostgres(cfg.db) {
		return config{}, errors.New("--schema applies to PostgreSQL only")
	}
	if cfg.node == "" {
		cfg.node = ledger.DefaultNode()
	}
	for q := range strings.SplitSeq(*queues, ",") {
		if q = strings.TrimSpace(q); q != "" {
			cfg.queues = append(cfg.queues, q)
		}
	}
	cfg.tags = splitList(*tags)
	var err error
	if cfg.concurrency, err = strconv.Atoi(*concurrency); err != nil || cfg.concurrency < 0 {
		return config{}, fmt.Errorf("invalid --concurrency %q: want a count ≥ 0", *concurrency)
	}
	if cfg.lease, err = time.ParseDuration(*lease); err != nil || cfg.lease < 0 {
		return config{}, fmt.Errorf("invalid --lease %q: want a duration such as 10s", *lease)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return config{}, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", *level)
	}
	for s := range strings.SplitSeq(*seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.seeds = append(cfg.seeds, s)
		}
	}
	if *gossipKey != "" {
		if cfg.gossipKey, err = base64.StdEncoding.DecodeString(*gossipKey); err != nil {
			return config{}, fmt.Errorf("invalid --gossip-key: not base64: %w", err)
		}
		if n := len(cfg.gossipKey); n != 16 && n != 24 && n != 32 {
			return config{}, fmt.Errorf("invalid --gossip-key: %d bytes, want 16, 24 or 32", n)
		}
	}
	tlsSet := 0
	for _, f := range []string{cfg.tlsCert, cfg.tlsKey, cfg.tlsCA} {
		if f != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		return config{}, errors.New("mutual TLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	if cfg.gossip == "" && (len(cfg.seeds) > 0 || cfg.gossipKey != nil || cfg.label != "" || tlsSet > 0) {
		return config{}, errors.New("--seeds, --gossip-key, --cluster-label and --tls-* need --gossip (the cluster)")
	}
	return cfg, nil
}

// openBackend opens the database --db names: PostgreSQL for a postgres://
// or postgresql:// DSN, SQLite otherwise.
func openBackend(ctx context.Context, cfg config, logger *slog.Logger) (persistence.Backend, error) {
	if ledger.IsPostgres(cfg.db) {
		opts := []postgres.Option{postgres.WithLogger(logger)}
		if cfg.schema != "" {
			opts = append(opts, postgres.WithSchema(cfg.schema))
		}
		b, err := postgres.Open(ctx, cfg.db, opts...)
		if err != nil {
			return nil, usageError{err}
		}
		return b, nil
	}
	b, err := sqlite.Open(cfg.db)
	if err != nil {
		return nil, usageError{err}
	}
	return b, nil
}

// serve runs the node until ctx ends.
func serve(ctx context.Context, cfg config, logger *slog.Logger) (err error) {
	var ready atomic.Bool
	if cfg.admin != "" {
		stopAdmin, err := startAdmin(cfg.admin, &ready, logger)
		if err != nil {
			return usageError{err}
		}
		defer func() { err = errors.Join(err, stopAdmin()) }()
	}

	backend, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	ledgerOpts := []ledger.Option{ledger.WithNode(cfg.node)}
	if cfg.schema != "" {
		ledgerOpts = append(ledgerOpts, ledger.WithSchema(cfg.schema))
	}
	l, err := ledger.Open(cfg.db, ledgerOpts...)
	if err != nil {
		return errors.Join(usageError{err}, backend.Close())
	}
	if err := ledger.Register(l); err != nil {
		return errors.Join(err, l.Close(), backend.Close())
	}
	defer func() {
		err = errors.Join(err, ledger.Register(nil), l.Close())
	}()

	opts := []sdk.ExecutorOption{
		sdk.Serve(),
		sdk.WithNodeID(cfg.node),
		sdk.WithLogger(logger),
		sdk.WithConcurrency(cfg.concurrency),
		sdk.WithLeaseDuration(cfg.lease),
	}
	if len(cfg.queues) > 0 {
		opts = append(opts, sdk.WithQueues(cfg.queues...))
	}
	if len(cfg.tags) > 0 {
		opts = append(opts, sdk.WithWorkerTags(cfg.tags...))
	}
	if cfg.gossip != "" {
		cc, err := clusterConfig(cfg, logger)
		if err != nil {
			return errors.Join(usageError{err}, backend.Close())
		}
		opts = append(opts, sdk.WithCluster(cc))
	}
	ex, err := sdk.Bootstrap(ctx, backend, opts...)
	if err != nil {
		return errors.Join(fmt.Errorf("starting the executor: %w", err), backend.Close())
	}
	ready.Store(true)
	logger.Info("node ready", slog.String("node", ex.NodeID()), slog.Int("pid", os.Getpid()),
		slog.Any("queues", cfg.queues), slog.Any("tags", cfg.tags))

	<-ctx.Done()
	ready.Store(false) // draining
	logger.Info("node stopping", slog.String("node", ex.NodeID()))
	if err := ex.Close(); err != nil {
		return fmt.Errorf("closing the executor: %w", err)
	}
	logger.Info("node stopped", slog.String("node", cfg.node))
	return nil
}

// clusterConfig is the membership configuration of the flags: the loopback
// timings of cluster.DefaultLocalConfig (fast failure detection), on the
// gossip address given.
func clusterConfig(cfg config, logger *slog.Logger) (cluster.Config, error) {
	host, portText, err := net.SplitHostPort(cfg.gossip)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("invalid --gossip %q: %w", cfg.gossip, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("invalid --gossip %q: bad port", cfg.gossip)
	}
	cc := cluster.DefaultLocalConfig()
	cc.BindAddr, cc.GossipPort = host, port
	cc.RemoteAddr = cfg.remote
	cc.Seeds = cfg.seeds
	// Nodes started together, each with the others as seeds, find each
	// other whichever starts first; a node whose key or label is wrong
	// gives up after this and exits with the reason.
	cc.JoinRetry = 10 * time.Second
	cc.SecretKey = cfg.gossipKey
	cc.Label = cfg.label
	cc.Logger = logger.With(slog.String("component", "cluster"))
	if cfg.tlsCert != "" {
		t, err := cluster.LoadTLS(cfg.tlsCert, cfg.tlsKey, cfg.tlsCA)
		if err != nil {
			return cluster.Config{}, err
		}
		cc.TLS = t
	} else {
		logger.Warn("remote between nodes is plain gRPC: anyone who reaches --remote can message this node's actors; use --tls-cert, --tls-key and --tls-ca", slog.String("remote", cfg.remote))
	}
	if cfg.gossipKey == nil {
		logger.Warn("gossip is not encrypted: set --gossip-key")
	}
	return cc, nil
}

// startAdmin serves /healthz (200 while the process runs) and /readyz (200
// while ready is true, 503 otherwise) on addr, and logs the address it
// listens on (addr may use port 0). The returned function stops it.
func startAdmin(addr string, ready *atomic.Bool, logger *slog.Logger) (func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on --admin %s: %w", addr, err)
	}
	srv := &http.Server{Handler: adminHandler(ready), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("admin listening", slog.String("addr", ln.Addr().String()))
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}

// adminHandler is the admin endpoints' handler.
func adminHandler(ready *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n") //nolint:errcheck // a failed write to the client is the client's loss
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ready\n") //nolint:errcheck // as above
	})
	return mux
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
