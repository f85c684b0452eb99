package sqlite

import (
	"database/sql"
	"reflect"
	"testing"
)

// FuzzDecodeError decodes an error column's text as a row holds it: what
// does not decode is an error, never a panic, and what decodes encodes back
// to text that decodes the same.
func FuzzDecodeError(f *testing.F) {
	for _, s := range []string{`{"message":"boom","kind":"panic","stack":"x","attempts":3}`, `{"message": tru`,
		`{"message": 5}`, `null`, `[]`, `{}`, `{"non_retryable":true,"function":"f","execution_id":"e"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := decodeError(sql.NullString{String: s, Valid: true})
		if err != nil || info == nil {
			return
		}
		enc, err := encodeError(info)
		if err != nil {
			t.Fatalf("a decoded error does not encode: %v", err)
		}
		back, err := decodeError(sql.NullString{String: enc.(string), Valid: true})
		if err != nil || !reflect.DeepEqual(back, info) {
			t.Fatalf("%+v encodes to %q, which decodes to %+v (%v)", info, enc, back, err)
		}
	})
}
