package app

import (
	"slices"
	"strings"
	"testing"
)

func TestDashboardConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	cfg, err := DashboardConfig(env(nil))
	if err != nil || cfg.OIDC != nil || cfg.AllowedPermissions != nil || cfg.MaxExpiryDays != 0 {
		t.Fatalf("empty environment: %+v, %v; want sign-in with a token only and no rules", cfg, err)
	}
	cfg, err = DashboardConfig(env(map[string]string{
		EnvOIDCIssuer: "https://idp.example.com", EnvOIDCClientID: "spa",
		EnvAllowedPermissions: "read, upload", EnvMaxExpiryDays: "90",
	}))
	if err != nil || cfg.OIDC == nil || cfg.OIDC.Issuer != "https://idp.example.com" || cfg.OIDC.ClientID != "spa" ||
		!slices.Equal(cfg.AllowedPermissions, []string{"read", "upload"}) || cfg.MaxExpiryDays != 90 {
		t.Fatalf("parsed %+v %v", cfg, err)
	}
	// The API may validate an issuer's tokens without a dashboard client: the page then offers
	// sign-in with a token only.
	if cfg, err := DashboardConfig(env(map[string]string{EnvOIDCIssuer: "https://idp.example.com"})); err != nil || cfg.OIDC != nil {
		t.Errorf("issuer without client: %+v %v", cfg, err)
	}
	if _, err := DashboardConfig(env(map[string]string{EnvOIDCClientID: "spa"})); err == nil || !strings.Contains(err.Error(), EnvOIDCIssuer) {
		t.Errorf("client without issuer: %v, want an error naming %s", err, EnvOIDCIssuer)
	}
	if _, err := DashboardConfig(env(map[string]string{EnvMaxExpiryDays: "many"})); err == nil {
		t.Error("a malformed MAX_EXPIRY_DAYS accepted")
	}
	if _, err := Dashboard(env(map[string]string{EnvOIDCIssuer: "http://idp.example.com", EnvOIDCClientID: "spa"})); err == nil || !strings.Contains(err.Error(), EnvOIDCIssuer) {
		t.Errorf("an http issuer: %v, want an error naming %s", err, EnvOIDCIssuer)
	}
}
