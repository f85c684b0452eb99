// Package codec transforms the payloads Stent stores before they reach the
// database, and back when they are read: inputs, outputs, journal values
// (children's outcomes, recorded times, signal payloads consumed), journal
// snapshots, signal payloads and dead letters' inputs. AESGCM encrypts them,
// with key IDs for rotation.
//
// Wrap puts a Codec in front of a persistence.Backend; sdk.WithCodec does it
// for an executor. Without a codec nothing is wrapped and nothing is paid.
// Payloads written before a codec was set stay readable: Decode returns
// bytes it did not encode as they are. Recorded errors (their messages),
// function names, IDs, signal names and times are not encoded.
package codec

import "errors"

// Codec encodes a payload before it is stored and decodes it after it is
// read. Encode(nil) and Decode(nil) must return nil (no payload). Decode
// must return bytes that Encode did not produce (a payload stored before
// the codec was set) unchanged. Both are called concurrently.
type Codec interface {
	Encode(plain []byte) ([]byte, error)
	Decode(stored []byte) ([]byte, error)
}

// Errors of Decode, for errors.Is.
var (
	// ErrUnknownKey reports a payload encrypted with a key the codec was
	// not given (its ID is in the error).
	ErrUnknownKey = errors.New("codec: payload encrypted with a key this codec does not have")
	// ErrCorrupt reports a payload that looks encrypted but does not
	// decrypt: truncated, altered, or encrypted with a different secret
	// under the same key ID.
	ErrCorrupt = errors.New("codec: encrypted payload does not decrypt")
)
