package authzenv

import (
	"fmt"

	"github.com/apitokens/apitokens/pkg/oidc"
)

// Environment variables of the sign-in of people with OpenID Connect, read by SignInFromEnv
// (apitokens serve, the management authorizer, and the dashboard for the issuer and client id).
const (
	EnvOIDCIssuer     = "OIDC_ISSUER"      // the issuer URL; unset: sign-in is off
	EnvOIDCClientID   = "OIDC_CLIENT_ID"   // the dashboard's public client id (code flow with PKCE)
	EnvOIDCAudience   = "OIDC_AUDIENCE"    // the "aud" ID tokens must hold; default OIDC_CLIENT_ID
	EnvOIDCOwnerClaim = "OIDC_OWNER_CLAIM" // the claim naming a person's owner; default sub
	EnvOIDCAdminClaim = "OIDC_ADMIN_CLAIM" // with OIDC_ADMIN_VALUE: the claim that makes an admin
	EnvOIDCAdminValue = "OIDC_ADMIN_VALUE" // the value (or an element of the array) it must hold
)

// SignIn is the sign-in configuration of a deployment: who issues the ID tokens people present,
// and the dashboard's client. The zero SignIn is sign-in off.
type SignIn struct {
	Issuer     string
	ClientID   string // the dashboard's public client id ("" when only the API takes ID tokens)
	Audience   string // ClientID unless OIDC_AUDIENCE says otherwise
	OwnerClaim string
	AdminClaim string
	AdminValue string
}

// Enabled reports whether people may sign in.
func (s SignIn) Enabled() bool { return s.Issuer != "" }

// SignInFromEnv reads the sign-in configuration. Without OIDC_ISSUER sign-in is off, and then any
// other OIDC_ variable set is an error (a half-configured sign-in should not pass unnoticed).
// Returns an error naming the variable at fault: an issuer that is not https (http only on
// loopback), no audience (neither OIDC_AUDIENCE nor OIDC_CLIENT_ID), or only one of
// OIDC_ADMIN_CLAIM and OIDC_ADMIN_VALUE.
func SignInFromEnv(getenv func(string) string) (SignIn, error) {
	s := SignIn{
		Issuer: getenv(EnvOIDCIssuer), ClientID: getenv(EnvOIDCClientID), Audience: getenv(EnvOIDCAudience),
		OwnerClaim: getenv(EnvOIDCOwnerClaim), AdminClaim: getenv(EnvOIDCAdminClaim), AdminValue: getenv(EnvOIDCAdminValue),
	}
	if s.Issuer == "" {
		for _, name := range []string{EnvOIDCClientID, EnvOIDCAudience, EnvOIDCOwnerClaim, EnvOIDCAdminClaim, EnvOIDCAdminValue} {
			if getenv(name) != "" {
				return SignIn{}, fmt.Errorf("%s is set but %s is not: set the issuer to turn sign-in on, or unset %[1]s", name, EnvOIDCIssuer)
			}
		}
		return SignIn{}, nil
	}
	if err := oidc.CheckIssuer(s.Issuer); err != nil {
		return SignIn{}, fmt.Errorf("%s: %w", EnvOIDCIssuer, err)
	}
	if s.Audience == "" {
		s.Audience = s.ClientID
	}
	if s.Audience == "" {
		return SignIn{}, fmt.Errorf("%s is set: set %s (the dashboard's client id, the audience of its ID tokens) or %s", EnvOIDCIssuer, EnvOIDCClientID, EnvOIDCAudience)
	}
	if s.OwnerClaim == "" {
		s.OwnerClaim = oidc.DefaultOwnerClaim
	}
	if (s.AdminClaim == "") != (s.AdminValue == "") {
		return SignIn{}, fmt.Errorf("%s and %s: set both (e.g. cognito:groups and apitokens-admin) or neither", EnvOIDCAdminClaim, EnvOIDCAdminValue)
	}
	return s, nil
}

// Verifier returns the verifier of s's ID tokens, or nil when sign-in is off.
func (s SignIn) Verifier() (*oidc.Verifier, error) {
	if !s.Enabled() {
		return nil, nil
	}
	return oidc.New(oidc.Config{
		Issuer: s.Issuer, Audience: s.Audience, OwnerClaim: s.OwnerClaim,
		AdminClaim: s.AdminClaim, AdminValue: s.AdminValue,
	})
}
