package token

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRefusedRunes checks every range the README lists, at both ends, and neighbours that stay
// allowed.
func TestRefusedRunes(t *testing.T) {
	refused := [][2]rune{
		{0x00, 0x1f}, {0x7f, 0x9f}, // C0, DEL, C1
		{0x061c, 0x061c}, {0x200e, 0x200f}, {0x202a, 0x202e}, {0x2066, 0x2069}, // bidi controls
		{0x200b, 0x200d}, {0x2060, 0x2060}, {0xfeff, 0xfeff}, // zero-width
		{0x2028, 0x2029}, // line and paragraph separators
	}
	for _, r := range refused {
		for c := r[0]; c <= r[1]; c++ {
			if !refusedRune(c) {
				t.Errorf("U+%04X is allowed; want refused", c)
			}
		}
	}
	for _, c := range []rune{' ', '~', 0xa0, 0xe9, 0x061b, 0x061d, 0x200a, 0x2010, 0x2027, 0x202f, 0x2065, 0x206a, 0xfffd, 0x1f511} {
		if refusedRune(c) {
			t.Errorf("U+%04X (%q) is refused; want allowed", c, c)
		}
	}
}

func TestValidNameAndMetaMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string
	}{
		{" Déploiement 🔑\t", ""},
		{"a\u202eb", "name: must not contain U+202E"},
		{"a\xffb", "name: must be 1-100 characters"},
	} {
		_, err := validName(tc.name)
		assertErrorPrefix(t, "validName("+tc.name+")", err, tc.err)
	}
	for _, tc := range []struct {
		meta string
		err  string
	}{
		{`{"a":{"b":[1,"x",{"c":"\u00e9"}]},"A":null}`, ""},
		{`{"a":{"b":[1,"x",{"c":"\u2066"}]}}`, "meta.a.b[2].c: must not contain U+2066"},
		{`{"a":1,"a":1}`, "meta.a: duplicate key"},
		{`{"x y":{"z":1,"z":2}}`, `meta["x y"].z: duplicate key`},
		{`{"\u200b":1}`, `meta["\u200b"]: must not contain U+200B`},
		{"{\"a\":\"\xff\"}", "meta: must be valid UTF-8"},
	} {
		_, err := validMeta(json.RawMessage(tc.meta))
		assertErrorPrefix(t, "validMeta("+tc.meta+")", err, tc.err)
	}
}

func TestFieldPath(t *testing.T) {
	for _, tc := range []struct{ parent, key, want string }{
		{"", "name", "name"},
		{"rateLimit", "limit", "rateLimit.limit"},
		{"meta", "team-id_2", "meta.team-id_2"},
		{"meta", "a.b", `meta["a.b"]`},
		{"", "", `[""]`},
		{"meta", "x\u202ey", `meta["x\u202ey"]`},
	} {
		if got := FieldPath(tc.parent, tc.key); got != tc.want {
			t.Errorf("FieldPath(%q, %q) = %s; want %s", tc.parent, tc.key, got, tc.want)
		}
	}
}

// assertErrorPrefix fails unless err is nil when want is "", or an EINVALID whose message starts
// with want.
func assertErrorPrefix(t *testing.T, call string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v; want no error", call, err)
	case want != "" && (ErrorCode(err) != EINVALID || !strings.HasPrefix(ErrorMessage(err), want)):
		t.Errorf("%s: %v; want invalid, starting %q", call, err, want)
	}
}
