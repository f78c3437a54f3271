package token

import "strings"

// MaxJWTLen bounds a sign-in token (JWT) that is parsed at all; ID tokens are a few KiB.
const MaxJWTLen = 16 << 10

// LooksLikeJWT reports whether a presented credential has the shape of a JWT in JWS compact
// form rather than of an apitokens token: three parts separated by dots, each of base64url
// characters, the first two non-empty (the third, the signature, is empty for "alg": "none",
// which the sign-in's verifier then refuses by name). An apitokens token never has a dot
// (Format), so the two never overlap: a JWT goes to the sign-in, everything else to Parse.
func LooksLikeJWT(s string) bool {
	if len(s) > MaxJWTLen || strings.Count(s, ".") != 2 {
		return false
	}
	header, rest, _ := strings.Cut(s, ".")
	payload, _, _ := strings.Cut(rest, ".")
	if header == "" || payload == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
