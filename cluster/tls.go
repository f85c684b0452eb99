package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLS is mutual TLS for the remote endpoints of a cluster's nodes: each node
// presents its certificate and accepts only peers whose certificate the
// cluster's CA signed, as a server and as a client. Make one with [LoadTLS].
type TLS struct {
	// Server is used by the node's remote endpoint: it requires and
	// verifies a client certificate.
	Server *tls.Config
	// Client is used when the node sends to another member: it presents
	// the node's certificate and verifies the member's.
	Client *tls.Config
}

// LoadTLS reads a node's certificate and key and the cluster CA's
// certificate (PEM files) and returns the mutual TLS configuration of the
// node's remote endpoint. A certificate must name the address the others
// reach the node on (an IP SAN such as 127.0.0.1, or a DNS name).
func LoadTLS(certFile, keyFile, caFile string) (*TLS, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("cluster: mutual TLS needs a certificate, its key and the cluster CA's certificate")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: loading the node certificate %s with key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster: reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster: no PEM certificate in the CA file %s", caFile)
	}
	return &TLS{
		Server: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS13,
		},
		Client: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      pool,
			MinVersion:   tls.VersionTLS13,
		},
	}, nil
}
