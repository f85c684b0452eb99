package codec_test

import (
	"bytes"
	"testing"

	"github.com/stent-go/stent/persistence/codec"
)

// BenchmarkAESGCM is the cost per payload of encrypting and decrypting a
// 1 KiB JSON document (a codec is paid on every write and read of one).
func BenchmarkAESGCM(b *testing.B) {
	c, err := codec.NewAESGCM(key("k", 1))
	if err != nil {
		b.Fatal(err)
	}
	plain := bytes.Repeat([]byte(`{"k":"v"}`), 114)
	b.Run("Encode", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := c.Encode(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	sealed, err := c.Encode(plain)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Decode", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for b.Loop() {
			if _, err := c.Decode(sealed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
