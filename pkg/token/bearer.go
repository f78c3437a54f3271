package token

import "strings"

// BearerToken returns the token of an "Authorization: Bearer <token>" header value (the scheme in
// any case, surrounding spaces ignored) and false when there is none.
func BearerToken(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimSpace(rest)
	return tok, tok != ""
}
