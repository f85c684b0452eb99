package cluster

import (
	"bytes"
	"log"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := log.New(logWriter{logger: logger}, "", 0)
	l.Printf("[DEBUG] memberlist: Stream connection from=%s", "127.0.0.1:1")
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: %s)", "node-a")
	l.Printf("[ERR] memberlist: Conflicting address")
	l.Printf("no level")
	require.Equal(t, `level=DEBUG msg=memberlist text="Stream connection from=127.0.0.1:1"
level=WARN msg=memberlist text="Refuting a suspect message (from: node-a)"
level=ERROR msg=memberlist text="Conflicting address"
level=INFO msg=memberlist text="no level"
`, buf.String())
}
