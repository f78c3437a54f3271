// Package app assembles apitokens from its environment: the one place that reads configuration
// variables and picks a store, shared by the CLI and every Lambda function.
package app

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apitokens/apitokens/pkg/app/authzenv"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// EnvTableName names the DynamoDB table; required wherever the DynamoDB store is used.
const EnvTableName = authzenv.EnvTableName

// Environment variables read by ServiceConfig. Unset means the default.
const (
	EnvPrefix             = "TOKEN_PREFIX"           // deployment prefix, default "tok"
	EnvDefaultExpiryDays  = "DEFAULT_EXPIRY_DAYS"    // lifetime when a create names none; 0 = never; default 365
	EnvMaxExpiryDays      = "MAX_EXPIRY_DAYS"        // longest allowed lifetime; 0 or unset = no maximum
	EnvAllowedPermissions = "ALLOWED_PERMISSIONS"    // comma-separated; unset = any permission
	EnvDefaultPermissions = "DEFAULT_PERMISSIONS"    // comma-separated; default "read"
	EnvRevokedRetention   = "REVOKED_RETENTION_DAYS" // how long revoked tokens stay listed; default 30
	EnvAuditRetention     = "AUDIT_RETENTION_DAYS"   // how long audit events are kept; default 400
	EnvLeakAction         = "LEAK_ACTION"            // what a confirmed leak report does: revoke (default) or disable
	EnvSelfRevokeLimit    = "SELF_REVOKE_LIMIT"      // POST /revoke calls per minute per address; default 10
)

// EnvLeakKeysURL is where POST /leaks fetches the partner's signing keys (LeakVerifier); default
// GitHub's secret scanning keys.
const EnvLeakKeysURL = "LEAK_KEYS_URL"

// ServiceConfig reads the token service's settings from getenv. Returns an error naming the
// variable when a value is malformed.
func ServiceConfig(getenv func(string) string) (token.Config, error) {
	cfg := token.Config{
		Prefix:             getenv(EnvPrefix),
		AllowedPermissions: splitList(getenv(EnvAllowedPermissions)),
		DefaultPermissions: splitList(getenv(EnvDefaultPermissions)),
		LeakAction:         token.LeakAction(getenv(EnvLeakAction)),
	}
	switch cfg.LeakAction {
	case "", token.LeakRevoke, token.LeakDisable:
	default:
		return cfg, fmt.Errorf("%s=%q: must be %s or %s", EnvLeakAction, cfg.LeakAction, token.LeakRevoke, token.LeakDisable)
	}
	if s := getenv(EnvSelfRevokeLimit); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 || n > token.MaxRateLimit {
			return cfg, fmt.Errorf("%s=%q: must be a whole number of requests per minute from 1 to %d", EnvSelfRevokeLimit, s, token.MaxRateLimit)
		}
		cfg.SelfRevokeLimit = n
	}
	days := func(name string, dst *time.Duration, zero time.Duration) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > token.MaxExpiryDays {
			return fmt.Errorf("%s=%q: must be a whole number of days from 0 to %d", name, s, token.MaxExpiryDays)
		}
		*dst = time.Duration(n) * token.Day
		if n == 0 {
			*dst = zero
		}
		return nil
	}
	if err := days(EnvDefaultExpiryDays, &cfg.DefaultLifetime, -1); err != nil {
		return cfg, err
	}
	if err := days(EnvMaxExpiryDays, &cfg.MaxLifetime, 0); err != nil {
		return cfg, err
	}
	if err := days(EnvRevokedRetention, &cfg.RevokedRetention, 0); err != nil {
		return cfg, err
	}
	if err := days(EnvAuditRetention, &cfg.AuditRetention, 0); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Limits.LowPercent, err = authorizer.QuotaLowPercent(getenv); err != nil {
		return cfg, err
	}
	// POST /verify writes a token's uses and refusals at most once per interval, as the authorizer
	// writes its uses, and with the same variable.
	if s := getenv(authorizer.EnvUsageInterval); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 86400 {
			return cfg, fmt.Errorf("%s=%q: must be a whole number of seconds from 0 to 86400", authorizer.EnvUsageInterval, s)
		}
		cfg.UsageInterval = time.Duration(n) * time.Second
		if n == 0 {
			cfg.UsageInterval = -1 // every outcome is written at once
		}
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
