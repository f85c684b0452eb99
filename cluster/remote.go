package cluster

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/grpclog"
)

// silenceGRPC sets gRPC's process-wide logger once, before the first remote
// endpoint starts: gRPC's connection chatter is not ours to log, and
// protoactor's remote, which used to set it on every Start, no longer does
// (third_party/protoactor-go/PATCHES.md). grpclog's logger is a plain
// global that gRPC's goroutines read whenever they log, so setting it again
// while another endpoint runs in the same process is a data race.
var silenceGRPC = sync.OnceFunc(func() {
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, io.Discard))
})

// Remote is a node's protoactor remote endpoint: where the other members
// send its actors messages, and how it sends theirs.
type Remote struct {
	r      *remote.Remote
	system *actor.ActorSystem
	addr   string
}

// StartRemote starts the remote endpoint of system on addr (host:port; port
// 0 picks a free one) and returns it. With t it uses mutual TLS: peers
// without a certificate from the cluster's CA are refused, and so are
// messages to peers without one. Without t the endpoint is plain gRPC, and
// anyone who reaches the port can message any actor: bind it to loopback or
// a private network.
//
// Every message sent through it must be a protobuf message whose Go type is
// linked into every node's binary (package messages).
func StartRemote(system *actor.ActorSystem, addr string, t *TLS) (_ *Remote, err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: remote address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("cluster: remote address %q: invalid port", addr)
	}
	if host == "" {
		return nil, fmt.Errorf("cluster: remote address %q: a host is required (the other members dial it)", addr)
	}
	// remote.Start panics when it cannot listen: find out first, so that a
	// taken port is an error (a race with another process in between is
	// still caught by the recover below).
	if port != 0 {
		ln, lerr := net.Listen("tcp", addr)
		if lerr != nil {
			return nil, fmt.Errorf("cluster: remote address %s: %w", addr, lerr)
		}
		if cerr := ln.Close(); cerr != nil {
			return nil, fmt.Errorf("cluster: remote address %s: %w", addr, cerr)
		}
	}
	opts := []remote.ConfigOption{}
	if t != nil {
		if t.Server == nil || t.Client == nil {
			return nil, errors.New("cluster: TLS needs both a server and a client configuration (LoadTLS)")
		}
		opts = append(opts,
			remote.WithServerOptions(grpc.Creds(credentials.NewTLS(t.Server))),
			remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(t.Client))))
	} else {
		opts = append(opts, remote.WithDialOptions(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	silenceGRPC()
	r := remote.NewRemote(system, remote.Configure(host, port, opts...))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cluster: starting the remote endpoint on %s: %v", addr, p)
		}
	}()
	r.Start()
	return &Remote{r: r, system: system, addr: system.ProcessRegistry.Address}, nil
}

// Addr returns the host:port the endpoint listens on, as the other members
// reach it.
func (r *Remote) Addr() string { return r.addr }

// Stop closes the endpoint: its connections to the other members and
// theirs to it are closed, and queued messages are dropped (each was
// written to the database before it was sent). It waits up to
// writersStopWait for the connections to this node's peers to close.
func (r *Remote) Stop() {
	r.stopWriters()
	r.r.Shutdown(false)
}

// endpointSupervisor is the name under which protoactor's remote spawns the
// parent of its endpoint writers (one per peer, each holding a gRPC client
// connection) and endpoint watchers.
const endpointSupervisor = "EndpointSupervisor"

// writersStopWait bounds how long Stop waits for the endpoint writers. A
// writer stops at once, unless it is still trying to reach a peer that does
// not answer: protoactor's remote then sleeps 2 s between tries inside the
// writer's Receive, and it stops after its last try.
const writersStopWait = 2 * time.Second

// stopWriters stops the endpoint writers and waits for them to have closed
// their gRPC client connections. remote.Shutdown(false) closes the server
// only: the writers' connections, and gRPC's goroutines that reconnect them,
// would outlive the endpoint. Shutdown(true) stops them, but then waits up
// to 10 s for the peers to close their streams to this node.
func (r *Remote) stopWriters() {
	sup := r.system.NewLocalPID(endpointSupervisor)
	gone := make(chan struct{})
	watcher := r.system.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(sup)
		case *actor.Terminated:
			if m.Who.Equal(sup) {
				close(gone)
			}
		}
	}))
	r.system.Root.Stop(sup)
	t := time.NewTimer(writersStopWait)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
	}
	r.system.Root.Stop(watcher)
}
