package token_test

import (
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

// TestLooksLikeJWT: a JWT goes to the sign-in, an apitokens token (or anything else) never does.
func TestLooksLikeJWT(t *testing.T) {
	for _, s := range []string{
		"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", // alg none: refused by the sign-in, by name
		"a.b.c",
	} {
		if !token.LooksLikeJWT(s) {
			t.Errorf("%q: not a JWT", s)
		}
	}
	for _, s := range []string{
		token.Format("tok", "live", token.NewID(), token.NewSecret()),
		token.Format("tok", "", token.NewID(), token.NewSecret()),
		"", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.c=", "a.b.c d", "a+b.c.d",
		"eyJh.eyJz." + strings.Repeat("s", token.MaxJWTLen),
	} {
		if token.LooksLikeJWT(s) {
			t.Errorf("%q looks like a JWT", s)
		}
	}
}
