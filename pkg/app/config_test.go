package app

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

func TestServiceConfig(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	cfg, err := ServiceConfig(env(nil))
	if err != nil || cfg.Prefix != "" || cfg.DefaultLifetime != 0 || cfg.MaxLifetime != 0 || cfg.AllowedPermissions != nil {
		t.Fatalf("empty environment: %+v, %v; want every default", cfg, err)
	}

	cfg, err = ServiceConfig(env(map[string]string{
		EnvPrefix: "acme", EnvDefaultExpiryDays: "0", EnvMaxExpiryDays: "90",
		EnvAllowedPermissions: "upload, delete,,list", EnvDefaultPermissions: "list", EnvRevokedRetention: "7",
		EnvAuditRetention: "90", authorizer.EnvUsageInterval: "5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "acme" || cfg.DefaultLifetime >= 0 || cfg.MaxLifetime != 90*token.Day ||
		!slices.Equal(cfg.AllowedPermissions, []string{"upload", "delete", "list"}) ||
		!slices.Equal(cfg.DefaultPermissions, []string{"list"}) || cfg.RevokedRetention != 7*24*time.Hour ||
		cfg.AuditRetention != 90*24*time.Hour || cfg.UsageInterval != 5*time.Second {
		t.Fatalf("parsed %+v", cfg)
	}

	if cfg, err := ServiceConfig(env(map[string]string{authorizer.EnvUsageInterval: "0"})); err != nil || cfg.UsageInterval >= 0 {
		t.Fatalf("%s=0: %v %v; want every refusal written (a negative interval)", authorizer.EnvUsageInterval, cfg.UsageInterval, err)
	}

	for _, bad := range []map[string]string{
		{EnvDefaultExpiryDays: "ten"}, {EnvDefaultExpiryDays: "-1"}, {EnvMaxExpiryDays: "3651"}, {EnvRevokedRetention: "1.5"},
		{EnvAuditRetention: "a year"}, {authorizer.EnvUsageInterval: "-1"}, {authorizer.EnvUsageInterval: "86401"},
	} {
		if _, err := ServiceConfig(env(bad)); err == nil {
			t.Errorf("ServiceConfig(%v) accepted a bad value", bad)
		} else {
			for name := range bad {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		}
	}
}
