package token

import (
	"context"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Delegation is attenuation only: what a caller that is not an admin hands on (a new token) or
// sets (an update) is never more than what it holds itself, the rule of macaroons and of GitHub's
// fine-grained tokens. The caller's own token, read fresh from the store, is the ceiling of every
// setting below; an admin has none.
//
//	permissions   each covered by one of the caller's grants: "files:*" covers "files:read" and
//	              "files:r*", "files:read" does not cover "files:*"; manage only by manage, admin never
//	apis          a subset of the caller's list when it has one (an empty list, every API, is not)
//	expiresAt     no later than the caller's when it expires (null, never, is not)
//	allowedCidrs  each prefix inside one of the caller's when it has some ([] or null is not)
//	rateLimit     admits no request sequence the caller's own limit would refuse (rateWithin)
//	remaining     no more than the caller's uses left now, when it has a quota (null is not)
//	refill        no larger amount and no higher rate (amount per interval) than the caller's
//
// On create an omitted apis, expiry, allowedCidrs, rateLimit or remaining (with its refill)
// inherits the caller's. On update only the fields the update sets are checked, and each may
// also be anything no looser than the token's own previous value: a caller can tighten any token
// it manages, including itself, and can loosen a setting only up to its own ceiling.

// ceilings returns the caller's own token as the bound of what it may hand on: nil for an admin,
// and for a caller that presented no token (signed in some other way), whose only ceiling is its
// owner. For any other caller it costs one FindToken (a strongly consistent GetItem on DynamoDB)
// per create or update, so that a ceiling is never judged from a stale copy: the authorizer's
// context on Lambda carries the caller's id and permissions, not its limits. Returns
// EUNAUTHORIZED if the caller's token is gone, revoked, expired or disabled by now (the call
// raced its revocation: the credential is no longer usable, as the next call would find),
// EFORBIDDEN if it no longer holds manage.
func (s *Service) ceilings(ctx context.Context, caller Principal, now time.Time) (*Token, error) {
	if caller.IsAdmin() || caller.TokenID == "" {
		return nil, nil
	}
	c, err := s.store.FindToken(ctx, caller.TokenID)
	if err == nil {
		err = s.liveQuotas(ctx, c)
	}
	if ErrorCode(err) == ENOTFOUND {
		return nil, errCallerGone
	} else if err != nil {
		return nil, err
	}
	return ceilingOf(caller, c, now)
}

// ceilingOf checks that c, the token caller presented as read now, still stands behind the call,
// and returns it with Remaining set to the uses it has left now.
func ceilingOf(caller Principal, c *Token, now time.Time) (*Token, error) {
	if c.Owner != caller.Owner || c.Status(now) != StatusActive || c.Gone(now) {
		return nil, errCallerGone
	}
	if !slices.Contains(c.Permissions, PermManage) {
		return nil, forbidden(caller, caller.Owner)
	}
	c.Remaining = remainingNow(c, now)
	return c, nil
}

var errCallerGone = Errorf(EUNAUTHORIZED, "The token you presented is no longer valid.")

// remainingNow returns t's uses left at now, counting a refill that fell due but that no use has
// applied yet (stores apply refills lazily); nil for unlimited.
func remainingNow(t *Token, now time.Time) *int64 {
	r, _, ok := t.QuotaNow(now)
	if !ok {
		return nil
	}
	return &r
}

// inherit fills what the create of t omits from the caller's ceiling c: apis and expiry into t,
// the limits into lim, before they are applied: the allowlist, the rate limit and the quota
// (remaining now, with the caller's refill unless the create names one). An omitted expiry stays
// the configured default when that comes no later than the caller's.
func inherit(t *Token, l Lifetime, lim *LimitsInput, c *Token) {
	if len(t.APIs) == 0 {
		t.APIs = slices.Clone(c.APIs)
	}
	if l.At == nil && l.Days == nil && !l.Never && !c.ExpiresAt.IsZero() &&
		(t.ExpiresAt.IsZero() || t.ExpiresAt.After(c.ExpiresAt)) {
		t.ExpiresAt = c.ExpiresAt
	}
	if lim.AllowedCIDRs == nil && len(c.AllowedCIDRs) > 0 {
		cidrs := make([]string, len(c.AllowedCIDRs))
		for i, p := range c.AllowedCIDRs {
			cidrs[i] = p.String()
		}
		lim.AllowedCIDRs = &cidrs
	}
	if lim.RateLimit == nil && !lim.ClearRateLimit && c.RateLimit != nil {
		rl := *c.RateLimit
		lim.RateLimit = &rl
	}
	if lim.Remaining == nil && !lim.ClearRemaining && c.Remaining != nil {
		r := *c.Remaining
		lim.Remaining = &r
		if lim.Refill == nil && !lim.ClearRefill && c.Refill != nil {
			rf := *c.Refill
			lim.Refill = &rf
		}
	}
}

// bound checks one setting of t against the same setting of the ceiling c (whose Remaining is
// the uses it has left now). Returns EFORBIDDEN naming the field and the ceiling.
type bound func(t, c *Token) error

var (
	boundPermissions bound = func(t, c *Token) error {
		for _, p := range t.Permissions {
			if !covers(c.Permissions, p) {
				return Errorf(EFORBIDDEN, "permissions: %q must be covered by your own (%s)", p, truncate(strings.Join(c.Permissions, ", "), 200))
			}
		}
		return nil
	}
	boundAPIs bound = func(t, c *Token) error {
		if apisWithin(t.APIs, c.APIs) {
			return nil
		}
		return Errorf(EFORBIDDEN, "apis: must be within your own (%s)", strings.Join(c.APIs, ", "))
	}
	boundExpiry bound = func(t, c *Token) error {
		if c.ExpiresAt.IsZero() || !t.ExpiresAt.IsZero() && !t.ExpiresAt.After(c.ExpiresAt) {
			return nil
		}
		return Errorf(EFORBIDDEN, "expiresAt: must be no later than your own (%s)", c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	boundCIDRs bound = func(t, c *Token) error {
		if cidrsWithin(t.AllowedCIDRs, c.AllowedCIDRs) {
			return nil
		}
		s := make([]string, len(c.AllowedCIDRs))
		for i, p := range c.AllowedCIDRs {
			s[i] = p.String()
		}
		return Errorf(EFORBIDDEN, "allowedCidrs: must lie within your own (%s)", truncate(strings.Join(s, ", "), 200))
	}
	boundRateLimit bound = func(t, c *Token) error {
		if c.RateLimit == nil || t.RateLimit != nil && rateWithin(*t.RateLimit, *c.RateLimit) {
			return nil
		}
		return Errorf(EFORBIDDEN, "rateLimit: must be no looser than your own (%d per %d s)", c.RateLimit.Limit, int64(c.RateLimit.Window/time.Second))
	}
	boundRemaining bound = func(t, c *Token) error {
		if c.Remaining == nil || t.Remaining != nil && *t.Remaining <= *c.Remaining {
			return nil
		}
		return Errorf(EFORBIDDEN, "remaining: must be no more than your own (%d)", *c.Remaining)
	}
	boundRefill bound = func(t, c *Token) error {
		switch {
		case c.Remaining == nil || t.Refill == nil:
			return nil // no quota above, or none refilled below
		case c.Refill == nil:
			return Errorf(EFORBIDDEN, "refill: must be no looser than your own (none)")
		case !refillWithin(*t.Refill, *c.Refill):
			return Errorf(EFORBIDDEN, "refill: must be no looser than your own (%d per %d s)", c.Refill.Amount, int64(c.Refill.Interval/time.Second))
		}
		return nil
	}
)

// createBounds are checked, in this order, for every token a non-admin creates.
var createBounds = []bound{boundPermissions, boundAPIs, boundExpiry, boundCIDRs, boundRateLimit, boundRemaining, boundRefill}

// bounds returns the checks of the settings the update changes.
func (in UpdateInput) bounds() []bound {
	var b []bound
	for _, f := range []struct {
		set   bool
		check bound
	}{
		{in.Permissions != nil, boundPermissions},
		{in.APIs != nil, boundAPIs},
		{in.Lifetime != nil, boundExpiry},
		{in.Limits.AllowedCIDRs != nil, boundCIDRs},
		{in.Limits.RateLimit != nil || in.Limits.ClearRateLimit, boundRateLimit},
		{in.Limits.Remaining != nil || in.Limits.ClearRemaining, boundRemaining},
		{in.Limits.Refill != nil, boundRefill}, // clearing a refill only tightens
	} {
		if f.set {
			b = append(b, f.check)
		}
	}
	return b
}

// covers reports whether granted covers p: every permission p grants (HasPermission) is granted
// by one entry of granted. A permission without a trailing "*" is covered as HasPermission says;
// a wildcard "s*" only by itself or by a wildcard whose stem starts s, since one grant must then
// cover every permission "s*" could match. manage and admin are covered only by name.
func covers(granted []string, p string) bool {
	stem, wildcard := strings.CutSuffix(p, "*")
	if !wildcard || p == PermAdmin || p == PermManage {
		return grants(granted, p)
	}
	for _, g := range granted {
		if gs, ok := strings.CutSuffix(g, "*"); ok && strings.HasPrefix(stem, gs) {
			return true
		}
	}
	return false
}

// apisWithin reports whether inner binds to no API outside outer. An empty outer allows every
// API, and an empty inner (bound to every API) is allowed only then.
func apisWithin(inner, outer []string) bool {
	if len(outer) == 0 {
		return true
	}
	return len(inner) > 0 && !slices.ContainsFunc(inner, func(a string) bool { return !slices.Contains(outer, a) })
}

// cidrsWithin reports whether every prefix of inner lies inside one prefix of outer (of the same
// address family). An empty outer allows every address, and an empty inner is allowed only then.
func cidrsWithin(inner, outer []netip.Prefix) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		return false
	}
	for _, p := range inner {
		if !slices.ContainsFunc(outer, func(o netip.Prefix) bool {
			return o.Addr().BitLen() == p.Addr().BitLen() && o.Bits() <= p.Bits() && o.Contains(p.Addr())
		}) {
			return false
		}
	}
	return true
}

// rateWithin reports whether the rate limit r admits no sequence of requests that the ceiling c
// would refuse. Both count fixed windows aligned to the epoch, so one window of c (length W)
// meets at most n = ceil((W + w - gcd(w, W)) / w) windows of r (length w), each admitting up to
// r.Limit: r is within c exactly when n * r.Limit <= c.Limit. Equal windows give n = 1; a window
// of r that divides W gives W/w (the plain rate comparison); a longer window of r, n = 1 or 2.
func rateWithin(r, c RateLimit) bool {
	w, W := r.Window, c.Window
	if w <= 0 || W <= 0 {
		return false
	}
	n := int64((W + w - gcd(w, W) + w - 1) / w)
	hi, lo := bits.Mul64(uint64(n), uint64(r.Limit))
	return hi == 0 && lo <= uint64(c.Limit)
}

// refillWithin reports whether the refill r gives no more than c: an amount no larger and a rate
// (amount per interval) no higher. Refills count from each token's own last refill, so their
// phases differ; these two bounds hold over any span.
func refillWithin(r, c Refill) bool {
	if r.Amount > c.Amount || r.Interval <= 0 || c.Interval <= 0 {
		return false
	}
	// r.Amount/r.Interval <= c.Amount/c.Interval, in 128 bits: an amount up to 10^12 times an
	// interval in nanoseconds overflows 64.
	h1, l1 := bits.Mul64(uint64(r.Amount), uint64(c.Interval))
	h2, l2 := bits.Mul64(uint64(c.Amount), uint64(r.Interval))
	return h1 < h2 || h1 == h2 && l1 <= l2
}

func gcd(a, b time.Duration) time.Duration {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// attenuateUpdate checks an update by a non-admin caller: each setting it changes in t (prev is
// t before the change) must lie within the caller's ceiling or be no looser than prev's own.
// Costs no store call when the update changes no bounded setting, or when the caller updates its
// own token (prev is then its ceiling); otherwise one FindToken, as ceilings.
func (s *Service) attenuateUpdate(ctx context.Context, caller Principal, checks []bound, prev, t *Token, now time.Time) error {
	var c *Token
	var err error
	if prev.ID == caller.TokenID {
		c, err = ceilingOf(caller, prev.Clone(), now)
	} else {
		c, err = s.ceilings(ctx, caller, now)
	}
	if err != nil || c == nil {
		return err
	}
	prev.Remaining = remainingNow(prev, now)
	for _, check := range checks {
		if err := check(t, c); err != nil && check(t, prev) != nil {
			return err
		}
	}
	return nil
}

// attenuateCreate checks a new token t against the caller's ceiling c.
func attenuateCreate(t, c *Token) error {
	for _, check := range createBounds {
		if err := check(t, c); err != nil {
			return err
		}
	}
	return nil
}
