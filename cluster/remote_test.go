package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/stent-go/stent/messages"
)

// testPKI writes a CA and two node certificates for 127.0.0.1 into dir and
// returns the paths: ca, then cert and key of each node.
func testPKI(t *testing.T, dir string) (ca string, nodes [2][2]string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stent test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
		return p
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	for i := range nodes {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "node"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalECPrivateKey(key)
		require.NoError(t, err)
		nodes[i] = [2]string{write("node"+string(rune('a'+i))+".pem", "CERTIFICATE", der), write("node"+string(rune('a'+i))+"-key.pem", "EC PRIVATE KEY", keyDER)}
	}
	return ca, nodes
}

// inbox is an actor that hands the Wake messages it receives to a channel.
type inbox chan string

func (in inbox) Receive(ctx actor.Context) {
	if m, ok := ctx.Message().(*messages.Wake); ok {
		in <- m.ExecutionId
	}
}

// TestRemoteMutualTLS starts two endpoints with mutual TLS: one member's
// message reaches the other, while a client without a certificate of the
// cluster's CA is refused, and so is a plain (non-TLS) endpoint.
func TestRemoteMutualTLS(t *testing.T) {
	ca, nodes := testPKI(t, t.TempDir())
	tlsA, err := LoadTLS(nodes[0][0], nodes[0][1], ca)
	require.NoError(t, err)
	tlsB, err := LoadTLS(nodes[1][0], nodes[1][1], ca)
	require.NoError(t, err)

	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	sysA, sysB, sysPlain := actor.NewActorSystem(quiet), actor.NewActorSystem(quiet), actor.NewActorSystem(quiet)
	a, err := StartRemote(sysA, "127.0.0.1:0", tlsA)
	require.NoError(t, err)
	defer a.Stop()
	b, err := StartRemote(sysB, "127.0.0.1:0", tlsB)
	require.NoError(t, err)
	defer b.Stop()
	plain, err := StartRemote(sysPlain, "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer plain.Stop()

	got := make(inbox, 4)
	_, err = sysB.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return got }), ExecutionsActor)
	require.NoError(t, err)
	// A PID caches the process it resolved to (here: an endpoint of the
	// sending system), so each system gets a PID of its own.
	sysA.Root.Send(actor.NewPID(b.Addr(), ExecutionsActor), &messages.Wake{ExecutionId: "from-a"})
	select {
	case id := <-got:
		require.Equal(t, "from-a", id)
	case <-time.After(10 * time.Second):
		t.Fatal("a member with the cluster's certificate could not send")
	}

	sysPlain.Root.Send(actor.NewPID(b.Addr(), ExecutionsActor), &messages.Wake{ExecutionId: "from-plain"})
	select {
	case id := <-got:
		t.Fatalf("a plain endpoint's message %q got through", id)
	case <-time.After(2 * time.Second):
	}

	// A TLS client that trusts the CA but has no certificate of its own.
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(ca)
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	conn, err := tls.Dial("tcp", b.Addr(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}})
	if err == nil {
		require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = conn.Read(make([]byte, 1))
		require.NoError(t, conn.Close())
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), "certificate required")

	_, err = LoadTLS(nodes[0][0], nodes[0][1], filepath.Join(t.TempDir(), "missing.pem"))
	require.ErrorContains(t, err, "reading the CA certificate")
	_, err = LoadTLS(nodes[0][0], "", ca)
	require.ErrorContains(t, err, "needs a certificate, its key and the cluster CA")
}

// TestRemoteDiagnosticCallsAreRefused: the remote's gRPC service also has
// two diagnostic calls, which upstream protoactor answers by panicking (a
// panic gRPC does not recover: the process would end). They answer
// PermissionDenied, and the endpoint goes on serving.
func TestRemoteDiagnosticCallsAreRefused(t *testing.T) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	r, err := StartRemote(actor.NewActorSystem(quiet), "127.0.0.1:0", nil)
	require.NoError(t, err)
	defer r.Stop()
	conn, err := grpc.Dial(r.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials())) //nolint:staticcheck // grpc v1.60 (protoactor's) has no NewClient
	require.NoError(t, err)
	defer conn.Close()
	client := remote.NewRemotingClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.ListProcesses(ctx, &remote.ListProcessesRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "ListProcesses: %v", err)
	_, err = client.GetProcessDiagnostics(ctx, &remote.GetProcessDiagnosticsRequest{})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "GetProcessDiagnostics: %v", err)
}

// TestSendAfterStopIsADeadLetter: a message to a member this endpoint
// has not connected to yet, sent after Stop (an execution actor finishing
// while its node stops), is a dead letter. Upstream protoactor panics in
// the sender: its connect asks the endpoint supervisor, which Stop has
// stopped, and reads the dead-letter answer as an endpoint.
func TestSendAfterStopIsADeadLetter(t *testing.T) {
	quiet := actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) })
	sys := actor.NewActorSystem(quiet)
	r, err := StartRemote(sys, "127.0.0.1:0", nil)
	require.NoError(t, err)
	target := actor.NewPID("127.0.0.1:1", "nobody") // never connected to
	dead := make(chan *actor.DeadLetterEvent, 16)
	sub := sys.EventStream.Subscribe(func(ev any) {
		if d, ok := ev.(*actor.DeadLetterEvent); ok && d.PID.Equal(target) {
			dead <- d
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	r.Stop()

	sys.Root.Send(target, &messages.Wake{ExecutionId: "after-stop"})
	select {
	case d := <-dead:
		require.Equal(t, "after-stop", d.Message.(*messages.Wake).ExecutionId)
	case <-time.After(10 * time.Second):
		t.Fatal("no dead letter for a send after Stop")
	}
}
