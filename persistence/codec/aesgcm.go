package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// magic starts every payload AESGCM encrypts. 0xff never starts UTF-8
// text, so no JSON payload stored in the clear is taken for one.
var magic = []byte{0xff, 'S', 'G', '1'}

// nonceSize is AES-GCM's standard nonce size.
const nonceSize = 12

// Key is one AES key: ID names it in every payload it encrypts (1 to 255
// bytes), Secret is 16, 24 or 32 bytes (AES-128, -192, -256).
type Key struct {
	ID     string
	Secret []byte
}

// AESGCM encrypts payloads with AES-GCM under its first key and decrypts
// them with whichever of its keys encrypted them, so keys can be rotated:
// put the new key first and keep the old ones until no row needs them.
//
// A payload is magic, the key ID's length and the key ID, a 12-byte nonce,
// and the ciphertext with its tag; the header is authenticated too. The
// nonce is derived from the plaintext with HMAC-SHA256 under a key derived
// from the secret, so one plaintext always encrypts to the same bytes
// under one key: stored inputs compare equal for idempotent starts, and a
// write retried after an unknown outcome stores the same bytes. It reveals
// that two payloads are equal, nothing more of them.
type AESGCM struct {
	current *aesKey
	byID    map[string]*aesKey
}

type aesKey struct {
	id       string
	header   []byte
	aead     cipher.AEAD
	nonceKey []byte
}

// NewAESGCM returns a codec that encrypts with keys[0] and decrypts with any
// of keys. It refuses no keys, an empty or too long ID, a duplicate ID, and
// a secret that is not 16, 24 or 32 bytes.
func NewAESGCM(keys ...Key) (*AESGCM, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: NewAESGCM needs at least one key")
	}
	c := &AESGCM{byID: make(map[string]*aesKey, len(keys))}
	for i, k := range keys {
		if k.ID == "" || len(k.ID) > 255 {
			return nil, fmt.Errorf("codec: key %d: the ID must be 1 to 255 bytes, not %d", i, len(k.ID))
		}
		if _, dup := c.byID[k.ID]; dup {
			return nil, fmt.Errorf("codec: key ID %q given twice", k.ID)
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: the secret must be 16, 24 or 32 bytes, not %d", k.ID, len(k.Secret))
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		mac := hmac.New(sha256.New, k.Secret)
		mac.Write([]byte("stent codec nonce key"))
		header := append(append(bytes.Clone(magic), byte(len(k.ID))), k.ID...)
		ak := &aesKey{id: k.ID, header: header, aead: aead, nonceKey: mac.Sum(nil)}
		c.byID[k.ID] = ak
		if i == 0 {
			c.current = ak
		}
	}
	return c, nil
}

// Encode encrypts plain under the first key; nil stays nil.
func (c *AESGCM) Encode(plain []byte) ([]byte, error) {
	if plain == nil {
		return nil, nil
	}
	k := c.current
	mac := hmac.New(sha256.New, k.nonceKey)
	mac.Write(plain)
	nonce := mac.Sum(nil)[:nonceSize]
	out := make([]byte, 0, len(k.header)+nonceSize+len(plain)+k.aead.Overhead())
	out = append(append(out, k.header...), nonce...)
	return k.aead.Seal(out, nonce, plain, k.header), nil
}

// Decode decrypts a payload Encode made with any of the codec's keys.
// Bytes that are not such a payload (stored before the codec was set) are
// returned as they are; nil stays nil. A payload of a key the codec lacks
// is an error matching ErrUnknownKey; one that does not decrypt, ErrCorrupt.
func (c *AESGCM) Decode(stored []byte) ([]byte, error) {
	id, ok := KeyID(stored)
	if !ok {
		return stored, nil
	}
	k := c.byID[id]
	if k == nil {
		return nil, fmt.Errorf("%w: key %q", ErrUnknownKey, id)
	}
	rest := stored[len(k.header):]
	if len(rest) < nonceSize+k.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes after the header, too short", ErrCorrupt, len(rest))
	}
	plain, err := k.aead.Open(nil, rest[:nonceSize], rest[nonceSize:], k.header)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrCorrupt, id)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// KeyID returns the ID of the key that encrypted b, and false when b is
// not a payload AESGCM encrypted (a tool that has no key uses it to show
// "encrypted" instead of the bytes).
func KeyID(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, magic) || len(b) < len(magic)+1 {
		return "", false
	}
	n := int(b[len(magic)])
	if n == 0 || len(b) < len(magic)+1+n {
		return "", false
	}
	return string(b[len(magic)+1 : len(magic)+1+n]), true
}

// ParseKey reads a key written as "ID:SECRET", SECRET in standard or URL
// base64 (with or without padding), as a command line flag or an
// environment variable gives it.
func ParseKey(s string) (Key, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" || secret == "" {
		return Key{}, errors.New(`codec: a key is written "ID:SECRET", SECRET in base64 (16, 24 or 32 bytes)`)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(secret); err == nil {
			return Key{ID: id, Secret: b}, nil
		}
	}
	return Key{}, fmt.Errorf("codec: the secret of key %q is not base64", id)
}

// ForDisplay returns stored as a tool shows it: decoded by c when it is an
// AESGCM payload c can decrypt; the JSON string "encrypted (key ID)" when c
// is nil or lacks the key (or "encrypted (key ID): does not decrypt");
// anything else as it is. Its result is JSON whenever the payload was.
func ForDisplay(c Codec, stored []byte) []byte {
	id, ok := KeyID(stored)
	if !ok {
		return stored
	}
	if c != nil {
		plain, err := c.Decode(stored)
		if err == nil {
			return plain
		}
		if !errors.Is(err, ErrUnknownKey) {
			return fmt.Appendf(nil, "%q", "encrypted (key "+id+"): does not decrypt")
		}
	}
	return fmt.Appendf(nil, "%q", "encrypted (key "+id+")")
}
