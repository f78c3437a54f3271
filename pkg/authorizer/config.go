package authorizer

import (
	"fmt"
	"strconv"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvPrefix        = "TOKEN_PREFIX"                 // deployment token prefix, default "tok"
	EnvCacheTTL      = "AUTH_CACHE_TTL_SECONDS"       // record cache TTL, default 10; 0 disables the cache
	EnvCacheSize     = "AUTH_CACHE_SIZE"              // records cached at most, default 10000
	EnvUsageInterval = "USAGE_WRITE_INTERVAL_SECONDS" // one usage write per token per interval, default 60; 0 writes every use
	EnvRoutes        = "ROUTE_PERMISSIONS"            // JSON route map, e.g. {"GET /*":["list"]}; unset allows every route
	EnvAPIKeyHeader  = "API_KEY_HEADER"               // optional header with the bare token, e.g. x-api-key
	EnvResponse      = "AUTH_RESPONSE"                // HTTP API answers: "simple" (default) or "iam"
)

// ConfigFromEnv reads a Config from getenv, with defaults for unset variables. Returns an error
// naming the variable when a value is malformed, so a bad deployment fails at init.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
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
