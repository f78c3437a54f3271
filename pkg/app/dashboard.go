package app

import (
	"fmt"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// DashboardConfig reads what the dashboard shows of the deployment from getenv: the identity
// provider (OIDC_ISSUER and OIDC_CLIENT_ID, signin.go; both set: the page offers single sign-on), and from the token settings (ServiceConfig) the allowed permissions and the longest
// lifetime. Returns an error naming the variable when a value is malformed, or when
// OIDC_CLIENT_ID is set without OIDC_ISSUER.
func DashboardConfig(getenv func(string) string) (dashboard.Config, error) {
	svc, err := ServiceConfig(getenv)
	if err != nil {
		return dashboard.Config{}, err
	}
	cfg := dashboard.Config{
		AllowedPermissions: svc.AllowedPermissions,
		MaxExpiryDays:      int(svc.MaxLifetime / token.Day),
	}
	issuer, client := getenv(EnvOIDCIssuer), getenv(EnvOIDCClientID)
	switch {
	case issuer != "" && client != "":
		cfg.OIDC = &dashboard.OIDC{Issuer: issuer, ClientID: client}
	case client != "":
		return cfg, fmt.Errorf("%s is set but %s is not: the dashboard's single sign-on needs both", EnvOIDCClientID, EnvOIDCIssuer)
	}
	return cfg, nil
}

// Dashboard returns the dashboard's handler configured from getenv (DashboardConfig), as its
// Lambda function and the local server serve it. Returns an error naming what is malformed.
func Dashboard(getenv func(string) string) (*dashboard.Handler, error) {
	cfg, err := DashboardConfig(getenv)
	if err != nil {
		return nil, err
	}
	h, err := dashboard.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvOIDCIssuer, err)
	}
	return h, nil
}
