// Package authorizer is the API Gateway Lambda authorizer of apitokens: REST API TOKEN and
// REQUEST authorizers (IAM policies) and HTTP API payload 2.0 (simple or IAM responses), and the
// same decision for the local server's management calls. It fails closed: a store error or a
// timeout never allows. A bounded cache of token records and throttled usage writes keep the hot
// path at one GetItem per cache miss and about zero writes.
package authorizer

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Defaults of Config, applied by ConfigFromEnv.
const (
	DefaultCacheTTL      = 10 * time.Second
	DefaultCacheSize     = 10000
	DefaultUsageInterval = 60 * time.Second
	DefaultLookupTimeout = 2 * time.Second
)

// Config tunes an Authorizer. Zero values mean "off", not "default": a zero CacheTTL caches
// nothing and a zero UsageInterval writes every use.
type Config struct {
	Prefix        string        // deployment token prefix ("" for token.DefaultPrefix)
	Routes        *RouteMap     // nil: every valid token may call every route
	CacheTTL      time.Duration // how long a looked-up record (or its absence) is reused
	CacheSize     int           // most records cached at once
	UsageInterval time.Duration // at most one usage write per token per interval
	LookupTimeout time.Duration // bound on a store read; 0 for none beyond the caller's context
	APIKeyHeader  string        // optional header carrying the bare token, e.g. x-api-key
	HTTPIAMPolicy bool          // HTTP API: answer an IAM policy instead of a simple response
	Now           func() time.Time
	Logger        *slog.Logger
}

// Authorizer decides whether a presented token may call a route.
type Authorizer struct {
	store token.Store
	cfg   Config

	mu    sync.Mutex
	cache map[string]cacheEntry
	usage map[string]*usage
}

type cacheEntry struct {
	tok     *token.Token // nil: the id is unknown (a negative entry)
	fetched time.Time
	expires time.Time
}

// refreshAfter is how soon a cached record may be read again because a presented secret did not
// match it: the secret may have been rotated in since. It bounds the extra reads that wrong
// secrets for a known id can cause to one per token per second.
const refreshAfter = time.Second

type usage struct {
	pending   int64     // uses not yet written
	lastWrite time.Time // zero: never written by this instance
}

// New returns an Authorizer reading tokens from store.
func New(store token.Store, cfg Config) *Authorizer {
	if cfg.Prefix == "" {
		cfg.Prefix = token.DefaultPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	return &Authorizer{store: store, cfg: cfg, cache: make(map[string]cacheEntry), usage: make(map[string]*usage)}
}

// Outcome of a decision.
type Outcome int

const (
	Unauthorized Outcome = iota // no usable token: 401
	Forbidden                   // a valid token lacking the route's permissions or the caller's address: 403
	Limited                     // a valid token over its rate limit or quota: 429 where the API can say so
	Allowed
)

// Request is what an authorization looks at.
type Request struct {
	Token    string     // the presented token
	Method   string     // HTTP method
	Path     string     // request path
	SourceIP netip.Addr // the caller's address; the zero Addr when unknown (REST TOKEN events)
	// DeferLimits lets a request that the token's limits refuse through to the API behind the
	// authorizer, with the refusal in the context, so that the API can answer 429 (which an
	// authorizer cannot): apitokens' own management functions do so. The limits are still
	// counted here.
	DeferLimits bool
}

// Decision is the outcome of one authorization.
type Decision struct {
	Outcome Outcome
	Code    string            // the token.Verdict code: VALID, MALFORMED, EXPIRED, RATE_LIMITED, ...
	Token   *token.Token      // the token when its secret matched; shared: never modify it
	Limit   *token.LimitState // the refusing limit's state, for Limited
}

// Authorize decides whether a request may proceed: the token (a malformed one costs no store
// call), the route's permissions, then the token's limits (IP allowlist, rate limit, quota).
// The error is non-nil only when the store failed or timed out; callers must then deny.
func (a *Authorizer) Authorize(ctx context.Context, req Request) (Decision, error) {
	p, ok := token.Parse(a.cfg.Prefix, req.Token)
	if !ok {
		return Decision{Outcome: Unauthorized, Code: token.CodeMalformed}, nil
	}
	now := a.cfg.Now()
	t, cached, err := a.lookup(ctx, p.ID, now, false)
	if err != nil {
		return Decision{}, err
	}
	v := token.Verdict{Code: token.CodeNotFound}
	if t != nil {
		v = token.Judge(t, p.Secret, now)
	}
	if v.Code == token.CodeNotFound && cached {
		// A secret rotated in after the record was cached, or a token created after its id was
		// cached as unknown, must not wait for the cache to expire.
		if t, cached, err = a.lookup(ctx, p.ID, now, true); err != nil {
			return Decision{}, err
		}
		if !cached && t != nil {
			v = token.Judge(t, p.Secret, now)
		}
	}
	if !v.Valid() {
		return Decision{Outcome: Unauthorized, Code: v.Code, Token: v.Token}, nil
	}
	if a.cfg.Routes != nil && !a.cfg.Routes.allows(t.HasPermission, req.Method, req.Path) {
		return Decision{Outcome: Forbidden, Code: token.CodeInsufficientPermissions, Token: t}, nil
	}
	if t.HasLimits() {
		v, err := token.Enforce(ctx, a.store, t, req.SourceIP, now)
		if err != nil {
			return Decision{}, err
		}
		d := Decision{Outcome: Limited, Code: v.Code, Token: t, Limit: v.Limit}
		switch {
		case v.Valid():
		case req.DeferLimits:
			d.Outcome = Allowed // the API answers the refusal (see the context's code)
			return d, nil
		case v.Code == token.CodeForbiddenIP:
			d.Outcome = Forbidden
			return d, nil
		default:
			return d, nil
		}
	}
	a.recordUse(ctx, t.ID, now)
	return Decision{Outcome: Allowed, Code: token.CodeValid, Token: t}, nil
}

// lookup returns the token with id from the cache or the store (nil when there is none), and
// whether it came from the cache. With refresh, a cached record older than refreshAfter is read
// again.
func (a *Authorizer) lookup(ctx context.Context, id string, now time.Time, refresh bool) (*token.Token, bool, error) {
	a.mu.Lock()
	e, ok := a.cache[id]
	a.mu.Unlock()
	if ok && now.Before(e.expires) && (!refresh || now.Sub(e.fetched) < refreshAfter) {
		return e.tok, true, nil
	}
	if a.cfg.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.LookupTimeout)
		defer cancel()
	}
	t, err := a.store.FindToken(ctx, id)
	if err != nil && token.ErrorCode(err) != token.ENOTFOUND {
		return nil, false, err
	}
	if err == nil && ctx.Err() != nil {
		// The store answered after the deadline: deny rather than trust a late answer.
		return nil, false, ctx.Err()
	}
	if a.cfg.CacheTTL > 0 {
		a.mu.Lock()
		if len(a.cache) >= a.cfg.CacheSize {
			a.evict(now)
		}
		a.cache[id] = cacheEntry{tok: t, fetched: now, expires: now.Add(a.cfg.CacheTTL)}
		a.mu.Unlock()
	}
	return t, false, nil
}

// evict makes room in a full cache: expired entries go first, then an arbitrary one (Go's map
// order is random, which is good enough for a 10-second cache).
func (a *Authorizer) evict(now time.Time) {
	for id, e := range a.cache {
		if !now.Before(e.expires) {
			delete(a.cache, id)
		}
	}
	for id := range a.cache {
		if len(a.cache) < a.cfg.CacheSize {
			return
		}
		delete(a.cache, id)
	}
}

// recordUse counts a use and writes the uses counted so far at most once per interval per token,
// in one UpdateItem. A failed write is logged and its uses kept for the next one: usage
// bookkeeping never turns an authorization into a denial.
func (a *Authorizer) recordUse(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	u, ok := a.usage[id]
	if !ok {
		if len(a.usage) >= a.cfg.CacheSize {
			a.pruneUsage(now)
		}
		u = &usage{}
		a.usage[id] = u
	}
	u.pending++
	if !u.lastWrite.IsZero() && now.Sub(u.lastWrite) < a.cfg.UsageInterval {
		a.mu.Unlock()
		return
	}
	n := u.pending
	u.pending, u.lastWrite = 0, now
	a.mu.Unlock()

	if err := a.store.RecordUse(ctx, id, now, n); err != nil {
		a.cfg.Logger.WarnContext(ctx, "usage write failed; retrying with the next use", "tokenId", id, "uses", n, "error", err)
		a.mu.Lock()
		u.pending += n
		a.mu.Unlock()
	}
}

// pruneUsage forgets tokens with nothing pending whose interval has passed.
func (a *Authorizer) pruneUsage(now time.Time) {
	for id, u := range a.usage {
		if u.pending == 0 && now.Sub(u.lastWrite) >= a.cfg.UsageInterval {
			delete(a.usage, id)
		}
	}
}
