// Package token is the domain of apitokens: the token record, its format and hashing, the rules
// of the management API (Service) and the storage contract (Store). It imports no AWS package;
// pkg/dynamo and pkg/memstore implement Store, pkg/httpapi and pkg/authorizer consume Service.
package token

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status is derived from a token's fields and the current time; it is never stored.
type Status string

// Statuses, in the order they take precedence: a revoked token is revoked even when also expired.
const (
	StatusActive   Status = "active"
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
	StatusDisabled Status = "disabled"
)

// Permissions with a meaning to apitokens itself.
const (
	PermManage = "manage" // manage the tokens of one's own owner
	PermAdmin  = "admin"  // manage the tokens of every owner
)

// Token is a stored token record. SecretHash and PrevSecretHash never leave the service: views
// for callers are built field by field (pkg/httpapi) and never include them.
type Token struct {
	ID          string
	Owner       string
	Name        string
	Env         string // environment label of the token's prefix, "" for none
	Hint        string // non-secret display form, e.g. "tok_live_4f9Xa1..."
	Permissions []string
	APIs        []string // names of the APIs the token may be used on; empty: every API

	SecretHash      []byte    // SHA-256 of the current secret
	PrevSecretHash  []byte    // SHA-256 of the secret replaced by the last rotation
	PrevSecretUntil time.Time // the previous secret works before this instant; zero: not at all
	// PrevUntilFirstUse: the previous secret also stops at the first use of the current one
	// (a rotation with grace "untilFirstUse"; PrevSecretUntil is then its maximum). See EndGrace.
	PrevUntilFirstUse bool

	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
	AutoDelete bool      // disappear from every read once expired (and natively, by TTL)
	Enabled    bool
	RevokedAt  time.Time // zero: not revoked
	PurgeAt    time.Time // when the record vanishes from reads and storage; zero: never

	LastUsedAt time.Time // zero: never used
	UsageCount int64

	RateLimit    *RateLimit     // nil: no rate limit
	Remaining    *int64         // uses left; nil: unlimited. Counted down by the store, like usage
	Refill       *Refill        // resets Remaining periodically; only with Remaining
	RefilledAt   time.Time      // the last refill (or when the quota was set): refills count from it
	AllowedCIDRs []netip.Prefix // callers' networks; empty: any
	ResetQuota   bool           // for Store.UpdateToken: write Remaining and RefilledAt (a new quota)

	CreatedBy string // id of the token whose caller created this one; "" for the CLI or a caller without a token

	ClientID string          // OAuth client the token is pinned to; one live token per owner and client
	Meta     json.RawMessage // caller's JSON object, compacted; nil when unset

	Version int64 // optimistic-locking counter, incremented by every Store.UpdateToken
}

// Status returns the token's status at now.
func (t *Token) Status(now time.Time) Status {
	switch {
	case !t.RevokedAt.IsZero():
		return StatusRevoked
	case t.Expired(now):
		return StatusExpired
	case !t.Enabled:
		return StatusDisabled
	}
	return StatusActive
}

// Expired reports whether the token has an expiry at or before now.
func (t *Token) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

// Gone reports whether the token must be treated as deleted at now, whether or not the store has
// removed it yet: DynamoDB's TTL deletes lazily, so every read path asks this.
func (t *Token) Gone(now time.Time) bool {
	return !t.PurgeAt.IsZero() && !now.Before(t.PurgeAt)
}

// Live reports whether the token still holds its clientId: not revoked, not expired, not gone.
func (t *Token) Live(now time.Time) bool {
	return t.RevokedAt.IsZero() && !t.Expired(now) && !t.Gone(now)
}

// HasPermission reports whether the token grants perm: an equal permission, or a granted one
// ending in "*" whose stem starts perm ("files:*" grants "files:read"). manage and admin are
// granted only by name, never by a wildcard, so "a*" is not a way to admin.
func (t *Token) HasPermission(perm string) bool {
	return grants(t.Permissions, perm)
}

// AllowsAPI reports whether the token may be used on the API named api: a token bound to APIs
// (a non-empty APIs list) only on those, an unbound one everywhere unless requireBinding. An
// unnamed API ("") accepts every token.
func (t *Token) AllowsAPI(api string, requireBinding bool) bool {
	if api == "" {
		return true
	}
	if len(t.APIs) == 0 {
		return !requireBinding
	}
	return slices.Contains(t.APIs, api)
}

// SortKey orders an owner's tokens newest first when compared in reverse: the creation time in a
// fixed-width UTC form, then the id.
func (t *Token) SortKey() string {
	return SortKey(t.CreatedAt, t.ID)
}

// SortKey builds the owner-index sort key of a token created at createdAt with the given id.
func SortKey(createdAt time.Time, id string) string {
	b := make([]byte, 0, len(sortTimeLayout)+1+len(id))
	b = createdAt.UTC().AppendFormat(b, sortTimeLayout)
	return string(append(append(b, '#'), id...))
}

const sortTimeLayout = "2006-01-02T15:04:05.000000000Z"

// Clone returns a deep copy of t, so stores can hand out records without sharing memory.
func (t *Token) Clone() *Token {
	c := *t
	c.Permissions = slices.Clone(t.Permissions)
	c.APIs = slices.Clone(t.APIs)
	c.SecretHash = slices.Clone(t.SecretHash)
	c.PrevSecretHash = slices.Clone(t.PrevSecretHash)
	c.Meta = slices.Clone(t.Meta)
	c.AllowedCIDRs = slices.Clone(t.AllowedCIDRs)
	if t.RateLimit != nil {
		rl := *t.RateLimit
		c.RateLimit = &rl
	}
	if t.Remaining != nil {
		r := *t.Remaining
		c.Remaining = &r
	}
	if t.Refill != nil {
		rf := *t.Refill
		c.Refill = &rf
	}
	return &c
}

// Principal is the authenticated caller of a management call: the token it presented, or a
// person signed in with OpenID Connect. A person has no TokenID and a Subject (the identity
// provider's "sub"); their Permissions are manage, plus admin when the provider says so, and
// their only ceiling is their owner (see ceilings).
type Principal struct {
	TokenID     string
	Owner       string
	Permissions []string
	Subject     string // a person signed in with OpenID Connect: the issuer's subject; "" for a token
	SourceIP    string // the caller's address, for the audit trail; "" when unknown
	RequestID   string // the request, for the audit trail; "" when unknown
}

// IsPerson reports whether the caller is a person signed in with OpenID Connect rather than a
// token.
func (p Principal) IsPerson() bool { return p.Subject != "" }

// Principal returns the caller that presents t.
func (t *Token) Principal() Principal {
	return Principal{TokenID: t.ID, Owner: t.Owner, Permissions: t.Permissions}
}

// IsAdmin reports whether the caller may manage every owner's tokens.
func (p Principal) IsAdmin() bool { return slices.Contains(p.Permissions, PermAdmin) }

// CanManage reports whether the caller may manage owner's tokens.
func (p Principal) CanManage(owner string) bool {
	return p.IsAdmin() || owner == p.Owner && slices.Contains(p.Permissions, PermManage)
}

func grants(granted []string, perm string) bool {
	if perm == PermAdmin || perm == PermManage {
		return slices.Contains(granted, perm)
	}
	for _, g := range granted {
		if g == perm {
			return true
		}
		if stem, ok := strings.CutSuffix(g, "*"); ok && strings.HasPrefix(perm, stem) {
			return true
		}
	}
	return false
}
