package cluster

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Remote is a node's protoactor remote endpoint: where the other members
// send its actors messages, and how it sends theirs.
type Remote struct {
	r    *remote.Remote
	addr string
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
	r := remote.NewRemote(system, remote.Configure(host, port, opts...))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cluster: starting the remote endpoint on %s: %v", addr, p)
		}
	}()
	r.Start()
	return &Remote{r: r, addr: system.ProcessRegistry.Address}, nil
}

// Addr returns the host:port the endpoint listens on, as the other members
// reach it.
func (r *Remote) Addr() string { return r.addr }

// Stop closes the endpoint: its connections to the other members and
// theirs to it are closed, and queued messages are dropped (each was
// written to the database before it was sent).
func (r *Remote) Stop() { r.r.Shutdown(false) }
