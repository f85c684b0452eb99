package postgres

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeError decodes an error column as a row holds it: what does not
// decode is an error, never a panic, and what decodes encodes back to a
// value that decodes the same.
func FuzzDecodeError(f *testing.F) {
	for _, s := range []string{`{"message":"boom","kind":"panic","stack":"x","attempts":3}`, `{"message": 5}`,
		`[1, 2]`, `null`, `{}`, `{"non_retryable":true,"function":"f","execution_id":"e"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := decodeError(b)
		if err != nil || info == nil {
			return
		}
		enc, err := json.Marshal(info)
		if err != nil {
			t.Fatalf("a decoded error does not encode: %v", err)
		}
		back, err := decodeError(enc)
		if err != nil || !reflect.DeepEqual(back, info) {
			t.Fatalf("%+v encodes to %s, which decodes to %+v (%v)", info, enc, back, err)
		}
	})
}
