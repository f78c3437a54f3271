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

	mu       sync.Mutex
	cache    map[string]cacheEntry
	usage    map[string]*usage
	refusals *token.RefusalBuffer // refusals not yet written (outcomes.go)

	writes sync.WaitGroup // first-sight usage writes in flight
	junk   int            // how far recent first sights were junk (see maxJunk); under mu
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
	return &Authorizer{store: store, cfg: cfg, cache: make(map[string]cacheEntry), usage: make(map[string]*usage),
		refusals: token.NewRefusalBuffer(cfg.UsageInterval, cfg.CacheSize)}
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
	// the method ARN with the stage removed (PathOnly).
	Route string
	// PathOnly says Route is a request path, not a route template: a key's {param} then matches
	// any characters, as in IAM's method-ARN patterns.
	PathOnly bool
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
	d, _, err := a.authorize(ctx, req)
	return d, err
}

// authorize is Authorize, and also returns the usage write a first sight sent with its read (nil
// when there was none), for a caller that must not answer before it.
func (a *Authorizer) authorize(ctx context.Context, req Request) (Decision, *usageClaim, error) {
	p, ok := token.Parse(a.cfg.Prefix, req.Token)
	if !ok {
		return Decision{Outcome: Unauthorized, Code: token.CodeMalformed}, nil, nil
	}
	now := a.cfg.Now()
	v, claim, err := a.judge(ctx, p, now)
	d, err := a.decide(ctx, req, v, claim, err, now)
	return d, claim, err
}

// decide finishes a decision once the token is judged.
func (a *Authorizer) decide(ctx context.Context, req Request, v token.Verdict, claim *usageClaim, err error, now time.Time) (Decision, error) {
	if err != nil {
		return Decision{}, err
	}
	if !v.Valid() {
		a.countRefusal(ctx, v.Token, v.Code, now)
		return Decision{Outcome: Unauthorized, Code: v.Code, Token: v.Token}, nil
	}
	t := v.Token
	if !t.AllowsAPI(a.cfg.APIName, a.cfg.RequireAPIBinding) {
		a.countRefusal(ctx, t, token.CodeForbiddenAPI, now)
		return Decision{Outcome: Forbidden, Code: token.CodeForbiddenAPI, Token: t}, nil
	}
	if t.HasLimits() {
		v, err := token.Enforce(ctx, a.store, t, req.SourceIP, now)
		if err != nil {
			return Decision{}, err
		}
		d := Decision{Outcome: Limited, Code: v.Code, Token: t, Limit: v.Limit}
		if !v.Valid() {
			a.countRefusal(ctx, t, v.Code, now)
		}
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
	if a.cfg.Routes != nil && !a.cfg.Routes.allows(t.HasPermission, req.Method, req.Route, !req.PathOnly) {
		a.countRefusal(ctx, t, token.CodeInsufficientPermissions, now)
		return Decision{Outcome: Forbidden, Code: token.CodeInsufficientPermissions, Token: t, Granted: true}, nil
	}
	if claim == nil || !claim.readAdmits {
		a.recordUse(ctx, t.ID, now) // unless the first sight's write counts it
	}
	return Decision{Outcome: Allowed, Code: token.CodeValid, Token: t, Granted: true}, nil
}

// judge finds the token p names and judges it at now. It returns the usage write a first sight
// sent in parallel with its read (see lookup), or nil.
func (a *Authorizer) judge(ctx context.Context, p token.Parsed, now time.Time) (token.Verdict, *usageClaim, error) {
	t, cached, claim, err := a.lookup(ctx, p, now, false)
	if err != nil {
		return token.Verdict{}, claim, err
	}
	v := token.Verdict{Code: token.CodeNotFound}
	if t != nil {
		v = token.Judge(t, p, now)
	}
	if v.Code == token.CodeNotFound && cached {
		// A secret rotated in after the record was cached, or a token created after its id was
		// cached as unknown, must not wait for the cache to expire.
		if t, cached, claim, err = a.lookup(ctx, p, now, true); err != nil {
			return token.Verdict{}, claim, err
		}
		if !cached && t != nil {
			v = token.Judge(t, p, now)
		}
	}
	if !cached {
		a.settleRead(claim, claim != nil && t != nil && claim.use.Admits(t), v.Valid())
	}
	return v, claim, nil
}

// lookup returns the token p names from the cache or the store (nil when there is none), whether
// it came from the cache, and the usage write a first sight sent with its read. With refresh, a
// cached record older than refreshAfter is read again.
//
// First sight: on a cache miss when this instance owes the token a usage write (it never wrote
// its uses, or the interval has passed), the write goes out at the same time as the read, as
// one conditional UpdateItem (Store.RecordAdmittedUse) that counts the use only if the stored
// token admits it without further checks (token.Use.Admits: right secret and label, active,
// allowed on this API, no limits). The decision waits for the read only, so a token's first
// authorization costs one round trip of latency instead of a read and then a write, and a
// refused token is never counted (see settle). The read decides; the write never turns an Allow
// into a Deny. On Lambda the write has been sent before the function returns; an answer that
// arrives after that is handled when the instance runs again.
func (a *Authorizer) lookup(ctx context.Context, p token.Parsed, now time.Time, refresh bool) (*token.Token, bool, *usageClaim, error) {
	a.mu.Lock()
	e, ok := a.cache[p.ID]
	if ok && now.Before(e.expires) && (!refresh || now.Sub(e.fetched) < refreshAfter) {
		a.mu.Unlock()
		return e.tok, true, nil, nil
	}
	claim := a.claimUsageWrite(p.ID, now)
	a.mu.Unlock()

	if claim != nil {
		claim.use = token.Use{
			SecretHash: token.HashSecret(p.Secret), Env: p.Env, API: a.cfg.APIName,
			RequireAPI: a.cfg.RequireAPIBinding, At: now, N: claim.uses,
		}
		a.writes.Add(1)
		go a.writeFirstUse(context.WithoutCancel(ctx), claim)
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
		a.settleRead(claim, false, false)
		return nil, false, claim, err
	}
	if a.cfg.CacheTTL > 0 {
		a.mu.Lock()
		if len(a.cache) >= a.cfg.CacheSize {
			a.evict(now)
		}
		a.cache[p.ID] = cacheEntry{tok: t, fetched: now, expires: now.Add(a.cfg.CacheTTL)}
		a.mu.Unlock()
	}
	return t, false, claim, nil
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

// usageClaim is the usage write a first sight sends with its read. The read and the write end in
// either order; the claim is settled once both have (settle).
type usageClaim struct {
	id        string
	uses      int64         // this use and those buffered before it
	lastWrite time.Time     // the instance's previous write of the token's uses
	use       token.Use     // the write's rule and uses
	done      chan struct{} // closed once the write is answered

	// Under a.mu.
	readDone, writeDone bool
	readAdmits          bool // the read found a token the write admits: the request counts on the write
	counted             bool // the write counted the uses
}

// maxJunk is how far unknown ids and wrong secrets may outnumber valid tokens among first sights
// (each valid token read earns back 4) before first sights stop sending their write with the
// read: a flood of made-up tokens (a checksum is easy to compute) must not cost a write each.
const maxJunk = 16

// claimUsageWrite claims the usage write of token id when one is due at now (this instance never
// wrote the token's uses, or the interval has passed) and first sights are not mostly junk: it
// takes the buffered uses plus this one, and marks the write as done so that concurrent requests
// buffer theirs. Returns nil when no write goes with the read. a.mu must be held.
func (a *Authorizer) claimUsageWrite(id string, now time.Time) *usageClaim {
	u, ok := a.usage[id]
	if a.junk > maxJunk || ok && !u.lastWrite.IsZero() && now.Sub(u.lastWrite) < a.cfg.UsageInterval {
		return nil
	}
	if !ok {
		if len(a.usage) >= a.cfg.CacheSize {
			a.pruneUsage(now)
		}
		u = &usage{}
		a.usage[id] = u
	}
	c := &usageClaim{id: id, uses: u.pending + 1, lastWrite: u.lastWrite, done: make(chan struct{})}
	u.pending, u.lastWrite = 0, now
	return c
}

// writeFirstUse sends a first sight's usage write. A failed write is logged: usage bookkeeping is
// never a reason to deny, only to count the uses with the next write.
func (a *Authorizer) writeFirstUse(ctx context.Context, c *usageClaim) {
	defer a.writes.Done()
	defer close(c.done)
	if a.cfg.LookupTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.cfg.LookupTimeout)
		defer cancel()
	}
	counted, err := a.store.RecordAdmittedUse(ctx, c.id, c.use)
	if err != nil {
		a.cfg.Logger.WarnContext(ctx, "usage write failed; retrying with the next use", "tokenId", c.id, "uses", c.uses, "error", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c.writeDone, c.counted = true, counted
	if c.readDone {
		a.settle(c)
	}
}

// settleRead records what the read of a first sight found: whether the token admits the write
// (the request counts on it), and whether it is valid at all. A valid token that the write does
// not admit (it has limits, or another API's binding) has the write due again at once, so that
// the request counts its own use if it is allowed; an unknown or refused one keeps the write
// claimed for the interval, so a repeated bad token does not cost a write each time.
func (a *Authorizer) settleRead(c *usageClaim, admits, valid bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if valid {
		a.junk = max(a.junk-4, 0)
	} else if c != nil {
		a.junk++
	}
	if c == nil {
		return
	}
	c.readDone, c.readAdmits = true, admits
	if u, ok := a.usage[c.id]; ok && valid && !admits {
		u.lastWrite = c.lastWrite
	}
	if c.writeDone {
		a.settle(c)
	}
}

// settle reconciles a claim once its read and its write are both known, so that every use is
// counted once and a refused request never: the write counted what the read expected; or it
// counted although the request does not rely on it (it was refused, or counts its use itself
// after its limits), so one use is taken back; or it counted nothing, and its uses are pending
// again (this one too when the request relied on the write). a.mu must be held.
func (a *Authorizer) settle(c *usageClaim) {
	u, ok := a.usage[c.id]
	if !ok {
		u = &usage{}
		a.usage[c.id] = u
	}
	switch {
	case c.counted && c.readAdmits:
	case c.counted:
		u.pending--
	case c.readAdmits:
		u.pending += c.uses
		u.lastWrite = c.lastWrite
	default:
		u.pending += c.uses - 1
	}
}

// WaitForWrites waits until the usage writes sent in parallel with first-sight reads have been
// answered, for tests and for a server that is shutting down (not while requests still come).
func (a *Authorizer) WaitForWrites() { a.writes.Wait() }

// recordUse counts a use and writes the uses counted so far at most once per interval per token,
// in one usage write (Store.RecordUse) that also carries the refusals buffered since (outcomes.go).
// A failed write is logged and its counts kept for the next one: usage bookkeeping never turns an
// authorization into a denial.
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

	use := a.usageOf(id, n, now)
	if err := a.store.RecordUse(ctx, id, use); err != nil {
		a.cfg.Logger.WarnContext(ctx, "usage write failed; retrying with the next use", "tokenId", id, "uses", n, "error", err)
		a.mu.Lock()
		u.pending += n
		a.mu.Unlock()
		a.refusals.Restore(id, use.Refused)
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
