package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
)

// Config configures a node's membership. It is a plain struct: start from
// [DefaultLocalConfig], set NodeName, RemoteAddr, Seeds and Queues, and pass it
// to [Join], which validates it with [Config.Validate]. A Config is not
// modified by Join.
type Config struct {
	// NodeName names the node in the cluster. It is required and must be
	// unique among the live members; a second node with a live node's name
	// is refused by the others.
	NodeName string

	// BindAddr is the IP address the gossip listeners (UDP and TCP) bind to.
	BindAddr string

	// GossipPort is the gossip port, UDP and TCP. 0 picks a free port; read
	// it back with [Membership.GossipPort].
	GossipPort int

	// AdvertiseAddr is the IP address the other members reach this node's
	// gossip on. Empty: BindAddr, or a private address of the host when
	// BindAddr is 0.0.0.0.
	AdvertiseAddr string

	// Seeds are the gossip addresses (host:port) of members to join through.
	// Empty: this node starts a new cluster. Otherwise [Join] fails unless
	// at least one seed answers.
	Seeds []string

	// Queues are the queues this node serves; empty serves every queue.
	// They travel in the node's metadata.
	Queues []string

	// Functions, when not nil, names the functions this node runs, so that
	// placement sends it only executions it can run. They travel in the
	// node's metadata as a 32-byte filter (FunctionFilter).
	Functions []string

	// RemoteAddr is the host:port of the node's protoactor remote endpoint,
	// where the other members send its actors messages. It is required and
	// travels in the node's metadata.
	RemoteAddr string

	// JoinRetry is how long Join keeps trying the seeds when none answers,
	// listening meanwhile, so that nodes started together, each with the
	// others as seeds, find each other whichever starts first. 0: one try.
	// A node with the wrong SecretKey or Label never gets an answer, and
	// Join fails once JoinRetry has passed.
	JoinRetry time.Duration

	// SecretKey encrypts gossip with AES-GCM: 16, 24 or 32 bytes for
	// AES-128, -192 or -256. Empty: gossip is plain text. Every member must
	// have the same key; a node without it cannot join.
	SecretKey []byte

	// Label is sent with every gossip packet and stream; a member drops
	// gossip with another label, so clusters with different labels on one
	// network stay apart. At most 255 bytes; empty is a label too.
	Label string

	// ProbeInterval is how often the node probes a random member for
	// liveness, and ProbeTimeout how long it waits for the ack before
	// asking others to probe it indirectly. ProbeTimeout must be shorter
	// than ProbeInterval.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration

	// SuspicionMult scales how long a suspect member has to refute the
	// suspicion before it is declared dead:
	// SuspicionMult × max(1, log10(N)) × ProbeInterval when few members can
	// confirm the suspicion, up to six times that otherwise.
	SuspicionMult int

	// GossipInterval is how often the node gossips queued messages (joins,
	// suspicions, deaths, leaves) to a few random members.
	GossipInterval time.Duration

	// TCPTimeout bounds a gossip stream: a join or push-pull exchange, or
	// the TCP probe that follows a failed UDP probe. Join returns at most
	// this long after its ctx ends.
	TCPTimeout time.Duration

	// DeadNodeReclaimTime is how long after a member is declared dead
	// another node may join under its name from a different address (a
	// restarted process on a new port). 0: only once memberlist forgets the
	// dead member (30 s). A node that joins under the name of a member the
	// others still see alive or suspect, or dead for less than this, is
	// refused by them (memberlist logs "Conflicting address") although its
	// Join succeeds: restart a node under its old name only after the others
	// have declared the old one dead, or give each process a new name.
	DeadNodeReclaimTime time.Duration

	// TLS, when set, is the mutual TLS of the node's remote endpoint
	// ([StartRemote]): members without a certificate of the cluster's CA
	// cannot send to it. Nil: plain gRPC.
	TLS *TLS

	// Logger receives memberlist's log, DEBUG as Debug, INFO as Info, WARN as
	// Warn and ERR as Error, and the package's own. Nil: slog.Default().
	Logger *slog.Logger
}

// DefaultLocalConfig returns a Config for nodes on one host, talking over
// loopback: the three-process SQLite setup and in-process tests. NodeName,
// RemoteAddr, Seeds and Queues have no default; set them.
//
// Its timings detect a dead member in about one to two seconds, so that a
// survivor takes over the dead member's executions quickly. A short probe
// interval also suspects a member falsely more often when the host is busy;
// the lease epoch in the database makes a false suspicion cost time, never
// correctness.
func DefaultLocalConfig() Config {
	return Config{
		BindAddr:   "127.0.0.1", // loopback: the members share a host
		GossipPort: 0,           // pick a free port; read it back with GossipPort

		// A round trip over loopback takes microseconds. Probing a member
		// every 200 ms (memberlist's local preset: 1 s) finds a dead one
		// within about one interval, since each member probes a different
		// member each interval.
		ProbeInterval: 200 * time.Millisecond,
		// The ack timeout leaves room for GC pauses and the race detector,
		// and half the interval for the indirect and TCP probes after it.
		ProbeTimeout: 100 * time.Millisecond,
		// A suspect has 4 × 200 ms = 800 ms to refute before it is declared
		// dead in a cluster of up to 3 (memberlist's minimum suspicion is
		// SuspicionMult × ProbeInterval below 10 members, and with 3 no
		// confirmations are awaited); with more members, confirmations from
		// other probers shorten it from 6 × that to 800 ms.
		SuspicionMult: 4,
		// Suspicions and deaths spread in a few rounds of 100 ms
		// (memberlist's local preset).
		GossipInterval: 100 * time.Millisecond,
		// A join or push-pull over loopback that takes a second will not
		// finish (memberlist's local preset).
		TCPTimeout: time.Second,
		// A process restarted on a new port may take back its name as soon
		// as its old self is declared dead (memberlist reads 0 as never, so
		// the shortest wait it allows), instead of being refused for the
		// 30 s memberlist keeps dead members.
		DeadNodeReclaimTime: time.Nanosecond,
	}
}

// Validate reports the first thing wrong with c, or nil.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("cluster: NodeName is required")
	case net.ParseIP(c.BindAddr) == nil:
		return fmt.Errorf("cluster: BindAddr %q is not an IP address", c.BindAddr)
	case c.GossipPort < 0 || c.GossipPort > 65535:
		return fmt.Errorf("cluster: GossipPort %d is out of range 0-65535", c.GossipPort)
	case c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil:
		return fmt.Errorf("cluster: AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	case c.RemoteAddr == "":
		return errors.New("cluster: RemoteAddr is required")
	case len(c.Label) > memberlist.LabelMaxSize:
		return fmt.Errorf("cluster: Label is %d bytes, more than %d", len(c.Label), memberlist.LabelMaxSize)
	case c.ProbeInterval <= 0:
		return fmt.Errorf("cluster: ProbeInterval %s is not positive", c.ProbeInterval)
	case c.ProbeTimeout <= 0 || c.ProbeTimeout >= c.ProbeInterval:
		return fmt.Errorf("cluster: ProbeTimeout %s is not between 0 and ProbeInterval %s", c.ProbeTimeout, c.ProbeInterval)
	case c.SuspicionMult < 1:
		return fmt.Errorf("cluster: SuspicionMult %d is less than 1", c.SuspicionMult)
	case c.GossipInterval <= 0:
		return fmt.Errorf("cluster: GossipInterval %s is not positive", c.GossipInterval)
	case c.TCPTimeout <= 0:
		return fmt.Errorf("cluster: TCPTimeout %s is not positive", c.TCPTimeout)
	case c.JoinRetry < 0:
		return fmt.Errorf("cluster: JoinRetry %s is negative", c.JoinRetry)
	case c.DeadNodeReclaimTime < 0:
		return fmt.Errorf("cluster: DeadNodeReclaimTime %s is negative", c.DeadNodeReclaimTime)
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return fmt.Errorf("cluster: SecretKey is %d bytes, not 16, 24 or 32", len(c.SecretKey))
	}
	if _, _, err := net.SplitHostPort(c.RemoteAddr); err != nil {
		return fmt.Errorf("cluster: RemoteAddr %q is not host:port: %w", c.RemoteAddr, err)
	}
	for _, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return fmt.Errorf("cluster: seed %q is not host:port: %w", s, err)
		}
	}
	seen := make(map[string]bool, len(c.Queues))
	for _, q := range c.Queues {
		if q == "" {
			return errors.New("cluster: a queue name is empty")
		}
		if seen[q] {
			return fmt.Errorf("cluster: queue %q is listed twice", q)
		}
		seen[q] = true
	}
	meta, err := encodeMeta(c.meta())
	if err != nil {
		return fmt.Errorf("cluster: encoding node metadata: %w", err)
	}
	if len(meta) > memberlist.MetaMaxSize {
		return fmt.Errorf("cluster: node metadata (RemoteAddr and Queues) is %d bytes, more than memberlist's %d", len(meta), memberlist.MetaMaxSize)
	}
	return nil
}

// meta returns the node's metadata.
func (c Config) meta() nodeMeta {
	m := nodeMeta{RemoteAddr: c.RemoteAddr, Queues: slices.Clone(c.Queues)}
	if c.Functions != nil {
		m.Functions = NewFunctionFilter(c.Functions)
	}
	return m
}
