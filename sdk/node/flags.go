package node

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// errHelp is what parse returns for -h: Main exits 0.
var errHelp = flag.ErrHelp

// parse reads the flags, each defaulting to its STENT_* variable, into a
// Config whose Logger writes JSON to out at the level asked.
func parse(args []string, getenv func(string) string, out io.Writer) (Config, error) {
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
	nodeID := fs.String("node", env("STENT_NODE", ""), "node ID, unique among live nodes; reuse it on restart to take back leases at once (env STENT_NODE; default hostname-pid)")
	queues := fs.String("queues", env("STENT_QUEUES", ""), "comma-separated queues to serve (env STENT_QUEUES; default every queue)")
	tags := fs.String("tags", env("STENT_TAGS", ""), "comma-separated tags of this node: it runs executions whose every tag is one of them, and untagged ones (env STENT_TAGS; default none)")
	concurrency := fs.String("concurrency", env("STENT_CONCURRENCY", "0"), "most executions run at once (env STENT_CONCURRENCY; 0: the SDK default, 1000)")
	lease := fs.String("lease", env("STENT_LEASE", "0s"), "lease duration (env STENT_LEASE; 0: the SDK default, 10s)")
	functions := fs.String("functions", env("STENT_FUNCTIONS", ""), "comma-separated functions this node runs (env STENT_FUNCTIONS; default every function in the binary)")
	retention := fs.String("retention", env("STENT_RETENTION", "0s"), "delete executions finished longer ago than this, e.g. 720h (env STENT_RETENTION; 0 keeps them)")
	admin := fs.String("admin", env("STENT_ADMIN", DefaultAdminAddr), "HTTP address of /healthz, /readyz, /metrics and the web console; empty disables (env STENT_ADMIN)")
	adminToken := fs.String("admin-token", env("STENT_ADMIN_TOKEN", ""), "admin token of the web console: writes need it, reads without it see no payloads; required when --admin is not loopback (env STENT_ADMIN_TOKEN)")
	traceURL := fs.String("trace-url", env("STENT_TRACE_URL", ""), "link of a trace in your tracing UI, with {trace_id}, e.g. http://jaeger:16686/trace/{trace_id}; the console links trace IDs to it (env STENT_TRACE_URL)")
	level := fs.String("log-level", env("STENT_LOG_LEVEL", "info"), "debug, info, warn or error (env STENT_LOG_LEVEL)")
	gossip := fs.String("gossip", env("STENT_GOSSIP", ""), "host:port of this node's gossip (UDP and TCP); set it to run in a cluster (env STENT_GOSSIP)")
	remote := fs.String("remote", env("STENT_REMOTE", DefaultRemoteAddr), "host:port of this node's remote endpoint, where the other members send it messages (env STENT_REMOTE)")
	seeds := fs.String("seeds", env("STENT_SEEDS", ""), "comma-separated gossip addresses of members to join; empty starts a new cluster (env STENT_SEEDS)")
	gossipKey := fs.String("gossip-key", env("STENT_GOSSIP_KEY", ""), "base64 of a 16, 24 or 32-byte key that encrypts gossip; every member needs the same (env STENT_GOSSIP_KEY)")
	label := fs.String("cluster-label", env("STENT_CLUSTER_LABEL", ""), "label that keeps clusters on one network apart (env STENT_CLUSTER_LABEL)")
	tlsCert := fs.String("tls-cert", env("STENT_TLS_CERT", ""), "PEM certificate of this node for mutual TLS between nodes (env STENT_TLS_CERT)")
	tlsKey := fs.String("tls-key", env("STENT_TLS_KEY", ""), "PEM key of --tls-cert (env STENT_TLS_KEY)")
	tlsCA := fs.String("tls-ca", env("STENT_TLS_CA", ""), "PEM certificate of the cluster CA; with --tls-cert and --tls-key it turns mutual TLS on (env STENT_TLS_CA)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := Config{DB: *db, Schema: *schema, NodeID: *nodeID, AdminAddr: *admin, AdminToken: *adminToken, TraceURL: *traceURL, Gossip: *gossip,
		RemoteAddr: *remote, ClusterLabel: *label, TLSCert: *tlsCert, TLSKey: *tlsKey, TLSCA: *tlsCA,
		Queues: splitList(*queues), Tags: splitList(*tags), Seeds: splitList(*seeds), Functions: splitList(*functions)}
	if cfg.DB == "" {
		return Config{}, errors.New("--db (or STENT_DB) is required: a SQLite path or a postgres:// DSN")
	}
	var err error
	if cfg.Concurrency, err = strconv.Atoi(*concurrency); err != nil || cfg.Concurrency < 0 {
		return Config{}, fmt.Errorf("invalid --concurrency %q: want a count ≥ 0", *concurrency)
	}
	if cfg.LeaseDuration, err = time.ParseDuration(*lease); err != nil || cfg.LeaseDuration < 0 {
		return Config{}, fmt.Errorf("invalid --lease %q: want a duration such as 10s", *lease)
	}
	if cfg.Retention, err = time.ParseDuration(*retention); err != nil || cfg.Retention < 0 {
		return Config{}, fmt.Errorf("invalid --retention %q: want a duration such as 720h", *retention)
	}
	var logLevel slog.Level
	if err := logLevel.UnmarshalText([]byte(*level)); err != nil {
		return Config{}, fmt.Errorf("invalid --log-level %q: want debug, info, warn or error", *level)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: logLevel}))
	if *gossipKey != "" {
		if cfg.GossipKey, err = base64.StdEncoding.DecodeString(*gossipKey); err != nil {
			return Config{}, fmt.Errorf("invalid --gossip-key: not base64: %w", err)
		}
	}
	if err := cfg.check(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// splitList is the non-empty trimmed items of a comma-separated list.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
