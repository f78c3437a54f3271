package token

import (
	"context"
	"crypto/subtle"
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
)

var verdictMessages = map[string]string{
	CodeValid:                   "Token is valid",
	CodeMalformed:               "Token is malformed",
	CodeNotFound:                "Token not found",
	CodeExpired:                 "Token expired",
	CodeRevoked:                 "Token revoked",
	CodeDisabled:                "Token disabled",
	CodeInsufficientPermissions: "Token lacks a required permission",
}

// Verdict is the outcome of checking a presented token.
type Verdict struct {
	Code  string
	Token *Token // the stored token when its secret matched, whatever the code; nil otherwise
}

// Valid reports whether the token may be used.
func (v Verdict) Valid() bool { return v.Code == CodeValid }

// Message returns the human-readable form of the code, e.g. "Token expired".
func (v Verdict) Message() string { return verdictMessages[v.Code] }

// Check judges a presented token at now without recording its use and without looking at
// permissions: MALFORMED without any store call; NOT_FOUND when the id is unknown or gone or the
// secret does not match (the two are indistinguishable on purpose); then REVOKED, EXPIRED,
// DISABLED or VALID. The error is non-nil only when the store failed: callers must deny.
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
	return Judge(t, p.Secret, now), nil
}

// Judge compares a parsed secret with a stored token at now. Both the current and the previous
// secret are compared on every call, in constant time, so timing reveals neither.
func Judge(t *Token, secret string, now time.Time) Verdict {
	sum := sumSecret(secret)
	current := subtle.ConstantTimeCompare(sum[:], t.SecretHash) == 1
	previous := subtle.ConstantTimeCompare(sum[:], t.PrevSecretHash) == 1 && now.Before(t.PrevSecretUntil)
	if !current && !previous || t.Gone(now) {
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
	return Verdict{Code: CodeValid, Token: t}
}

// Verify checks a presented token, requires every permission in required, and records one use of
// a valid token (lastUsedAt, usageCount). The error is non-nil only when the store failed.
func (s *Service) Verify(ctx context.Context, presented string, required ...string) (Verdict, error) {
	now := s.cfg.Now().UTC()
	v, err := Check(ctx, s.store, s.cfg.Prefix, presented, now)
	if err != nil || !v.Valid() {
		return v, err
	}
	for _, perm := range required {
		if !v.Token.HasPermission(perm) {
			return Verdict{Code: CodeInsufficientPermissions, Token: v.Token}, nil
		}
	}
	if err := s.store.RecordUse(ctx, v.Token.ID, now, 1); ErrorCode(err) == ENOTFOUND {
		return Verdict{Code: CodeNotFound}, nil // purged between the read and the write
	} else if err != nil {
		return Verdict{}, err
	}
	v.Token.LastUsedAt = now
	v.Token.UsageCount++
	return v, nil
}

// Authenticate verifies a token presented for a management call and returns its caller.
// Returns EUNAUTHORIZED with the verdict's message for any token that is not valid.
func (s *Service) Authenticate(ctx context.Context, presented string) (Principal, error) {
	v, err := s.Verify(ctx, presented)
	if err != nil {
		return Principal{}, err
	}
	if !v.Valid() {
		return Principal{}, Errorf(EUNAUTHORIZED, "%s.", v.Message())
	}
	return Principal{TokenID: v.Token.ID, Owner: v.Token.Owner, Permissions: v.Token.Permissions}, nil
}
