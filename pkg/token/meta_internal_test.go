package token

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestPlainMetaNeverAcceptsWhatTheFullCheckRefuses: the fast path of checkMeta answers "clean"
// only for metadata the full check accepts too, and takes the common case.
func TestPlainMetaNeverAcceptsWhatTheFullCheckRefuses(t *testing.T) {
	for _, tc := range []struct {
		meta  string
		plain bool // the fast path decides it
	}{
		{`{"team":"a","tier":3,"tags":["x","y"],"owner":{"name":"b","id":1}}`, true},
		{`{}`, true},
		{`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}`, true}, // the same key in different objects
		{`{"a":1,"a":2}`, false},
		{`{"x":[{"k":1,"k":2}]}`, false},
		{`{"a":1,"\u0061":2}`, false},
		{`{"a":"\u202e"}`, false},
		{"{\"a\":\"\x7f\"}", false},
		{`{"a":"é"}`, false},
		{`{"a":"x:y","b":"}{\"c\":"}`, false},
	} {
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(tc.meta)); err != nil {
			t.Fatalf("%s: %v", tc.meta, err)
		}
		compact := buf.Bytes()
		if got := plainMeta(compact); got != tc.plain {
			t.Errorf("plainMeta(%s) = %v; want %v", compact, got, tc.plain)
		}
		if plainMeta(compact) {
			dec := json.NewDecoder(bytes.NewReader(compact))
			dec.UseNumber()
			if err := checkMetaValue(dec, "meta"); err != nil {
				t.Errorf("%s: the fast path accepts what the full check refuses: %v", compact, err)
			}
		}
	}
}
