package authorizer

import (
	"fmt"
	"strconv"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvRole              = "AUTHORIZER_ROLE"              // RoleManagement or RoleConsumer; required
	EnvAPIName           = "API_NAME"                     // consumer: the protected API's name (Config.APIName)
	EnvRequireAPIBinding = "REQUIRE_API_BINDING"          // consumer: "true" refuses tokens bound to no API
	EnvPrefix            = "TOKEN_PREFIX"                 // deployment token prefix, default "tok"
	EnvCacheTTL          = "AUTH_CACHE_TTL_SECONDS"       // record cache TTL, default 10 (management: 0); 0 disables the cache
	EnvCacheSize         = "AUTH_CACHE_SIZE"              // records cached at most, default 10000
	EnvUsageInterval     = "USAGE_WRITE_INTERVAL_SECONDS" // at most one usage write per token per interval per instance, default 60; 0 writes every use
	EnvQuotaLowPercent   = "QUOTA_LOW_PERCENT"            // a quota's low mark for token.quota_low, in percent of its size, default 10
	EnvRoutes            = "ROUTE_PERMISSIONS"            // JSON route map, e.g. {"GET /*":["list"]}; unset allows every route
	EnvAPIKeyHeader      = "API_KEY_HEADER"               // optional header with the bare token, e.g. x-api-key
	EnvResponse          = "AUTH_RESPONSE"                // HTTP API answers: "simple" (default) or "iam"
)

// Roles of an authorizer instance: one binary, one instance per API, each with its own settings.
const (
	// RoleManagement authorizes apitokens' own management API. Its rules are fixed here, not by
	// parameters: no route map (each operation checks manage/admin itself), HTTP API simple
	// responses, limit refusals deferred to the functions (which answer 429), and no memory cache
	// by default, so a revoke or disable takes effect on the next call.
	RoleManagement = "management"
	// RoleConsumer authorizes another team's API, configured by that API's instance: route map,
	// response mode, cache, API name and binding.
	RoleConsumer = "consumer"
)

// ConfigFromEnv reads a Config from getenv, with defaults for unset variables. Returns an error
// naming the variable when a value is malformed or does not belong to the role, so a bad
// deployment fails at init.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	role := getenv(EnvRole)
	switch role {
	case RoleManagement:
		for _, name := range []string{EnvRoutes, EnvResponse, EnvAPIName, EnvRequireAPIBinding} {
			if getenv(name) != "" {
				return Config{}, fmt.Errorf("%s is set, but the %s authorizer's rules are fixed: unset it", name, RoleManagement)
			}
		}
	case RoleConsumer:
	default:
		return Config{}, fmt.Errorf("%s=%q: want %s (apitokens' own API) or %s (an API that attaches the authorizer)", EnvRole, role, RoleManagement, RoleConsumer)
	}
	cfg := Config{
		Prefix:        getenv(EnvPrefix),
		CacheTTL:      DefaultCacheTTL,
		CacheSize:     DefaultCacheSize,
		UsageInterval: DefaultUsageInterval,
		LookupTimeout: DefaultLookupTimeout,
		APIKeyHeader:  getenv(EnvAPIKeyHeader),
	}
	if cfg.Prefix != "" && !token.ValidPrefix(cfg.Prefix) {
		return cfg, fmt.Errorf("%s=%q: want a lowercase letter and up to 15 lowercase letters or digits", EnvPrefix, cfg.Prefix)
	}
	seconds := func(name string, dst *time.Duration, max int) error {
		s := getenv(name)
		if s == "" {
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > max {
			return fmt.Errorf("%s=%q: want a whole number of seconds from 0 to %d", name, s, max)
		}
		*dst = time.Duration(n) * time.Second
		return nil
	}
	if role == RoleManagement {
		cfg.CacheTTL, cfg.DeferLimits = 0, true
	}
	if err := seconds(EnvCacheTTL, &cfg.CacheTTL, 3600); err != nil {
		return cfg, err
	}
	if err := seconds(EnvUsageInterval, &cfg.UsageInterval, 86400); err != nil {
		return cfg, err
	}
	if s := getenv(EnvCacheSize); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10_000_000 {
			return cfg, fmt.Errorf("%s=%q: want a whole number from 1 to 10000000", EnvCacheSize, s)
		}
		cfg.CacheSize = n
	}
	low, err := QuotaLowPercent(getenv)
	if err != nil {
		return cfg, err
	}
	cfg.Limits.LowPercent = low
	cfg.APIName = getenv(EnvAPIName)
	if cfg.APIName != "" && !token.ValidAPIName(cfg.APIName) {
		return cfg, fmt.Errorf("%s=%q: want a lowercase letter or digit and up to 63 lowercase letters, digits or ._-", EnvAPIName, cfg.APIName)
	}
	switch v := getenv(EnvRequireAPIBinding); v {
	case "", "false":
	case "true":
		if cfg.APIName == "" {
			return cfg, fmt.Errorf("%s=true needs %s: the name tokens must be bound to", EnvRequireAPIBinding, EnvAPIName)
		}
		cfg.RequireAPIBinding = true
	default:
		return cfg, fmt.Errorf("%s=%q: want true or false", EnvRequireAPIBinding, v)
	}
	routes, err := ParseRouteMap(getenv(EnvRoutes))
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", EnvRoutes, err)
	}
	cfg.Routes = routes
	switch getenv(EnvResponse) {
	case "", "simple":
	case "iam":
		cfg.HTTPIAMPolicy = true
	default:
		return cfg, fmt.Errorf("%s=%q: want simple or iam", EnvResponse, getenv(EnvResponse))
	}
	return cfg, nil
}

// QuotaLowPercent reads QUOTA_LOW_PERCENT: 0 (the default, token.DefaultQuotaLowPercent) when it
// is unset; an error naming the variable unless it is a whole number from 1 to 99.
func QuotaLowPercent(getenv func(string) string) (int, error) {
	s := getenv(EnvQuotaLowPercent)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 99 {
		return 0, fmt.Errorf("%s=%q: want a whole number of percent from 1 to 99", EnvQuotaLowPercent, s)
	}
	return n, nil
}
