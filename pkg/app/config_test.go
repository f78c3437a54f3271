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

// TestServiceConfigQuotaLowPercent: POST /verify's quota low mark comes from QUOTA_LOW_PERCENT,
// and a value out of 1-99 stops the function's init with a message naming the variable.
func TestServiceConfigQuotaLowPercent(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == authorizer.EnvQuotaLowPercent {
				return v
			}
			return ""
		}
	}
	if cfg, err := ServiceConfig(env("25")); err != nil || cfg.Limits.LowPercent != 25 {
		t.Fatalf("QUOTA_LOW_PERCENT=25: %d %v", cfg.Limits.LowPercent, err)
	}
	for _, bad := range []string{"0", "100", "ten", "-5"} {
		if _, err := ServiceConfig(env(bad)); err == nil || !strings.Contains(err.Error(), authorizer.EnvQuotaLowPercent) {
			t.Errorf("QUOTA_LOW_PERCENT=%s: %v; want an error naming the variable", bad, err)
		}
	}
}
