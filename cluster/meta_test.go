package cluster

import (
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

func TestMeta(t *testing.T) {
	t.Parallel()

	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		for _, m := range []nodeMeta{
			{RemoteAddr: "127.0.0.1:8090"},
			{RemoteAddr: "[::1]:8090", Queues: []string{"default", "gpu", "é"}},
			{RemoteAddr: "127.0.0.1:1", Functions: NewFunctionFilter([]string{"a", "b"})},
			{},
		} {
			b, err := encodeMeta(m)
			require.NoError(t, err)
			require.Equal(t, m.Functions != nil, b[0] == metaVersionFunctions)
			got, err := decodeMeta(b)
			require.NoError(t, err)
			require.Equal(t, m, got)
		}
	})

	t.Run("BadMetadataIsAnError", func(t *testing.T) {
		t.Parallel()
		good, err := encodeMeta(nodeMeta{RemoteAddr: "127.0.0.1:8090", Queues: []string{"default"}})
		require.NoError(t, err)
		for name, b := range map[string][]byte{
			"empty":          nil,
			"version":        append([]byte{3}, good[1:]...),
			"short filter":   append([]byte{metaVersionFunctions}, append(good[1:], 1, 2)...),
			"trailing bytes": append(append([]byte(nil), good...), 0),
			"long string":    {metaVersion, 100, 'a'},
			"bad varint":     {metaVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			"many queues":    {metaVersion, 0, 0xff, 0xff, 0x03},
			"no queue count": {metaVersion, 0},
		} {
			_, err := decodeMeta(b)
			require.Error(t, err, name)
		}
		for i := range good {
			_, err := decodeMeta(good[:i])
			require.Error(t, err, "truncated to %d bytes", i)
		}
	})

	t.Run("ValidateBoundsTheSize", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig("big")
		for i := range 40 {
			cfg.Queues = append(cfg.Queues, strings.Repeat("q", 10)+string(rune('a'+i%26))+string(rune('a'+i/26)))
		}
		require.ErrorContains(t, cfg.Validate(), "more than memberlist's 512")
		b, err := encodeMeta(nodeMeta{RemoteAddr: cfg.RemoteAddr, Queues: cfg.Queues})
		require.NoError(t, err)
		require.Greater(t, len(b), memberlist.MetaMaxSize)
	})
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []nodeMeta{{RemoteAddr: "127.0.0.1:8090", Queues: []string{"default", "gpu"}}, {}} {
		b, err := encodeMeta(m)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{metaVersion, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := encodeMeta(m)
		require.NoError(t, err)
		require.Equal(t, b, again, "what decodes re-encodes to the same bytes")
	})
}
