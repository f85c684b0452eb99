package cluster_test

import (
	"context"
	"encoding/base64"
	"log"
	"os"
	"time"

	"github.com/stent-go/stent/cluster"
	"github.com/stent-go/stent/persistence/postgres"
	"github.com/stent-go/stent/sdk"
)

// A node of a cluster, set up from Go. Compiled, not run: it needs the
// other members, a PostgreSQL database (STENT_DB) and TLS files.
func Example() {
	ctx := context.Background()
	backend, err := postgres.Open(ctx, os.Getenv("STENT_DB"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(os.Getenv("STENT_GOSSIP_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	// sample:begin withcluster
	cc := cluster.DefaultLocalConfig() // loopback timings: a dead member is noticed in about a second
	cc.GossipPort = 7900
	cc.RemoteAddr = "127.0.0.1:7910"
	cc.Seeds = []string{"127.0.0.1:7901", "127.0.0.1:7902"}
	cc.JoinRetry = 10 * time.Second
	cc.SecretKey = key // 16, 24 or 32 bytes
	cc.Label = "shop"
	cc.TLS, err = cluster.LoadTLS("node.pem", "node-key.pem", "ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	ex, err := sdk.Bootstrap(ctx, backend, sdk.Serve(), sdk.WithNodeID("node-0"), sdk.WithCluster(cc))
	// sample:end
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		if err := ex.Close(); err != nil {
			log.Print(err)
		}
	}()
}
