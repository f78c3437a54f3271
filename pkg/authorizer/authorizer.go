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
	// APIName names the API this instance protects: a token bound to other APIs (Token.APIs) is
	// refused FORBIDDEN_API. "" accepts tokens whatever their binding.
	APIName string
	// RequireAPIBinding also refuses tokens bound to no API; it needs an APIName.
	RequireAPIBinding bool
	// DeferLimits lets a request that the token's limits refuse through to the API behind the
	// authorizer, with the refusal in the context, so that the API can answer 429 (which an
	// authorizer cannot). The limits are still counted here. Only apitokens' own management
	// authorizer sets it (RoleManagement), for functions that read that context.
	DeferLimits bool
	Now         func() time.Time
	Logger      *slog.Logger
}

// Authorizer decides whether a presented token may call a route.
type Authorizer struct {
	store token.Store
	cfg   Config

	mu    sync.Mutex
	cache map[string]cacheEntry
	usage map[string]*usage

	writes sync.WaitGroup // first-sight usage writes in flight
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
	Forbidden                   // a valid token refused this API, this route or the caller's address: 403
	Limited                     // a valid token over its rate limit or quota: 429 where the API can say so
	Allowed
)

// Request is what an authorization looks at.
type Request struct {
	Token  string // the presented token
	Method string // HTTP method of the request
	// Route is the route as API Gateway matched it, never a path with a stage in it: the path of
	// an HTTP API's routeKey ("/files/{id}", or "$default"), a REST API's resource
	// ("/files/{proxy+}"), or for a REST TOKEN authorizer, which is told no resource, the path of
	// the method ARN with the stage removed.
	Route    string
	SourceIP netip.Addr // the caller's address; the zero Addr when unknown (REST TOKEN events)
}

// Decision is the outcome of one authorization.
type Decision struct {
	Outcome Outcome
	Code    string            // the token.Verdict code: VALID, MALFORMED, EXPIRED, RATE_LIMITED, ...
	Token   *token.Token      // the token when its secret matched; shared: never modify it
	Limit   *token.LimitState // the refusing limit's state, for Limited
	// Granted says the token passed every check that does not depend on the route: validity, API
	// binding, IP allowlist and limits. Only a granted decision may issue a policy that allows
	// anything; it allows exactly the routes the token's permissions satisfy, so API Gateway can
	// reuse it for any route. Not granted: the policy allows nothing.
	Granted bool
}

// Authorize decides whether a request may proceed. The checks that do not depend on the route
// come first, all of them, before the route's permissions: the token (a malformed one costs no
// store call), its API binding, then its limits (IP allowlist, rate limit, quota). So no Allow
// ever comes from a decision that skipped a check another route would make, and a request for a
// route the token lacks counts against its limits like any other request of that token.
// The error is non-nil only when the store failed or timed out; callers must then deny.
func (a *Authorizer) Authorize(ctx context.Context, req Request) (Decision, error) {
	p, ok := token.Parse(a.cfg.Prefix, req.Token)
	if !ok {
		return Decision{Outcome: Unauthorized, Code: token.CodeMalformed}, nil
	}
	now := a.cfg.Now()
	v, counted, err := a.judge(ctx, p, now)
	if err != nil {
		return Decision{}, err
	}
	if !v.Valid() {
		return Decision{Outcome: Unauthorized, Code: v.Code, Token: v.Token}, nil
	}
	t := v.Token
	if !t.AllowsAPI(a.cfg.APIName, a.cfg.RequireAPIBinding) {
		return Decision{Outcome: Forbidden, Code: token.CodeForbiddenAPI, Token: t}, nil
	}
	if t.HasLimits() {
		v, err := token.Enforce(ctx, a.store, t, req.SourceIP, now)
		if err != nil {
			return Decision{}, err
		}
		d := Decision{Outcome: Limited, Code: v.Code, Token: t, Limit: v.Limit}
		switch {
		case v.Valid():
		case a.cfg.DeferLimits:
			d.Outcome = Allowed // the API answers the refusal (see the context's code)
			return d, nil
		case v.Code == token.CodeForbiddenIP:
			d.Outcome = Forbidden
			return d, nil
		default:
			return d, nil
		}
	}
	if !counted {
		a.recordUse(ctx, t.ID, now)
	}
	if a.cfg.Routes != nil && !a.cfg.Routes.allows(t.HasPermission, req.Method, req.Route) {
		return Decision{Outcome: Forbidden, Code: token.CodeInsufficientPermissions, Token: t, Granted: true}, nil
	}
	return Decision{Outcome: Allowed, Code: token.CodeValid, Token: t, Granted: true}, nil
}

// judge finds the token p names and judges it at now. recorded says this use is counted by the
// usage write a first sight sends in parallel with its read (see lookup), so the caller must not
// count it again.
func (a *Authorizer) judge(ctx context.Context, p token.Parsed, now time.Time) (token.Verdict, bool, error) {
	t, cached, recorded, err := a.lookup(ctx, p, now, false)
	if err != nil {
		return token.Verdict{}, false, err
	}
	v := token.Verdict{Code: token.CodeNotFound}
	if t != nil {
		v = token.Judge(t, p, now)
	}
	if v.Code == token.CodeNotFound && cached {
		// A secret rotated in after the record was cached, or a token created after its id was
		// cached as unknown, must not wait for the cache to expire.
		if t, cached, recorded, err = a.lookup(ctx, p, now, true); err != nil {
			return token.Verdict{}, false, err
		}
		if !cached && t != nil {
			v = token.Judge(t, p, now)
		}
	}
	return v, recorded, nil
}

// lookup returns the token p names from the cache or the store (nil when there is none), whether
// it came from the cache, and whether this use is counted by a parallel usage write. With
// refresh, a cached record older than refreshAfter is read again.
//
// First sight: on a cache miss when this instance owes the token a usage write (it never wrote
// its uses, or the interval has passed), the write goes out at the same time as the read, as
// one conditional UpdateItem (Store.RecordAdmittedUse) that counts the use only if the stored
// token admits it without further checks (token.Use.Admits: right secret and label, active,
// allowed on this API, no limits). The decision waits for the read only, so a token's first
// authorization costs one round trip of latency instead of a read and then a write, and a
// refused token is never counted. The write is sent before the decision returns; its outcome is
// handled when it arrives: if it did not count, the uses it carried are pending again. The read
// decides; the write never turns an Allow into a Deny. On Lambda, an answer that arrives after
// the function returned is handled when the instance thaws; the request itself has long left.
func (a *Authorizer) lookup(ctx context.Context, p token.Parsed, now time.Time, refresh bool) (*token.Token, bool, bool, error) {
	a.mu.Lock()
	e, ok := a.cache[p.ID]
	if ok && now.Before(e.expires) && (!refresh || now.Sub(e.fetched) < refreshAfter) {
		a.mu.Unlock()
		return e.tok, true, false, nil
	}
	claim := a.claimUsageWrite(p.ID, now)
	a.mu.Unlock()

	var use token.Use
	if claim != nil {
		use = token.Use{
			SecretHash: token.HashSecret(p.Secret), Env: p.Env, API: a.cfg.APIName,
			RequireAPI: a.cfg.RequireAPIBinding, At: now, N: claim.uses,
		}
		a.writes.Add(1)
		go a.writeFirstUse(context.WithoutCancel(ctx), claim, use)
	}
	if a.cfg.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.LookupTimeout)
		defer cancel()
	}
	t, err := a.store.FindToken(ctx, p.ID)
	if err == nil && ctx.Err() != nil {
		// The store answered after the deadline: deny rather than trust a late answer.
		err = ctx.Err()
	}
	if err != nil && token.ErrorCode(err) != token.ENOTFOUND {
		if claim != nil {
			a.giveBack(claim)
		}
		return nil, false, false, err
	}
	counted := claim != nil && t != nil && use.Admits(t)
	if claim != nil && !counted {
		a.giveBack(claim) // the write will not count it: the caller records an allowed use itself
	}
	if a.cfg.CacheTTL > 0 {
		a.mu.Lock()
		if len(a.cache) >= a.cfg.CacheSize {
			a.evict(now)
		}
		a.cache[p.ID] = cacheEntry{tok: t, fetched: now, expires: now.Add(a.cfg.CacheTTL)}
		a.mu.Unlock()
	}
	return t, false, counted, nil
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

// usageClaim is the usage write a first sight sends with its read: the uses it carries (this one
// and those buffered before it) and the instance's previous write time, to give back if the
// write does not count them.
type usageClaim struct {
	id        string
	uses      int64
	lastWrite time.Time
	settled   bool // under a.mu: given back already
}

// claimUsageWrite claims the usage write of token id when one is due at now (this instance never
// wrote the token's uses, or the interval has passed): it takes the buffered uses plus this one,
// and marks the write as done so that concurrent requests buffer theirs. Returns nil when no
// write is due. a.mu must be held.
func (a *Authorizer) claimUsageWrite(id string, now time.Time) *usageClaim {
	u, ok := a.usage[id]
	if ok && !u.lastWrite.IsZero() && now.Sub(u.lastWrite) < a.cfg.UsageInterval {
		return nil
	}
	if !ok {
		if len(a.usage) >= a.cfg.CacheSize {
			a.pruneUsage(now)
		}
		u = &usage{}
		a.usage[id] = u
	}
	c := &usageClaim{id: id, uses: u.pending + 1, lastWrite: u.lastWrite}
	u.pending, u.lastWrite = 0, now
	return c
}

// writeFirstUse sends a first sight's usage write and gives its uses back if it did not count
// them (the token did not admit them, or the store failed): usage bookkeeping is never a reason
// to deny, only to retry with the next write.
func (a *Authorizer) writeFirstUse(ctx context.Context, c *usageClaim, u token.Use) {
	defer a.writes.Done()
	if a.cfg.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.LookupTimeout)
		defer cancel()
	}
	counted, err := a.store.RecordAdmittedUse(ctx, c.id, u)
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "usage write failed; retrying with the next use", "tokenId", c.id, "uses", c.uses, "error", err)
	}
	if !counted {
		a.giveBack(c)
	}
}

// giveBack settles a claim whose write did not count its uses, once: the buffered uses are
// pending again and a write is due again. This use is not given back: the request that made the
// claim counts it itself if it is allowed (Authorize calls recordUse), and a refused one is not
// counted at all.
func (a *Authorizer) giveBack(c *usageClaim) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.settled {
		return
	}
	c.settled = true
	if u, ok := a.usage[c.id]; ok {
		u.pending += c.uses - 1
		u.lastWrite = c.lastWrite
	}
}

// WaitForWrites waits until the usage writes sent in parallel with first-sight reads have been
// answered, for tests and for a server that is shutting down.
func (a *Authorizer) WaitForWrites() { a.writes.Wait() }

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
