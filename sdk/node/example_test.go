package node_test

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/stent-go/stent/sdk"
	"github.com/stent-go/stent/sdk/node"
)

// Greet is a durable function of the binary: a node runs the functions
// registered in its process.
var Greet = sdk.Durable("greet", func(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
})

// A user's node binary: its main hands the command line (flags and STENT_*
// variables, as stent-node takes them) to node.Main.
func ExampleMain() {
	os.Exit(node.Main(os.Args[1:]))
}

// A node configured in code, serving until SIGTERM or SIGINT.
func ExampleRun() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := node.Run(ctx, node.Config{
		DB:            "postgres://stent@db.internal:5432/shop",
		NodeID:        "shop-1",
		LeaseDuration: 5 * time.Second,
		Retention:     30 * 24 * time.Hour,
		AdminAddr:     ":8081",
		// Off loopback the admin address (health, metrics, the web
		// console) needs the console's token.
		AdminToken: os.Getenv("STENT_ADMIN_TOKEN"),
	})
	if err != nil {
		log.Fatal(err)
	}
}
