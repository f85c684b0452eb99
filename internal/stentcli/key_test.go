package stentcli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/codec"
	"github.com/stent-go/stent/persistence/sqlite"
)

// TestKeyDecodesPayloads: payloads encrypted with sdk.WithCodec show as
// "encrypted (key ID)" without a key, and decoded with --key or STENT_KEY.
func TestKeyDecodesPayloads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "stent.db")
	d := db{"--db", path}
	ok(t, d, "migrate")
	secret := bytes.Repeat([]byte{4}, 32)
	c, err := codec.NewAESGCM(codec.Key{ID: "k1", Secret: secret})
	require.NoError(t, err)
	raw, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, raw.Init(context.Background()))
	_, _, err = codec.Wrap(raw, c).CreateExecution(context.Background(),
		&persistence.Execution{ID: "enc-1", Function: "f", Input: []byte(`{"card":"4111"}`)})
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	input := func(r result) string {
		t.Helper()
		require.Zero(t, r.code, r.stderr)
		var out struct {
			Executions []struct {
				ID    string          `json:"id"`
				Input json.RawMessage `json:"input"`
			} `json:"executions"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		require.Len(t, out.Executions, 1)
		return string(out.Executions[0].Input)
	}
	key := "k1:" + base64.StdEncoding.EncodeToString(secret)
	require.Equal(t, `"encrypted (key k1)"`, input(stent(t, d, nil, "list", "--json")))
	require.JSONEq(t, `{"card":"4111"}`, input(stent(t, d, nil, "list", "--json", "--key", key)))
	require.JSONEq(t, `{"card":"4111"}`, input(stent(t, d, []string{"STENT_KEY=k0:" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "," + key}, "list", "--json")))

	bad := stent(t, d, nil, "list", "--key", "nonsense")
	require.Equal(t, 2, bad.code)
	require.Contains(t, bad.stderr, `a key is written "ID:SECRET"`)
}
