package app

import (
	"slices"
	"strings"
	"testing"
	"time"

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
		EnvAuditRetention: "90",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "acme" || cfg.DefaultLifetime >= 0 || cfg.MaxLifetime != 90*token.Day ||
		!slices.Equal(cfg.AllowedPermissions, []string{"upload", "delete", "list"}) ||
		!slices.Equal(cfg.DefaultPermissions, []string{"list"}) || cfg.RevokedRetention != 7*24*time.Hour ||
		cfg.AuditRetention != 90*24*time.Hour {
		t.Fatalf("parsed %+v", cfg)
	}

	for _, bad := range []map[string]string{
		{EnvDefaultExpiryDays: "ten"}, {EnvDefaultExpiryDays: "-1"}, {EnvMaxExpiryDays: "3651"}, {EnvRevokedRetention: "1.5"},
		{EnvAuditRetention: "a year"},
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
