package cluster

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.ErrorContains(t, DefaultLocalConfig().Validate(), "NodeName is required", "the preset leaves NodeName to the caller")
	require.NoError(t, testConfig("node-a").Validate())

	for _, tt := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"BindAddr", func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		{"GossipPort", func(c *Config) { c.GossipPort = 70000 }, "GossipPort"},
		{"AdvertiseAddr", func(c *Config) { c.AdvertiseAddr = "x" }, "AdvertiseAddr"},
		{"NoRemoteAddr", func(c *Config) { c.RemoteAddr = "" }, "RemoteAddr is required"},
		{"RemoteAddr", func(c *Config) { c.RemoteAddr = "127.0.0.1" }, "RemoteAddr"},
		{"Seed", func(c *Config) { c.Seeds = []string{"127.0.0.1"} }, "seed"},
		{"EmptyQueue", func(c *Config) { c.Queues = []string{""} }, "queue name is empty"},
		{"DuplicateQueue", func(c *Config) { c.Queues = []string{"a", "a"} }, `queue "a" is listed twice`},
		{"SecretKey", func(c *Config) { c.SecretKey = make([]byte, 17) }, "SecretKey is 17 bytes"},
		{"Label", func(c *Config) { c.Label = string(make([]byte, 256)) }, "Label"},
		{"ProbeInterval", func(c *Config) { c.ProbeInterval = 0 }, "ProbeInterval"},
		{"ProbeTimeout", func(c *Config) { c.ProbeTimeout = c.ProbeInterval }, "ProbeTimeout"},
		{"SuspicionMult", func(c *Config) { c.SuspicionMult = 0 }, "SuspicionMult"},
		{"GossipInterval", func(c *Config) { c.GossipInterval = 0 }, "GossipInterval"},
		{"TCPTimeout", func(c *Config) { c.TCPTimeout = 0 }, "TCPTimeout"},
		{"DeadNodeReclaimTime", func(c *Config) { c.DeadNodeReclaimTime = -time.Second }, "DeadNodeReclaimTime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig("node-a")
			tt.mutate(&cfg)
			require.ErrorContains(t, cfg.Validate(), tt.want)
		})
	}

	for _, n := range []int{16, 24, 32} {
		cfg := testConfig("node-a")
		cfg.SecretKey = make([]byte, n)
		require.NoError(t, cfg.Validate(), "%d-byte key", n)
	}
}
