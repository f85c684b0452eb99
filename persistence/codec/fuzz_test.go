package codec_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stent-go/stent/persistence/codec"
)

// FuzzAESGCMDecode decodes stored bytes: whatever they are, Decode returns
// them unchanged (not an AESGCM payload), their plaintext, or an error
// matching ErrUnknownKey or ErrCorrupt; it never panics.
func FuzzAESGCMDecode(f *testing.F) {
	c, err := codec.NewAESGCM(key("k1", 1), key("k0", 2))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range [][]byte{[]byte(`{"a":1}`), {}, []byte(`"x"`)} {
		sealed, err := c.Encode(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(sealed)
		f.Add(sealed[:len(sealed)-1])
	}
	f.Add([]byte{0xff, 'S', 'G', '1'})
	f.Add([]byte{0xff, 'S', 'G', '1', 2, 'k', '9', 0})
	f.Add([]byte(`plain json`))
	f.Fuzz(func(t *testing.T, stored []byte) {
		plain, err := c.Decode(stored)
		if _, enc := codec.KeyID(stored); !enc {
			if err != nil || !bytes.Equal(plain, stored) {
				t.Fatalf("bytes it did not encode changed: %q -> %q, %v", stored, plain, err)
			}
			return
		}
		if err != nil && !errors.Is(err, codec.ErrUnknownKey) && !errors.Is(err, codec.ErrCorrupt) {
			t.Fatalf("unexpected error %v", err)
		}
		_ = codec.ForDisplay(c, stored)
		_ = codec.ForDisplay(nil, stored)
	})
}

// FuzzAESGCMRoundTrip encodes any payload and decodes it back.
func FuzzAESGCMRoundTrip(f *testing.F) {
	c, err := codec.NewAESGCM(key("k1", 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte{0xff, 'S', 'G', '1'})
	f.Fuzz(func(t *testing.T, plain []byte) {
		sealed, err := c.Encode(plain)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decode(sealed)
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("%q -> %q (%v)", plain, back, err)
		}
	})
}
