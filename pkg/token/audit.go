package token

import (
	"encoding/json"
	"slices"
	"time"
)

// Audit actions: what a change did to a token.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionRotate = "rotate"
	ActionRevoke = "revoke"
)

// DefaultAuditRetention is how long audit events are kept (DynamoDB's TTL removes them after).
const DefaultAuditRetention = 400 * Day

// AuditEvent records one change of one token: who, what, when, from where. It is written in the
// same atomic write as the change (Store.CreateToken, Store.UpdateToken), so no change goes
// unrecorded and no event describes a change that failed. It never holds a secret or a hash.
type AuditEvent struct {
	ID           string    // unique; events sort by At, then ID
	At           time.Time // when the change was made
	Action       string    // ActionCreate, ActionUpdate, ActionRotate or ActionRevoke
	ActorTokenID string    // the token that made the change; "" for the CLI or a caller without one
	ActorOwner   string    // the owner of the caller; "" for the CLI
	TargetID     string    // the changed token
	TargetOwner  string
	Changes      []Change // the fields changed, with old and new values; secrets only by name
	SourceIP     string   // the caller's address; "" when unknown
	RequestID    string   // the request that made the change; "" when unknown
	Cascade      string   // for a revoke by DELETE ?cascade=true: the token the cascade started from
	ExpiresAt    time.Time
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
		ID:           NewID(),
		At:           now,
		Action:       action,
		ActorTokenID: caller.TokenID,
		ActorOwner:   caller.Owner,
		TargetID:     t.ID,
		TargetOwner:  t.Owner,
		SourceIP:     caller.SourceIP,
		RequestID:    caller.RequestID,
		ExpiresAt:    now.Add(s.cfg.AuditRetention),
	}
}

// diff lists the fields in which after differs from before, with their values as a client sees
// them. The secrets are compared by hash and reported by name only.
func diff(before, after *Token) []Change {
	var out []Change
	add := func(field string, old, new any) {
		o, _ := json.Marshal(old)
		n, _ := json.Marshal(new)
		if string(o) != string(n) {
			out = append(out, Change{Field: field, Old: old, New: new})
		}
	}
	add("name", before.Name, after.Name)
	add("permissions", before.Permissions, after.Permissions)
	add("apis", nilIfEmpty(before.APIs), nilIfEmpty(after.APIs))
	add("expiresAt", timeValue(before.ExpiresAt), timeValue(after.ExpiresAt))
	add("autoDelete", before.AutoDelete, after.AutoDelete)
	add("enabled", before.Enabled, after.Enabled)
	add("revokedAt", timeValue(before.RevokedAt), timeValue(after.RevokedAt))
	add("meta", rawOrNil(before.Meta), rawOrNil(after.Meta))
	add("rateLimit", rateValue(before.RateLimit), rateValue(after.RateLimit))
	if after.ResetQuota || (before.Remaining == nil) != (after.Remaining == nil) {
		add("remaining", before.Remaining, after.Remaining)
	}
	add("refill", refillValue(before.Refill), refillValue(after.Refill))
	add("allowedCidrs", cidrValues(before), cidrValues(after))
	if !slices.Equal(before.SecretHash, after.SecretHash) {
		out = append(out, Change{Field: "secret", Old: nil, New: "rotated"})
	}
	add("previousSecretValidUntil", timeValue(before.PrevSecretUntil), timeValue(after.PrevSecretUntil))
	return out
}

// created lists the settings of a new token as changes from nothing.
func created(t *Token) []Change {
	return diff(&Token{SecretHash: t.SecretHash}, t)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func rawOrNil(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	return m
}

func rateValue(r *RateLimit) any {
	if r == nil {
		return nil
	}
	return map[string]int64{"limit": r.Limit, "windowSeconds": int64(r.Window / time.Second)}
}

func refillValue(r *Refill) any {
	if r == nil {
		return nil
	}
	return map[string]int64{"amount": r.Amount, "intervalSeconds": int64(r.Interval / time.Second)}
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
