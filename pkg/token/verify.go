package token

import (
	"context"
	"crypto/subtle"
	"net/netip"
	"time"
)

// Verdict codes, as answered by POST /verify.
const (
	CodeValid                   = "VALID"
	CodeMalformed               = "MALFORMED"
	CodeNotFound                = "NOT_FOUND"
	CodeExpired                 = "EXPIRED"
	CodeRevoked                 = "REVOKED"
	CodeDisabled                = "DISABLED"
	CodeInsufficientPermissions = "INSUFFICIENT_PERMISSIONS"
	CodeForbiddenAPI            = "FORBIDDEN_API"
)

var verdictMessages = map[string]string{
	CodeValid:                   "Token is valid",
	CodeMalformed:               "Token is malformed",
	CodeNotFound:                "Token not found",
	CodeExpired:                 "Token expired",
	CodeRevoked:                 "Token revoked",
	CodeDisabled:                "Token disabled",
	CodeInsufficientPermissions: "Token lacks a required permission",
	CodeForbiddenAPI:            "Token may not be used on this API",
	CodeForbiddenIP:             "Token may not be used from this address",
	CodeRateLimited:             "Rate limit exceeded",
	CodeUsageExceeded:           "Usage limit exceeded",
}

// Verdict is the outcome of checking a presented token.
type Verdict struct {
	Code  string
	Token *Token      // the stored token when its secret matched, whatever the code; nil otherwise
	Limit *LimitState // the rate limit's state (RATE_LIMITED or a limited VALID), the quota's (USAGE_EXCEEDED)
	// EndsGrace: a VALID use of the current secret while the previous one waits for it
	// (Token.PrevUntilFirstUse, grace not over): the caller ends the grace (EndGrace).
	EndsGrace bool
}

// Valid reports whether the token may be used.
func (v Verdict) Valid() bool { return v.Code == CodeValid }

// Message returns the human-readable form of the code, e.g. "Token expired".
func (v Verdict) Message() string { return verdictMessages[v.Code] }

// Check judges a presented token at now without recording its use and without looking at
// permissions: MALFORMED without any store call; NOT_FOUND when the id is unknown or gone, or the
// secret or the environment label does not match (indistinguishable on purpose); then REVOKED,
// EXPIRED, DISABLED or VALID. The error is non-nil only when the store failed: callers must deny.
func Check(ctx context.Context, store Store, prefix, presented string, now time.Time) (Verdict, error) {
	p, ok := Parse(prefix, presented)
	if !ok {
		return Verdict{Code: CodeMalformed}, nil
	}
	t, err := store.FindToken(ctx, p.ID)
	if ErrorCode(err) == ENOTFOUND {
		return Verdict{Code: CodeNotFound}, nil
	} else if err != nil {
		return Verdict{}, err
	}
	return Judge(t, p, now), nil
}

// Judge compares a parsed token with a stored one at now. Both the current and the previous
// secret are compared on every call, in constant time, so timing reveals neither. The
// environment label is part of the token: tok_test_<id><secret> is not tok_live_<id><secret>.
func Judge(t *Token, p Parsed, now time.Time) Verdict {
	sum := sumSecret(p.Secret)
	current, previous := secretMatches(t, sum[:], now)
	if !(current || previous) || p.Env != t.Env || t.Gone(now) {
		return Verdict{Code: CodeNotFound}
	}
	switch t.Status(now) {
	case StatusRevoked:
		return Verdict{Code: CodeRevoked, Token: t}
	case StatusExpired:
		return Verdict{Code: CodeExpired, Token: t}
	case StatusDisabled:
		return Verdict{Code: CodeDisabled, Token: t}
	}
	// Only the current secret ends a grace: a use of the old one (perhaps by whoever stole it)
	// must not, or it could cut off the holder of the new secret's predecessor at will.
	ends := current && t.PrevUntilFirstUse && now.Before(t.PrevSecretUntil)
	return Verdict{Code: CodeValid, Token: t, EndsGrace: ends}
}

// secretMatches reports in constant time whether sum is the SHA-256 of t's current secret, and
// whether it is that of its previous one while the rotation's grace period lasts. Both hashes are
// compared on every call.
func secretMatches(t *Token, sum []byte, now time.Time) (current, previous bool) {
	current = subtle.ConstantTimeCompare(sum, t.SecretHash) == 1
	previous = subtle.ConstantTimeCompare(sum, t.PrevSecretHash) == 1 && now.Before(t.PrevSecretUntil)
	return current, previous
}

// Verify checks a presented token, requires every permission in required, and counts one use of
// a valid token (VerifyRequest). The caller's address is unknown, so a token with an IP
// allowlist answers FORBIDDEN_IP: use VerifyRequest. The error is non-nil only when the store
// failed.
func (s *Service) Verify(ctx context.Context, presented string, required ...string) (Verdict, error) {
	return s.VerifyRequest(ctx, VerifyInput{Token: presented, Permissions: required})
}

// VerifyInput is a token presented by a caller.
type VerifyInput struct {
	Token       string
	Permissions []string   // every one is required
	API         string     // the API the token is presented to; "" for none
	SourceIP    netip.Addr // the caller's address; the zero Addr when unknown
}

// VerifyRequest checks a presented token, its permissions, its API binding, then its limits in
// order (IP allowlist, rate limit, quota), and counts the outcome for the token's usage
// counters in the Service's usage buffer: a valid use (lastUsedAt, usageCount) or a refusal
// (one of RefusalCodes). A token the store does not hold (NOT_FOUND, MALFORMED) is never
// counted. The buffer writes a token's counts at most once per Config.UsageInterval (usagebuf.go):
// the first outcome of a token at once, during this call, then the outcomes counted meanwhile
// with the first that finds the interval passed; with Config.BufferUses only FlushUsage writes.
// A usage write that fails is logged and its counts kept for the next one: it never changes the
// verdict, nor does a token purged between the read and its write (its counts are dropped).
// A valid verdict's token shows the stored usageCount plus the uses this Service holds unwritten
// (this one included), and lastUsedAt this use. The error is non-nil only when the store failed
// a read or a limit.
func (s *Service) VerifyRequest(ctx context.Context, in VerifyInput) (Verdict, error) {
	now := s.cfg.Now().UTC()
	v, err := s.verify(ctx, in, now)
	if err != nil {
		return Verdict{}, err
	}
	if v.Token != nil && (v.Valid() || IsRefusalCode(v.Code)) {
		held, w, due := s.usage.Add(v.Token.ID, v.Code, now)
		if due {
			s.usage.Write(ctx, v.Token.ID, w) // a failure is logged, and its counts kept
		}
		if v.Valid() {
			v.Token.UsageCount += held
			v.Token.LastUsedAt = now
		}
	}
	return v, nil
}

// verify is VerifyRequest but for the counting of its outcome.
func (s *Service) verify(ctx context.Context, in VerifyInput, now time.Time) (Verdict, error) {
	v, err := Check(ctx, s.store, s.cfg.Prefix, in.Token, now)
	if err != nil || !v.Valid() {
		return v, err
	}
	if v.EndsGrace {
		// The first use of a new secret: the old one stops now, before this answer, so a verify
		// of the old secret that follows this one is refused. One write per rotation.
		if _, err := EndGrace(ctx, s.store, v.Token, now); err != nil {
			return Verdict{}, err
		}
	}
	for _, perm := range in.Permissions {
		if !v.Token.HasPermission(perm) {
			return Verdict{Code: CodeInsufficientPermissions, Token: v.Token}, nil
		}
	}
	if !v.Token.AllowsAPI(in.API, false) {
		return Verdict{Code: CodeForbiddenAPI, Token: v.Token}, nil
	}
	if v.Token.HasLimits() {
		return s.limits.Enforce(ctx, v.Token, in.SourceIP, now)
	}
	return v, nil
}

// FlushUsage writes the outcomes Verify counted and has not written (UsageBuffer.Flush): with
// force, all of them; otherwise only when UsageInterval has passed since its last flush that
// wrote (the first call always writes). A Lambda function with Config.BufferUses runs it
// alongside each invocation and forced at SIGTERM; a server, forced when it stops. It returns
// the number of tokens written or attempted.
//
// It also gives back Verify's quota leases idle since LimiterConfig.IdleReturn (all of them with
// force): see ReturnLeases.
func (s *Service) FlushUsage(ctx context.Context, force bool) int {
	s.ReturnLeases(ctx, force)
	return s.usage.Flush(ctx, force)
}

// withHeld adds to t, read from the store, the uses this Service holds of it unwritten, so that
// a read through the instance that counted them shows them (a local server's verify, then get).
func (s *Service) withHeld(t *Token) *Token {
	if h := s.usage.Held(t.ID); h.Valid > 0 {
		t.UsageCount += h.Valid
		if h.At.After(t.LastUsedAt) {
			t.LastUsedAt = h.At
		}
	}
	return t
}

// Err returns nil for a valid verdict, and otherwise the error a caller of an API gets: EFORBIDDEN
// for a lacking permission or address, ERATELIMITED (carrying the limit's state) for a rate limit
// or an exhausted quota, EUNAUTHORIZED for any other token that is not valid.
func (v Verdict) Err() error {
	switch v.Code {
	case CodeValid:
		return nil
	case CodeInsufficientPermissions, CodeForbiddenIP, CodeForbiddenAPI:
		return Errorf(EFORBIDDEN, "%s.", v.Message())
	case CodeRateLimited, CodeUsageExceeded:
		return &Error{Code: ERATELIMITED, Message: v.Message() + ".", Limit: v.Limit}
	}
	return Errorf(EUNAUTHORIZED, "%s.", v.Message())
}
