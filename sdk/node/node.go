// Package node runs one serving node of Stent on a SQLite file or a
// PostgreSQL database: the whole of a stent-node process (flags, STENT_*
// variables, backend, cluster, TLS, admin endpoints, signal handling) as one
// call, for a binary that holds your own durable functions.
//
// A node runs only the durable functions registered in its binary. Declare
// them with sdk.Durable in your packages, import those packages in your
// main, and hand the command line to Main:
//
//	import (
//		"os"
//
//		_ "example.com/shop/orders" // registers the orders functions
//		"github.com/stent-go/stent/sdk/node"
//	)
//
//	func main() { os.Exit(node.Main(os.Args[1:])) }
//
// Or configure it in code with Run and a Config. Nodes on one database share
// its work through leases: a node that dies loses its leases, and another
// claims its executions once they run out (a node restarted under the same
// node ID takes its own back at once). With a gossip address the nodes also
// form a cluster: they gossip membership, send each other messages over
// protoactor remote, and a member declared dead has its executions taken
// over in about a second instead of at the end of its leases. Every node
// that serves a queue must register the functions started on it.
package node

import (
	"context"
	"errors"
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
	"github.com/stent-go/stent/internal/console"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/persistence/sqlite"
	"github.com/stent-go/stent/sdk"
)

// Exit codes of Main.
const (
	ExitOK    = 0 // stopped by SIGTERM or SIGINT after a clean Close
	ExitError = 1 // failed while running, or Close failed
	ExitUsage = 2 // bad flags or configuration, or the database cannot be opened
)

// DefaultAdminAddr is the admin address Main uses when neither --admin nor
// STENT_ADMIN is set: a free port on the loopback interface, logged at start.
const DefaultAdminAddr = "127.0.0.1:0"

// DefaultRemoteAddr is the remote address of a cluster member when Config
// leaves it empty: a free port on the loopback interface.
const DefaultRemoteAddr = "127.0.0.1:0"

// Config configures a node for Run. Only DB is required; every other zero
// field takes the default its comment gives.
type Config struct {
	// DB is the database: a SQLite file path (created if missing), or a
	// PostgreSQL DSN starting with postgres:// or postgresql://.
	DB string
	// Schema is the PostgreSQL schema of the tables; "" is public. It is
	// an error with SQLite.
	Schema string
	// NodeID names this node, unique among live nodes; reuse it on restart
	// to take back this node's leases at once. "" is hostname-pid.
	NodeID string
	// Queues are the queues this node serves; empty serves every queue.
	Queues []string
	// Tags are the node's worker tags (sdk.WithWorkerTags): it runs the
	// executions whose every tag is one of them, and untagged ones.
	Tags []string
	// Concurrency caps the executions run at once; 0 is the SDK default
	// (1000).
	Concurrency int
	// LeaseDuration is how long a claim holds an execution without
	// renewal; 0 is the SDK default (10s).
	LeaseDuration time.Duration
	// Functions, when not empty, restricts the functions this node runs
	// to those named (each registered in the binary); empty runs every
	// registered function. Executions of other functions stay pending for
	// a node that has them.
	Functions []string
	// Retention, when positive, makes the node delete the executions that
	// finished more than Retention ago, with their journals, in small
	// batches (sdk.WithRetention); 0 keeps them.
	Retention time.Duration
	// AdminAddr is the host:port of the HTTP endpoints /healthz (200 while
	// the process runs), /readyz (200 while the node serves, 503 while
	// it starts or stops), /metrics and the web console (/ and /api/,
	// docs/console.md); "" serves none. Port 0 picks a free port, logged
	// as "admin listening".
	AdminAddr string
	// AdminToken is the console's admin token (--admin-token,
	// STENT_ADMIN_TOKEN): the web console and its API at AdminAddr refuse
	// writes without it and hide payloads from reads without it. It is
	// required when AdminAddr is not a loopback address.
	AdminToken string
	// TraceURL, when set, links the console's trace IDs to a tracing UI:
	// "{trace_id}" in it is replaced, e.g.
	// "http://jaeger:16686/trace/{trace_id}".
	TraceURL string
	// Logger receives the node's logs; nil is JSON on stderr at info.
	Logger *slog.Logger

	// Gossip is the host:port of this node's gossip (UDP and TCP). Set it
	// to run in a cluster; "" runs the node alone on the database, and the
	// cluster fields below must then be empty.
	Gossip string
	// RemoteAddr is the host:port of this node's remote endpoint, where the
	// other members send it messages; "" is DefaultRemoteAddr.
	RemoteAddr string
	// Seeds are gossip addresses of members to join; empty starts a new
	// cluster. Nodes started together may each list the others.
	Seeds []string
	// GossipKey, when set, encrypts gossip: 16, 24 or 32 bytes, the same
	// on every member.
	GossipKey []byte
	// ClusterLabel keeps clusters on one network apart.
	ClusterLabel string
	// TLSCert, TLSKey and TLSCA are PEM files (this node's certificate,
	// its key, the cluster CA) that turn on mutual TLS between members:
	// all three or none.
	TLSCert, TLSKey, TLSCA string

	// ExecutorOptions are added to the node's own (Serve, WithNodeID,
	// WithQueues, WithConcurrency, WithLeaseDuration, WithLogger,
	// WithFunctions, WithRetention, WithNodeAddress, WithCluster), after
	// them, so they can override them.
	ExecutorOptions []sdk.ExecutorOption
	// Setup, when set, runs once the configuration is checked and before
	// the executor starts; the cleanup it returns runs after the executor
	// is closed. Use it to open what your functions need per node (a
	// connection pool, a client). An error from Setup stops Run.
	Setup func(ctx context.Context, cfg Config) (cleanup func() error, err error)
}

// Option changes the Config that Main builds from the command line, after
// flags and variables are read.
type Option func(*Config)

// WithSetup sets Config.Setup for Main.
func WithSetup(setup func(ctx context.Context, cfg Config) (func() error, error)) Option {
	return func(c *Config) { c.Setup = setup }
}

// WithExecutorOptions adds executor options to the Config of Main.
func WithExecutorOptions(opts ...sdk.ExecutorOption) Option {
	return func(c *Config) { c.ExecutorOptions = append(c.ExecutorOptions, opts...) }
}

// configError is a bad flag, configuration or database: exit code 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// IsConfigError reports whether err, from Run, is a problem of the
// configuration (a bad value, a database that cannot be opened, an address
// that cannot be listened on) rather than a failure while serving.
func IsConfigError(err error) bool { return errors.As(err, new(configError)) }

// Main runs a node configured by args (the command line without the
// program name; -h lists the flags) and the STENT_* variables, until
// SIGTERM or SIGINT, and returns the process exit code: ExitOK, ExitError
// or ExitUsage. Options change the configuration after it is read.
func Main(args []string, opts ...Option) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return run(ctx, args, os.Getenv, os.Stderr, opts)
}

// run is Main with the stop signal as ctx and logs going to stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, opts []Option) int {
	cfg, err := parse(args, getenv, stderr)
	if errors.Is(err, errHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "stent-node:", err)
		return ExitUsage
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := Run(ctx, cfg); err != nil {
		cfg.Logger.Error("node failed", slog.Any("error", err))
		if IsConfigError(err) {
			fmt.Fprintln(stderr, "stent-node:", err)
			return ExitUsage
		}
		return ExitError
	}
	return ExitOK
}

// IsPostgres reports whether db names a PostgreSQL database (a DSN
// starting with postgres:// or postgresql://) rather than a SQLite file.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// DefaultNodeID is the node ID of a Config that sets none: hostname-pid.
func DefaultNodeID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return host + "-" + strconv.Itoa(os.Getpid())
}

// check validates cfg and fills its defaults.
func (cfg *Config) check() error {
	if cfg.DB == "" {
		return errors.New("no database: set Config.DB (--db or STENT_DB) to a SQLite path or a postgres:// DSN")
	}
	if cfg.Schema != "" && !IsPostgres(cfg.DB) {
		return errors.New("a schema applies to PostgreSQL only: drop --schema (STENT_SCHEMA) or use a postgres:// DSN")
	}
	if cfg.Concurrency < 0 || cfg.LeaseDuration < 0 || cfg.Retention < 0 {
		return errors.New("negative concurrency, lease duration or retention: use 0 for the default")
	}
	if n := len(cfg.GossipKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("gossip key of %d bytes: want 16, 24 or 32", n)
	}
	tlsSet := 0
	for _, f := range []string{cfg.TLSCert, cfg.TLSKey, cfg.TLSCA} {
		if f != "" {
			tlsSet++
		}
	}
	if tlsSet != 0 && tlsSet != 3 {
		return errors.New("mutual TLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	if cfg.Gossip == "" && (len(cfg.Seeds) > 0 || cfg.GossipKey != nil || cfg.ClusterLabel != "" || tlsSet > 0) {
		return errors.New("--seeds, --gossip-key, --cluster-label and --tls-* need --gossip (the cluster)")
	}
	if cfg.AdminAddr != "" && cfg.AdminToken == "" && !console.Loopback(cfg.AdminAddr) {
		return fmt.Errorf("the admin address %s is not a loopback address: set --admin-token (STENT_ADMIN_TOKEN) so that the console refuses writes without it, or bind --admin to 127.0.0.1", cfg.AdminAddr)
	}
	if cfg.TraceURL != "" && !strings.Contains(cfg.TraceURL, "{trace_id}") {
		return fmt.Errorf("--trace-url %q has no {trace_id} to replace with an execution's trace ID", cfg.TraceURL)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = DefaultNodeID()
	}
	if cfg.RemoteAddr == "" {
		cfg.RemoteAddr = DefaultRemoteAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return nil
}

// openBackend opens the database cfg.DB names: PostgreSQL for a
// postgres:// or postgresql:// DSN, SQLite otherwise.
func openBackend(ctx context.Context, cfg Config) (persistence.Backend, error) {
	if IsPostgres(cfg.DB) {
		opts := []postgres.Option{postgres.WithLogger(cfg.Logger)}
		if cfg.Schema != "" {
			opts = append(opts, postgres.WithSchema(cfg.Schema))
		}
		b, err := postgres.Open(ctx, cfg.DB, opts...)
		if err != nil {
			return nil, configError{err}
		}
		return b, nil
	}
	b, err := sqlite.Open(cfg.DB)
	if err != nil {
		return nil, configError{err}
	}
	return b, nil
}

// Run runs a node configured by cfg until ctx ends, then closes it (its
// running executions reach their next durable point and it gives up its
// leases). It returns nil after a clean stop. An error for which
// IsConfigError is true names a bad configuration.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.check(); err != nil {
		return configError{err}
	}
	logger := cfg.Logger
	var ready atomic.Bool
	var adminAddr string
	var metrics *nodeMetrics
	var web consoleSlot
	if cfg.AdminAddr != "" {
		if metrics, err = newNodeMetrics(cfg.NodeID); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, metrics.shutdown()) }()
		addr, stopAdmin, err := startAdmin(cfg.AdminAddr, &ready, metrics.handler, &web, logger)
		if err != nil {
			return configError{err}
		}
		adminAddr = addr
		defer func() { err = errors.Join(err, stopAdmin()) }()
	}
	opts := []sdk.ExecutorOption{
		sdk.Serve(),
		sdk.WithNodeID(cfg.NodeID),
		sdk.WithLogger(logger),
		sdk.WithConcurrency(cfg.Concurrency),
		sdk.WithLeaseDuration(cfg.LeaseDuration),
	}
	if len(cfg.Queues) > 0 {
		opts = append(opts, sdk.WithQueues(cfg.Queues...))
	}
	if len(cfg.Tags) > 0 {
		opts = append(opts, sdk.WithWorkerTags(cfg.Tags...))
	}
	if adminAddr != "" {
		opts = append(opts, sdk.WithNodeAddress("admin", adminAddr), sdk.WithMeterProvider(metrics.provider))
	}
	if len(cfg.Functions) > 0 {
		opts = append(opts, sdk.WithFunctions(cfg.Functions...))
	}
	if cfg.Retention > 0 {
		opts = append(opts, sdk.WithRetention(cfg.Retention))
	}
	if cfg.Gossip != "" {
		cc, err := clusterConfig(cfg)
		if err != nil {
			return configError{err}
		}
		opts = append(opts, sdk.WithCluster(cc))
	}
	opts = append(opts, cfg.ExecutorOptions...)

	backend, err := openBackend(ctx, cfg)
	if err != nil {
		return err
	}
	if cfg.Setup != nil {
		cleanup, err := cfg.Setup(ctx, cfg)
		if err != nil {
			return errors.Join(configError{fmt.Errorf("node setup: %w", err)}, backend.Close())
		}
		if cleanup != nil {
			defer func() { err = errors.Join(err, cleanup()) }()
		}
	}
	return serve(ctx, cfg, backend, opts, &ready, &web)
}

// serve starts the executor on backend and runs it until ctx ends.
func serve(ctx context.Context, cfg Config, backend persistence.Backend, opts []sdk.ExecutorOption, ready *atomic.Bool, web *consoleSlot) error {
	logger := cfg.Logger
	// A node never runs a durable function outside the executor: a call
	// that finds none fails with sdk.ErrNoExecutor instead of running
	// directly, not durably.
	sdk.RequireExecutor(true)
	ex, err := sdk.Bootstrap(ctx, backend, opts...)
	if err != nil {
		return errors.Join(fmt.Errorf("starting the executor: %w", err), backend.Close())
	}
	if cfg.AdminAddr != "" {
		h, err := console.New(console.Config{Executor: ex, Token: cfg.AdminToken, TraceURL: cfg.TraceURL,
			Logger: logger.With(slog.String("component", "console"))})
		if err != nil {
			return errors.Join(configError{err}, ex.Close())
		}
		web.h.Store(h)
	}
	ready.Store(true)
	logger.Info("node ready", slog.String("node", ex.NodeID()), slog.Int("pid", os.Getpid()),
		slog.Any("queues", cfg.Queues), slog.Any("tags", cfg.Tags))

	<-ctx.Done()
	ready.Store(false) // draining
	logger.Info("node stopping", slog.String("node", ex.NodeID()))
	if err := ex.Close(); err != nil {
		return fmt.Errorf("closing the executor: %w", err)
	}
	logger.Info("node stopped", slog.String("node", cfg.NodeID))
	return nil
}

// clusterConfig is the membership configuration of cfg: the loopback
// timings of cluster.DefaultLocalConfig (fast failure detection), on the
// gossip address given.
func clusterConfig(cfg Config) (cluster.Config, error) {
	host, portText, err := net.SplitHostPort(cfg.Gossip)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("invalid --gossip %q: %w", cfg.Gossip, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return cluster.Config{}, fmt.Errorf("invalid --gossip %q: bad port", cfg.Gossip)
	}
	cc := cluster.DefaultLocalConfig()
	cc.BindAddr, cc.GossipPort = host, port
	cc.RemoteAddr = cfg.RemoteAddr
	cc.Seeds = cfg.Seeds
	// Nodes started together, each with the others as seeds, find each
	// other whichever starts first; a node whose key or label is wrong
	// gives up after this and exits with the reason.
	cc.JoinRetry = 10 * time.Second
	cc.SecretKey = cfg.GossipKey
	cc.Label = cfg.ClusterLabel
	cc.Logger = cfg.Logger.With(slog.String("component", "cluster"))
	if cfg.TLSCert != "" {
		t, err := cluster.LoadTLS(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
		if err != nil {
			return cluster.Config{}, err
		}
		cc.TLS = t
	} else {
		cfg.Logger.Warn("remote between nodes is plain gRPC: anyone who reaches --remote can message this node's actors; use --tls-cert, --tls-key and --tls-ca", slog.String("remote", cfg.RemoteAddr))
	}
	if cfg.GossipKey == nil {
		cfg.Logger.Warn("gossip is not encrypted: set --gossip-key")
	}
	return cc, nil
}

// startAdmin serves /healthz (200 while the process runs), /readyz (200
// while ready is true, 503 otherwise) and /metrics (the node's metrics in
// the Prometheus text format) on addr, and logs the address it listens on
// (addr may use port 0), which it returns with a function that stops it.
func startAdmin(addr string, ready *atomic.Bool, metrics http.Handler, web *consoleSlot, logger *slog.Logger) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listening on --admin %s: %w", addr, err)
	}
	srv := &http.Server{Handler: adminHandler(ready, metrics, web), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	logger.Info("admin listening", slog.String("addr", ln.Addr().String()))
	return ln.Addr().String(), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}, nil
}

// consoleSlot holds the web console once the executor it reads runs.
type consoleSlot struct {
	h atomic.Pointer[console.Handler]
}

// ServeHTTP serves the console, or 503 while the node starts.
func (s *consoleSlot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := s.h.Load()
	if h == nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error": "the node is starting: the console serves once its executor runs"}`+"\n") //nolint:errcheck // the client's loss
		return
	}
	h.ServeHTTP(w, r)
}

// adminHandler is the admin endpoints' handler: health, readiness,
// metrics, and the web console at every other path.
func adminHandler(ready *atomic.Bool, metrics http.Handler, web http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", web)
	mux.Handle("GET /metrics", metrics)
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
