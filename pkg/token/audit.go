package token

import (
	"bytes"
	mrand "math/rand/v2"
	"slices"
	"time"
)

// Audit actions: what a change did to a token.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionRotate = "rotate"
	ActionRevoke = "revoke"

	// ActionLeakRevoked and ActionLeakDisabled: a secret-scanning partner reported the token's
	// secret as public, and the token was revoked or disabled (LeakAction). The event's Report
	// says who reported it and where it was found.
	ActionLeakRevoked  = "leak_revoked"
	ActionLeakDisabled = "leak_disabled"
)

// DefaultAuditRetention is how long audit events are kept (DynamoDB's TTL removes them after).
const DefaultAuditRetention = 400 * Day

// AuditEvent records one change of one token: who, what, when, from where. It is written in the
// same atomic write as the change (Store.CreateToken, Store.UpdateToken), so no change goes
// unrecorded and no event describes a change that failed. It never holds a secret or a hash.
type AuditEvent struct {
	ID           string    // unique; events sort by At, then ID
	At           time.Time // when the change was made
	Action       string    // ActionCreate, ActionUpdate, ActionRotate, ActionRevoke, ActionLeakRevoked or ActionLeakDisabled
	ActorTokenID string    // the token that made the change; "" for the CLI or a caller without one
	ActorOwner   string    // the owner of the caller; "" for the CLI
	ActorSubject string    // a person signed in with OpenID Connect: their subject; "" for a token or the CLI
	TargetID     string    // the changed token
	TargetOwner  string
	Changes      []Change // the fields changed, with old and new values; secrets only by name
	SourceIP     string   // the caller's address; "" when unknown
	RequestID    string   // the request that made the change; "" when unknown
	Cascade      string   // for a revoke by DELETE ?cascade=true: the token the cascade started from
	Report       *Report  // for a change made because the token's secret was reported (leak_*, or a revoke by POST /revoke); nil otherwise
	ExpiresAt    time.Time
}

// Report says who reported a token's secret and where it was found. Its texts are the
// reporter's, bounded in length (MaxReportText), never the secret.
type Report struct {
	Reporter string // ReporterGitHub for POST /leaks, ReporterSelf for POST /revoke
	URL      string // where the secret was found, as reported; "" when unknown
	Source   string // what the reporter found it in (GitHub: commit, content, issue_comment, npm, ...); "" when unknown
	Type     string // the reporter's name for the kind of secret (the type registered with GitHub); "" when unknown
}

// Change is one changed field of a token. Old and New are JSON values (nil for none); a secret
// appears by name only ("secret": rotated), never by value or hash.
type Change struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// AuditQuery selects a page of audit events, newest first.
type AuditQuery struct {
	Owner   string    // the target tokens' owner; "" for every owner (admins only)
	TokenID string    // "" for every token
	Since   time.Time // zero: no lower bound (inclusive)
	Until   time.Time // zero: no upper bound (exclusive)
	Limit   int       // 1-100
	After   string    // AuditEvent.SortKey of the last event of the previous page
}

// AuditPage is one page of audit events.
type AuditPage struct {
	Events []*AuditEvent
	Next   string // the SortKey to continue after; "" at the end
}

// SortKey orders events by time, then id.
func (e *AuditEvent) SortKey() string { return SortKey(e.At, e.ID) }

// newAuditEvent starts the event of a change by caller to t at now.
func (s *Service) newAuditEvent(caller Principal, action string, t *Token, now time.Time) *AuditEvent {
	return &AuditEvent{
		ID:           newEventID(),
		At:           now,
		Action:       action,
		ActorTokenID: caller.TokenID,
		ActorOwner:   caller.Owner,
		ActorSubject: caller.Subject,
		TargetID:     t.ID,
		TargetOwner:  t.Owner,
		SourceIP:     caller.SourceIP,
		RequestID:    caller.RequestID,
		ExpiresAt:    now.Add(s.cfg.AuditRetention),
	}
}

// newEventID returns a random id in the form of a token id. It needs to be unique, not secret,
// so it comes from math/rand/v2's generator (ChaCha8, seeded from the OS) rather than a
// crypto/rand read per event.
func newEventID() string {
	var b [IDLen]byte
	for i, r := 0, uint64(0); i < IDLen; i++ {
		if i%10 == 0 {
			r = mrand.Uint64()
		}
		b[i] = base62[r%62]
		r /= 62
	}
	return string(b[:])
}

// diff lists the fields in which after differs from before, with their values as a client sees
// them. The secrets are compared by hash and reported by name only.
func diff(before, after *Token) []Change {
	out := make([]Change, 0, 8)
	for _, f := range auditedFields {
		if f.changed(before, after) {
			out = append(out, Change{Field: f.name, Old: f.value(before), New: f.value(after)})
		}
	}
	if !bytes.Equal(before.SecretHash, after.SecretHash) {
		out = append(out, Change{Field: "secret", Old: nil, New: "rotated"})
	}
	if !before.PrevSecretUntil.Equal(after.PrevSecretUntil) {
		out = append(out, Change{Field: "previousSecretValidUntil", Old: graceValue(before), New: graceValue(after)})
	}
	return out
}

// auditedFields are the settings an audit event shows the change of, in the order it lists them.
var auditedFields = []struct {
	name    string
	changed func(before, after *Token) bool
	value   func(*Token) any
}{
	{"name", func(b, a *Token) bool { return b.Name != a.Name }, nameValue},
	{"permissions", func(b, a *Token) bool { return !slices.Equal(b.Permissions, a.Permissions) }, permissionsValue},
	{"apis", func(b, a *Token) bool { return !slices.Equal(b.APIs, a.APIs) }, apisValue},
	{"expiresAt", func(b, a *Token) bool { return !b.ExpiresAt.Equal(a.ExpiresAt) }, expiresValue},
	{"autoDelete", func(b, a *Token) bool { return b.AutoDelete != a.AutoDelete }, autoDeleteValue},
	{"enabled", func(b, a *Token) bool { return b.Enabled != a.Enabled }, enabledValue},
	{"revokedAt", func(b, a *Token) bool { return !b.RevokedAt.Equal(a.RevokedAt) }, revokedValue},
	{"meta", func(b, a *Token) bool { return !bytes.Equal(b.Meta, a.Meta) }, metaValue},
	{"rateLimit", func(b, a *Token) bool { return !equalPtr(b.RateLimit, a.RateLimit) }, rateValue},
	{"remaining", func(b, a *Token) bool {
		return a.ResetQuota && !equalPtr(b.Remaining, a.Remaining) || (b.Remaining == nil) != (a.Remaining == nil)
	}, remainingValue},
	{"refill", func(b, a *Token) bool { return !equalPtr(b.Refill, a.Refill) }, refillValue},
	{"allowedCidrs", func(b, a *Token) bool { return !slices.Equal(b.AllowedCIDRs, a.AllowedCIDRs) }, cidrValues},
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// created lists the settings of a new token, each as a change from nothing (old = null).
func created(t *Token) []Change {
	out := make([]Change, 0, 8)
	for _, f := range auditedFields {
		if f.changed(&noToken, t) {
			out = append(out, Change{Field: f.name, New: f.value(t)})
		}
	}
	return out // a new token has no previous secret, and its secret is not a change
}

// noToken is what a new token's settings are changes from; never modified.
var noToken Token

func nameValue(t *Token) any        { return t.Name }
func permissionsValue(t *Token) any { return t.Permissions }
func autoDeleteValue(t *Token) any  { return t.AutoDelete }
func enabledValue(t *Token) any     { return t.Enabled }
func expiresValue(t *Token) any     { return timeValue(t.ExpiresAt) }
func revokedValue(t *Token) any     { return timeValue(t.RevokedAt) }
func graceValue(t *Token) any       { return timeValue(t.PrevSecretUntil) }

func apisValue(t *Token) any {
	if len(t.APIs) == 0 {
		return nil
	}
	return t.APIs
}

// timeValue is an instant as JSON shows it (RFC 3339 with nanoseconds), or nil.
func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func metaValue(t *Token) any {
	if t.Meta == nil {
		return nil
	}
	return t.Meta
}

func rateValue(t *Token) any {
	if t.RateLimit == nil {
		return nil
	}
	return map[string]int64{"limit": t.RateLimit.Limit, "windowSeconds": int64(t.RateLimit.Window / time.Second)}
}

func remainingValue(t *Token) any {
	if t.Remaining == nil {
		return nil
	}
	return *t.Remaining
}

func refillValue(t *Token) any {
	if t.Refill == nil {
		return nil
	}
	return map[string]int64{"amount": t.Refill.Amount, "intervalSeconds": int64(t.Refill.Interval / time.Second)}
}

func cidrValues(t *Token) any {
	if len(t.AllowedCIDRs) == 0 {
		return nil
	}
	out := make([]string, len(t.AllowedCIDRs))
	for i, p := range t.AllowedCIDRs {
		out[i] = p.String()
	}
	return out
}
