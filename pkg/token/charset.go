package token

import "strings"

// Character rules of names the service accepts. They are checked by hand rather than with
// regexp: compiling patterns at package init costs every Lambda cold start (about 0.8 ms here),
// and these rules are simple character classes.
const (
	lowerDigits      = "abcdefghijklmnopqrstuvwxyz0123456789"
	permissionSyntax = "[a-z0-9][a-z0-9:._*-]{0,63}"
	apiNameSyntax    = "[a-z0-9][a-z0-9._-]{0,63}"
)

// syntax is a name rule: a length range, a class for the first character and one for the rest.
type syntax struct {
	min, max    int
	first, rest string
}

func (x syntax) match(s string) bool {
	if len(s) < x.min || len(s) > x.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		class := x.rest
		if i == 0 {
			class = x.first
		}
		if strings.IndexByte(class, s[i]) < 0 {
			return false
		}
	}
	return true
}

var (
	prefixSyntax   = syntax{1, 16, "abcdefghijklmnopqrstuvwxyz", lowerDigits}
	envSyntax      = syntax{1, 16, lowerDigits, lowerDigits}
	permissionRule = syntax{1, 64, lowerDigits, lowerDigits + ":._*-"}
	ownerSyntax    = syntax{1, 128, alnum + "._@:+|-", alnum + "._@:+|-"}
	clientIDSyntax = syntax{1, 128, alnum + "._:/+-", alnum + "._:/+-"}
	apiSyntax      = syntax{1, 64, lowerDigits, lowerDigits + "._-"}
)

const alnum = lowerDigits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// ValidOwner reports whether o may name an owner: 1-128 letters, digits or ._@:+|- (the "|" is
// for subjects such as Auth0's "auth0|64f1...", which people sign in with). Never "#", which
// separates the parts of storage keys.
func ValidOwner(o string) bool { return ownerSyntax.match(o) }

// OwnerRule describes what ValidOwner accepts, for messages.
const OwnerRule = "1-128 letters, digits or ._@:+|-"

// ValidAPIName reports whether n may name an API that tokens are bound to (Token.APIs):
// a lowercase letter or digit, then up to 63 lowercase letters, digits or ._-.
func ValidAPIName(n string) bool { return apiSyntax.match(n) }
