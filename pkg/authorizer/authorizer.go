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
	// BufferUses buffers every outcome for FlushUsage, which the Lambda function runs alongside
	// each invocation (pkg/lambdaext; it writes at most once per interval) and at SIGTERM. Off, a
	// token's write goes out as soon as a decision finds it due, without the decision waiting for
	// it.
	BufferUses bool
	// People signs people in (people.go): a credential with the shape of a JWT goes to it, not to
	// the store. nil: no sign-in. Only apitokens' own management authorizer has it.
	People PersonVerifier
	// Limits tunes the leases of rate limits and quotas (token.Limiter): the quota low mark
	// (QUOTA_LOW_PERCENT), and where quota events go besides the store (the local server).
	Limits token.LimiterConfig
	Now    func() time.Time
	Logger *slog.Logger
}

// Authorizer decides whether a presented token may call a route.
type Authorizer struct {
	store  token.Store
	cfg    Config
	limits *token.Limiter // leases of rate-limit windows and quotas

	usage *token.UsageBuffer // outcomes counted and not yet written

	mu    sync.Mutex
	cache map[string]cacheEntry

	ending map[string]bool // ids whose grace this instance is ending (endGrace); under mu

	writes sync.WaitGroup // usage writes (recordUse) and grace endings (endGrace) in flight
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
	limits := cfg.Limits
	if limits.Logger == nil {
		limits.Logger = cfg.Logger
	}
	usage := token.NewUsageBuffer(store, token.UsageBufferConfig{
		Interval: cfg.UsageInterval, Buffered: cfg.BufferUses, Size: cfg.CacheSize,
		WriteTimeout: cfg.LookupTimeout, Logger: cfg.Logger, Now: cfg.Now,
	})
	return &Authorizer{store: store, cfg: cfg, usage: usage, cache: make(map[string]cacheEntry), ending: make(map[string]bool),
		limits: token.NewLimiter(store, limits)}
}

// ReturnLeases gives back what the instance's idle quota leases hold (all of them with force,
// at SIGTERM or shutdown), best effort: see token.Limiter.ReturnIdle. On Lambda it runs with each
// invocation's flush, so a lease idle while the environment is frozen goes back at its next
// invocation or at its shutdown.
func (a *Authorizer) ReturnLeases(ctx context.Context, force bool) int64 {
	return a.limits.ReturnIdle(ctx, a.cfg.Now(), force)
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
//
// An outcome is counted after the decision (an allowed use, or a refusal of a token whose secret
// matched): when this instance owes the token a usage write (it never wrote the token's counts,
// or UsageInterval has passed), the write goes out in its own goroutine and the decision does not
// wait for it. So a token's first sight costs one round trip of latency, its GetItem. On Lambda
// (Config.BufferUses) outcomes are only buffered, and the instance writes them all at most once
// per interval (FlushUsage), in parallel with an invocation's own read (pkg/lambdaext), and at
// SIGTERM: an instance that sees many tokens for the first time writes them together, not once
// per request, and a flush adds no round trip to the invocation it runs beside. Unknown ids,
// wrong secrets and malformed tokens are never counted, so they never cost a write. This replaces
// a usage write sent in parallel with each first sight's read, which needed a condition repeating
// the whole validity check in DynamoDB, bookkeeping to take back uses the read then refused, and
// a junk bound for made-up tokens, and which still had the write compete with the read on the
// same table (see README "Performance" for both figures).
func (a *Authorizer) Authorize(ctx context.Context, req Request) (Decision, error) {
	d, _, err := a.authorize(ctx, req)
	return d, err
}

// authorize is Authorize, and also returns the usage write the decision started (nil when there
// was none; closed when it is done), for a caller that wants to wait for its own write.
func (a *Authorizer) authorize(ctx context.Context, req Request) (Decision, <-chan struct{}, error) {
	p, ok := token.Parse(a.cfg.Prefix, req.Token)
	if !ok {
		return Decision{Outcome: Unauthorized, Code: token.CodeMalformed}, nil, nil
	}
	now := a.cfg.Now()
	v, err := a.judge(ctx, p, now)
	if err != nil {
		return Decision{}, nil, err
	}
	return a.decide(ctx, req, v, now)
}

// decide finishes a decision once the token is judged. Every outcome for a token the store holds
// (its secret matched) is counted for its usage counters (recordUse): a valid use, or a refusal
// by its code; unknown ids, wrong secrets and malformed tokens are not, so junk never writes.
func (a *Authorizer) decide(ctx context.Context, req Request, v token.Verdict, now time.Time) (Decision, <-chan struct{}, error) {
	if !v.Valid() {
		var written <-chan struct{}
		if v.Token != nil && token.IsRefusalCode(v.Code) {
			written = a.recordUse(ctx, v.Token.ID, v.Code, now)
		}
		return Decision{Outcome: Unauthorized, Code: v.Code, Token: v.Token}, written, nil
	}
	t := v.Token
	if !t.AllowsAPI(a.cfg.APIName, a.cfg.RequireAPIBinding) {
		return Decision{Outcome: Forbidden, Code: token.CodeForbiddenAPI, Token: t}, a.recordUse(ctx, t.ID, token.CodeForbiddenAPI, now), nil
	}
	if t.HasLimits() {
		v, err := a.limits.Enforce(ctx, t, req.SourceIP, now)
		if err != nil {
			return Decision{}, nil, err
		}
		d := Decision{Outcome: Limited, Code: v.Code, Token: t, Limit: v.Limit}
		if !v.Valid() && v.Limit != nil && v.Limit.Lease != nil && v.Limit.Lease.FromStore {
			// Once per lease write that found the limit spent; the refusals answered from memory
			// after it are not logged, so a client hammering a spent token floods no log.
			a.cfg.Logger.InfoContext(ctx, "limit refused", "tokenId", t.ID, "code", v.Code,
				"reset", v.Limit.Reset, "lease", v.Limit.Lease)
		}
		if !v.Valid() {
			written := a.recordUse(ctx, t.ID, v.Code, now)
			switch {
			case a.cfg.DeferLimits:
				d.Outcome = Allowed // the API answers the refusal (see the context's code)
			case v.Code == token.CodeForbiddenIP:
				d.Outcome = Forbidden
			}
			return d, written, nil
		}
	}
	if a.cfg.Routes != nil && !a.cfg.Routes.allows(t.HasPermission, req.Method, req.Route, !req.PathOnly) {
		written := a.recordUse(ctx, t.ID, token.CodeInsufficientPermissions, now)
		return Decision{Outcome: Forbidden, Code: token.CodeInsufficientPermissions, Token: t, Granted: true}, written, nil
	}
	return Decision{Outcome: Allowed, Code: token.CodeValid, Token: t, Granted: true}, a.recordUse(ctx, t.ID, token.CodeValid, now), nil
}

// judge finds the token p names and judges it at now.
func (a *Authorizer) judge(ctx context.Context, p token.Parsed, now time.Time) (token.Verdict, error) {
	t, cached, err := a.lookup(ctx, p.ID, now, false)
	if err != nil {
		return token.Verdict{}, err
	}
	v := token.Verdict{Code: token.CodeNotFound}
	if t != nil {
		v = token.Judge(t, p, now)
	}
	if v.Code == token.CodeNotFound && cached {
		// A secret rotated in after the record was cached, or a token created after its id was
		// cached as unknown, must not wait for the cache to expire.
		if t, cached, err = a.lookup(ctx, p.ID, now, true); err != nil {
			return token.Verdict{}, err
		}
		if !cached && t != nil {
			v = token.Judge(t, p, now)
		}
	}
	if v.EndsGrace {
		if err := a.endGrace(ctx, v.Token, now); err != nil {
			return token.Verdict{}, err
		}
	}
	return v, nil
}

// endGrace ends the grace of t's previous secret, because t's current secret was just used for
// the first time this instance saw (token.EndGrace, once per rotation). This instance refuses
// the old secret from now on: its cached record is replaced by one whose grace has ended (not
// dropped: a re-read could land before the write and find the old secret still valid). On the
// local server with a cache the write goes out in its own goroutine (WaitForWrites waits for it)
// and the decision does not wait. Without a cache (the management authorizer) nothing would carry
// the ending until the write lands, and on Lambda (Config.BufferUses) the environment freezes
// once the answer is sent, so a goroutine's write could wait for the next invocation: there the
// decision waits for the write, one write of latency once per rotation (per instance that sees
// the new secret before the write), as POST /verify does.
// Another instance that cached the record before the write refuses the old secret once its entry
// expires: the revocation bound, CacheTTL after the write. A failed write is logged, and the next
// instance that reads the token and sees its new secret used tries again; it never denies the new
// secret, except without a cache, where the store's failure is the decision's error (fail closed).
func (a *Authorizer) endGrace(ctx context.Context, t *token.Token, now time.Time) error {
	ended := t.Clone()
	ended.PrevSecretUntil, ended.PrevUntilFirstUse = now, false
	a.mu.Lock()
	if e, ok := a.cache[t.ID]; ok && e.tok == t {
		e.tok = ended
		a.cache[t.ID] = e
	}
	if a.ending[t.ID] {
		a.mu.Unlock()
		return nil
	}
	a.ending[t.ID] = true
	a.writes.Add(1)
	a.mu.Unlock()

	write := func(ctx context.Context) error {
		defer a.writes.Done()
		defer func() { a.mu.Lock(); delete(a.ending, t.ID); a.mu.Unlock() }()
		if a.cfg.LookupTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.cfg.LookupTimeout)
			defer cancel()
		}
		_, err := token.EndGrace(ctx, a.store, t.Clone(), now)
		return err
	}
	logged := func(ctx context.Context) {
		if err := write(ctx); err != nil {
			a.cfg.Logger.WarnContext(ctx, "ending a rotation's grace failed; the next first use tries again", "tokenId", t.ID, "error", err)
		}
	}
	switch {
	case a.cfg.CacheTTL <= 0:
		return write(ctx)
	case a.cfg.BufferUses:
		logged(ctx)
	default:
		go logged(context.WithoutCancel(ctx)) // the request may be answered, and its context gone
	}
	return nil
}

// lookup returns token id from the cache or the store (nil when there is none) and whether it
// came from the cache. With refresh, a cached record older than refreshAfter is read again.
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
	if err == nil && ctx.Err() != nil {
		// The store answered after the deadline: deny rather than trust a late answer.
		err = ctx.Err()
	}
	if err != nil && token.ErrorCode(err) != token.ENOTFOUND {
		return nil, false, err
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

// WaitForWrites waits until the usage writes decisions started have been answered, for tests and
// for a server that is shutting down.
func (a *Authorizer) WaitForWrites() { a.writes.Wait() }

// FlushUsage writes the uses buffered with Config.BufferUses (token.UsageBuffer.Flush): one
// usage write per token, at most 16 at a time (64 when forced), each bounded by LookupTimeout,
// with the time of the token's last use; it returns once they are answered. It writes only when
// force is set, when UsageInterval has passed since it last wrote (the first call always
// writes), or when the buffer holds CacheSize tokens; otherwise it returns at once. So each
// token's item takes at most one usage write per interval per instance. A failed write keeps its
// uses for the next flush. Flushes run one at a time. It returns the number of tokens written or
// attempted.
//
// It also gives back the quota leases idle since LimiterConfig.IdleReturn (all of them with
// force), so the Lambda flush and a shutdown return leases too (ReturnLeases).
func (a *Authorizer) FlushUsage(ctx context.Context, force bool) int {
	a.ReturnLeases(ctx, force)
	return a.usage.Flush(ctx, force)
}

// recordUse counts an outcome of token id at now, code token.CodeValid for an allowed use or a
// refusal's code, in the instance's usage buffer, and writes what the instance counted of the
// token when its write is due: at most once per interval per token, in one usage write
// (Store.RecordUse: lastUsedAt and usageCount for valid uses, and the day's counters) sent from
// its own goroutine, so that the decision does not wait for it; with Config.BufferUses it only
// counts, for FlushUsage. It returns a channel closed when that write is done, or nil when the
// outcome was only counted. A failed write is logged and its counts kept for the next one: usage
// bookkeeping never turns an authorization into a denial.
func (a *Authorizer) recordUse(ctx context.Context, id, code string, now time.Time) <-chan struct{} {
	_, w, due := a.usage.Add(id, code, now)
	if !due {
		return nil
	}
	a.writes.Add(1)
	done := make(chan struct{})
	go func() {
		defer a.writes.Done()
		defer close(done)
		a.usage.Write(ctx, id, w) // the request may be answered, and its context gone: Write does not mind
	}()
	return done
}
