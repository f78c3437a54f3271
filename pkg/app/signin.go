package app

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/apitokens/apitokens/pkg/app/authzenv"
)

// The sign-in of people and the Lambda authorizer's wiring live in package authzenv, which the
// authorizer function imports alone (this package's other imports, the HTTP API and the
// dashboard among them, would lengthen its cold start); these names keep them here too.
const (
	EnvOIDCIssuer     = authzenv.EnvOIDCIssuer
	EnvOIDCClientID   = authzenv.EnvOIDCClientID
	EnvOIDCAudience   = authzenv.EnvOIDCAudience
	EnvOIDCOwnerClaim = authzenv.EnvOIDCOwnerClaim
	EnvOIDCAdminClaim = authzenv.EnvOIDCAdminClaim
	EnvOIDCAdminValue = authzenv.EnvOIDCAdminValue
)

// SignIn is authzenv.SignIn.
type SignIn = authzenv.SignIn

var (
	SignInFromEnv          = authzenv.SignInFromEnv
	People                 = authzenv.People
	NewAuthorizer          = authzenv.NewAuthorizer
	NewAuthorizerWithStore = authzenv.NewAuthorizerWithStore
)

// EnvCORSAllowedOrigins lists the origins whose pages may call the management API from a
// browser (comma-separated, exact, e.g. https://dashboard.example.com); unset: none.
const EnvCORSAllowedOrigins = "CORS_ALLOWED_ORIGINS"

// CORSOriginsFromEnv reads CORS_ALLOWED_ORIGINS: comma-separated origins, each exactly as a
// browser sends it (scheme://host[:port], lowercase, no path, no trailing slash). Returns an
// error naming the variable for anything else, "*" included: origins are listed one by one.
func CORSOriginsFromEnv(getenv func(string) string) ([]string, error) {
	var out []string
	for _, o := range splitList(getenv(EnvCORSAllowedOrigins)) {
		u, err := url.Parse(o)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil ||
			u.Scheme+"://"+u.Host != o || strings.ToLower(o) != o {
			return nil, fmt.Errorf("%s: %q is not an origin: want scheme://host[:port] in lowercase, e.g. https://dashboard.example.com (no path, no trailing slash, no *)", EnvCORSAllowedOrigins, o)
		}
		out = append(out, o)
	}
	return out, nil
}
