package codec_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stent-go/stent/internal/testutil"
	"github.com/stent-go/stent/persistence"
	"github.com/stent-go/stent/persistence/codec"
	"github.com/stent-go/stent/persistence/persistencetest"
	"github.com/stent-go/stent/persistence/sqlite"
)

func TestMain(m *testing.M) { testutil.WrapTestMain(m) }

func key(id string, b byte) codec.Key { return codec.Key{ID: id, Secret: bytes.Repeat([]byte{b}, 32)} }

func TestAESGCMRoundTripAndRotation(t *testing.T) {
	t.Parallel()
	old, err := codec.NewAESGCM(key("old", 1))
	require.NoError(t, err)
	plain := []byte(`{"card":"4111 1111 1111 1111"}`)
	sealed, err := old.Encode(plain)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "4111")
	id, ok := codec.KeyID(sealed)
	require.True(t, ok)
	require.Equal(t, "old", id)
	again, err := old.Encode(plain)
	require.NoError(t, err)
	require.Equal(t, sealed, again, "one plaintext, one key: the same bytes")

	rotated, err := codec.NewAESGCM(key("new", 2), key("old", 1))
	require.NoError(t, err)
	got, err := rotated.Decode(sealed)
	require.NoError(t, err)
	require.Equal(t, plain, got, "an old key still decrypts")
	fresh, err := rotated.Encode(plain)
	require.NoError(t, err)
	id, _ = codec.KeyID(fresh)
	require.Equal(t, "new", id, "the first key encrypts")

	_, err = old.Decode(fresh)
	require.ErrorIs(t, err, codec.ErrUnknownKey)
	require.ErrorContains(t, err, `"new"`)

	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	_, err = old.Decode(bad)
	require.ErrorIs(t, err, codec.ErrCorrupt)
	_, err = old.Decode(sealed[:len(sealed)-20])
	require.ErrorIs(t, err, codec.ErrCorrupt)
	impostor, err := codec.NewAESGCM(key("old", 9))
	require.NoError(t, err)
	_, err = impostor.Decode(sealed)
	require.ErrorIs(t, err, codec.ErrCorrupt, "the same ID with another secret")

	for _, clear := range [][]byte{nil, []byte(`{"stored":"before the codec"}`), {}} {
		got, err := old.Decode(clear)
		require.NoError(t, err)
		require.Equal(t, clear, got, "bytes it did not encode pass through")
	}
	empty, err := old.Encode([]byte{})
	require.NoError(t, err)
	got, err = old.Decode(empty)
	require.NoError(t, err)
	require.Equal(t, []byte{}, got)
	nilOut, err := old.Encode(nil)
	require.NoError(t, err)
	require.Nil(t, nilOut)
}

func TestNewAESGCMRefusesBadKeys(t *testing.T) {
	t.Parallel()
	for _, keys := range [][]codec.Key{
		nil,
		{{ID: "", Secret: make([]byte, 32)}},
		{{ID: "k", Secret: make([]byte, 10)}},
		{key("k", 1), key("k", 2)},
		{{ID: string(make([]byte, 256)), Secret: make([]byte, 16)}},
	} {
		_, err := codec.NewAESGCM(keys...)
		require.Error(t, err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{5}, 32)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		k, err := codec.ParseKey("prod-2026:" + enc.EncodeToString(secret))
		require.NoError(t, err)
		require.Equal(t, "prod-2026", k.ID)
		require.Equal(t, secret, k.Secret)
	}
	for _, s := range []string{"", "nokey", ":abc", "id:", "id:!!!"} {
		_, err := codec.ParseKey(s)
		require.Error(t, err, s)
	}
}

// The conformance suite passes through the wrapper: it changes nothing a
// backend promises.
func TestWrappedBackendConforms(t *testing.T) {
	t.Parallel()
	c, err := codec.NewAESGCM(key("k", 3))
	require.NoError(t, err)
	persistencetest.Exercise(t, func(t *testing.T) persistence.Backend {
		b, err := sqlite.Open(":memory:")
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, b.Close()) })
		require.NoError(t, b.Init(context.Background()))
		return codec.Wrap(b, c)
	})
}

func TestWrapWithoutCodecIsTheBackend(t *testing.T) {
	t.Parallel()
	b, err := sqlite.Open(":memory:")
	require.NoError(t, err)
	defer b.Close()
	require.Same(t, persistence.Backend(b), codec.Wrap(b, nil))
}

func TestForDisplay(t *testing.T) {
	t.Parallel()
	c, err := codec.NewAESGCM(key("k1", 1))
	require.NoError(t, err)
	sealed, err := c.Encode([]byte(`{"a":1}`))
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(codec.ForDisplay(c, sealed)))
	require.Equal(t, `"encrypted (key k1)"`, string(codec.ForDisplay(nil, sealed)))
	other, err := codec.NewAESGCM(key("k2", 2))
	require.NoError(t, err)
	require.Equal(t, `"encrypted (key k1)"`, string(codec.ForDisplay(other, sealed)))
	impostor, err := codec.NewAESGCM(key("k1", 9))
	require.NoError(t, err)
	require.Equal(t, `"encrypted (key k1): does not decrypt"`, string(codec.ForDisplay(impostor, sealed)))
	require.Equal(t, `[1,2]`, string(codec.ForDisplay(nil, []byte(`[1,2]`))))
}
