package dynamo

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/token"
)

// Key prefixes of the single table's partition key `pk`. Every item kind has its own prefix, so
// kinds never collide and a key says what it holds. Owners and clientIds cannot contain '#'.
const (
	tokenPrefix  = "TOKEN#"  // TOKEN#<id>: a token record
	clientPrefix = "CLIENT#" // CLIENT#<owner>#<clientId>: the token holding a clientId
	ratePrefix   = "RATE#"   // RATE#<id>#<window start, epoch seconds>: a rate-limit window's count
	usagePrefix  = "USAGE#"  // USAGE#<id>#<yyyy-mm-dd>: a token's usage counters of one UTC day
	quotaPrefix  = "QUOTA#"  // QUOTA#<id>: a token's quota counter (token.Store.LeaseQuota)
	// QUOTAEVENT#<event id>: a quota event recorded once (token.Store.ClaimQuotaEvent), for the
	// table's stream to hand to QuotaEventsFunction.
	quotaEventPrefix = "QUOTAEVENT#"
	auditPrefix      = "AUDIT#"  // AUDIT#<event id>: an audit event
	remindPrefix     = "REMIND#" // REMIND#<id>#<days>#<expiresAt, epoch seconds>: an expiry reminder's claim

	// Index keys of audit events. They contain '#', which owners and token ids cannot, so they
	// never meet a token's owner or creator in an index.
	auditAll        = "AUDIT#" // owner index: every event, newest first (admins' "all")
	auditOwnerRefOf = "AUDIT#" // ref index: AUDIT#<owner>, the events of one owner's tokens
)

// Attribute and index names used in expressions; item structs carry the same names in tags.
const (
	attrPK           = "pk"
	attrOwner        = "owner"
	attrSK           = "sk"
	attrVersion      = "version"
	attrPurgeAt      = "purgeAt"
	attrPrevFirstUse = "prevUntilFirstUse" // token.Token.PrevUntilFirstUse
	attrLastUsed     = "lastUsedAt"
	attrUsage        = "usageCount"
	attrTTL          = "ttl"
	attrTokenID      = "tokenId"
	attrExpiresAt    = "expiresAt"
	attrRemaining    = "remaining"
	attrRefilled     = "refilledAt"
	attrCount        = "count"
	attrValid        = "valid" // a usage item's count of valid uses; its refusals count under their codes
	attrAPIs         = "apis"
	attrRef          = "ref"
	attrTargetID     = "targetId"
	attrEventType    = "type"      // a quota event's detail-type
	attrEventDetail  = "detail"    // a quota event's detail JSON (token.Event)
	attrExpiryDay    = "expiryDay" // the UTC day (yyyy-mm-dd) of a token's expiry: expiryIndex's partition
	attrExpiryAt     = "expiryAt"  // the expiry again, in timeLayout: expiryIndex's sort key

	// ownerIndex is the GSI listing an owner's tokens by sk (token.Token.SortKey), which sorts
	// by creation time; queried in reverse for newest first. Token items carry their owner;
	// audit events all carry auditAll, so the index also lists every event newest first.
	ownerIndex = "owner"
	// refIndex is the GSI on ref and sk: a token's ref is the token that created it
	// (token.Token.CreatedBy), so the index lists a token's children; an audit event's ref is
	// AUDIT#<owner of its token>, so it lists an owner's events. Tokens created by no token have
	// no ref and are not in it.
	refIndex = "ref"
	// expiryIndex is the GSI on expiryDay and expiryAt: the tokens expiring on one UTC day, in
	// expiry order, for the expiry reminders (Store.ExpiringTokens). Only tokens that have an
	// expiry and are not revoked carry these attributes, so the index holds nothing else. It
	// projects only what a reminder needs (expiryProjection), never a secret hash.
	//
	// expiryAt duplicates expiresAt because the index's sort key must be a string on every item
	// that has it, and clientId markers keep expiresAt as a number.
	expiryIndex = "expiry"
)

// expiryProjection are the non-key attributes expiryIndex projects: what decodeToken needs to
// build a token.Token with the fields token.Store.ExpiringTokens promises.
var expiryProjection = []string{"id", attrOwner, "name", "env", attrExpiresAt, "enabled", "revokedAt", attrPurgeAt}

// mutableAttrs are the token attributes UpdateToken writes: everything but the key, the index
// attributes (owner, sk), the immutable settings (id, env, hint, clientId, createdAt), the usage
// fields RecordUse owns (lastUsedAt, usageCount) and version, which UpdateToken increments.
var mutableAttrs = []string{
	"name", "permissions", attrAPIs, "secretHash", "prevSecretHash", "prevSecretUntil", attrPrevFirstUse, "updatedAt",
	attrExpiresAt, attrExpiryDay, attrExpiryAt, "autoDelete", "enabled", "revokedAt", attrPurgeAt, attrTTL, "meta",
	"rateLimit", "rateWindow", "refillAmount", "refillInterval", "allowedCidrs",
}

// quotaAttrs are the quota as set on the token item (the live counter is the QUOTA#<id> item,
// LeaseQuota's); UpdateToken writes them only for a new quota (token.Token.ResetQuota).
var quotaAttrs = []string{attrRemaining, attrRefilled}

// timeLayout stores instants as fixed-width UTC strings with nanoseconds: they round-trip
// exactly, and compare as strings in time order, so condition expressions can compare them
// (purgeAt > :now). RFC3339Nano would not: it trims trailing zeros.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// tokenItem is a token.Token as stored. Optional attributes are absent when zero, so the TTL
// attribute exists exactly when the token has a PurgeAt.
type tokenItem struct {
	PK          string   `dynamodbav:"pk"`
	Owner       string   `dynamodbav:"owner"`
	SK          string   `dynamodbav:"sk"`
	ID          string   `dynamodbav:"id"`
	Name        string   `dynamodbav:"name"`
	Env         string   `dynamodbav:"env,omitempty"`
	Hint        string   `dynamodbav:"hint"`
	Permissions []string `dynamodbav:"permissions"`
	APIs        []string `dynamodbav:"apis,omitempty"` // absent: bound to no API

	SecretHash      []byte `dynamodbav:"secretHash"`
	PrevSecretHash  []byte `dynamodbav:"prevSecretHash,omitempty"`
	PrevSecretUntil string `dynamodbav:"prevSecretUntil,omitempty"`
	PrevFirstUse    bool   `dynamodbav:"prevUntilFirstUse,omitempty"` // absent: the grace does not wait for a first use

	CreatedAt  string `dynamodbav:"createdAt"`
	UpdatedAt  string `dynamodbav:"updatedAt,omitempty"`
	ExpiresAt  string `dynamodbav:"expiresAt,omitempty"`
	ExpiryDay  string `dynamodbav:"expiryDay,omitempty"` // with expiryAt: in expiryIndex; absent without expiry or once revoked
	ExpiryAt   string `dynamodbav:"expiryAt,omitempty"`
	AutoDelete bool   `dynamodbav:"autoDelete"`
	Enabled    bool   `dynamodbav:"enabled"`
	RevokedAt  string `dynamodbav:"revokedAt,omitempty"`
	PurgeAt    string `dynamodbav:"purgeAt,omitempty"`
	TTL        int64  `dynamodbav:"ttl,omitempty"` // PurgeAt in epoch seconds, for DynamoDB's TTL

	LastUsedAt string `dynamodbav:"lastUsedAt,omitempty"`
	UsageCount int64  `dynamodbav:"usageCount"`

	RateLimit      int64    `dynamodbav:"rateLimit,omitempty"`
	RateWindow     int64    `dynamodbav:"rateWindow,omitempty"` // seconds
	Remaining      *int64   `dynamodbav:"remaining,omitempty"`  // absent: unlimited
	RefillAmount   int64    `dynamodbav:"refillAmount,omitempty"`
	RefillInterval int64    `dynamodbav:"refillInterval,omitempty"` // seconds
	RefilledAt     string   `dynamodbav:"refilledAt,omitempty"`
	AllowedCIDRs   []string `dynamodbav:"allowedCidrs,omitempty"`

	CreatedBy string `dynamodbav:"createdBy,omitempty"`
	Ref       string `dynamodbav:"ref,omitempty"` // = CreatedBy: the ref index lists a token's children

	ClientID string `dynamodbav:"clientId,omitempty"`
	Meta     string `dynamodbav:"meta,omitempty"` // compact JSON object
	Version  int64  `dynamodbav:"version"`
}

// auditItem is a token.AuditEvent as stored, in both indexes (see ownerIndex, refIndex); TTL
// deletes it when its retention ends.
type auditItem struct {
	PK           string `dynamodbav:"pk"`
	Owner        string `dynamodbav:"owner"` // auditAll
	Ref          string `dynamodbav:"ref"`   // AUDIT#<target owner>
	SK           string `dynamodbav:"sk"`    // at#id
	ID           string `dynamodbav:"id"`
	At           string `dynamodbav:"at"`
	Action       string `dynamodbav:"action"`
	ActorTokenID string `dynamodbav:"actorTokenId,omitempty"`
	ActorOwner   string `dynamodbav:"actorOwner,omitempty"`
	ActorSubject string `dynamodbav:"actorSubject,omitempty"`
	TargetID     string `dynamodbav:"targetId"`
	TargetOwner  string `dynamodbav:"targetOwner"`
	Changes      string `dynamodbav:"changes"` // JSON array of token.Change
	SourceIP     string `dynamodbav:"sourceIp,omitempty"`
	RequestID    string `dynamodbav:"requestId,omitempty"`
	Cascade      string `dynamodbav:"cascade,omitempty"`
	Reporter     string `dynamodbav:"reporter,omitempty"` // with the report* attributes: token.Report; absent for none
	ReportURL    string `dynamodbav:"reportUrl,omitempty"`
	ReportSource string `dynamodbav:"reportSource,omitempty"`
	ReportType   string `dynamodbav:"reportType,omitempty"`
	ExpiresAt    string `dynamodbav:"expiresAt"`
	TTL          int64  `dynamodbav:"ttl"`
}

func toAuditItem(e *token.AuditEvent) (auditItem, error) {
	changes, err := json.Marshal(e.Changes)
	if err != nil {
		return auditItem{}, err
	}
	if e.Changes == nil {
		changes = []byte("[]")
	}
	it := auditItem{
		PK: auditPrefix + e.ID, Owner: auditAll, Ref: auditOwnerRefOf + e.TargetOwner, SK: e.SortKey(),
		ID: e.ID, At: formatTime(e.At), Action: e.Action, ActorTokenID: e.ActorTokenID, ActorOwner: e.ActorOwner,
		ActorSubject: e.ActorSubject, TargetID: e.TargetID, TargetOwner: e.TargetOwner, Changes: string(changes), SourceIP: e.SourceIP,
		RequestID: e.RequestID, Cascade: e.Cascade, ExpiresAt: formatTime(e.ExpiresAt), TTL: ttlSeconds(e.ExpiresAt),
	}
	if r := e.Report; r != nil {
		it.Reporter, it.ReportURL, it.ReportSource, it.ReportType = r.Reporter, r.URL, r.Source, r.Type
	}
	return it, nil
}

func decodeAudit(av map[string]types.AttributeValue) (*token.AuditEvent, error) {
	var it auditItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode audit item: %w", err)
	}
	if it.PK != auditPrefix+it.ID {
		return nil, fmt.Errorf("decode audit item: %q is not an audit item", it.PK)
	}
	e := &token.AuditEvent{
		ID: it.ID, Action: it.Action, ActorTokenID: it.ActorTokenID, ActorOwner: it.ActorOwner, ActorSubject: it.ActorSubject,
		TargetID: it.TargetID, TargetOwner: it.TargetOwner, SourceIP: it.SourceIP, RequestID: it.RequestID, Cascade: it.Cascade,
	}
	if it.Reporter != "" {
		e.Report = &token.Report{Reporter: it.Reporter, URL: it.ReportURL, Source: it.ReportSource, Type: it.ReportType}
	}
	if err := json.Unmarshal([]byte(it.Changes), &e.Changes); err != nil {
		return nil, fmt.Errorf("audit event %s: changes: %w", it.ID, err)
	}
	var err error
	if e.At, err = time.Parse(timeLayout, it.At); err != nil {
		return nil, fmt.Errorf("audit event %s: at: %w", it.ID, err)
	}
	if e.ExpiresAt, err = time.Parse(timeLayout, it.ExpiresAt); err != nil {
		return nil, fmt.Errorf("audit event %s: expiresAt: %w", it.ID, err)
	}
	return e, nil
}

// quotaItem is a token's quota counter: the uses left in the current period, when the period
// started, and the refill settings (a copy of the token's, kept by UpdateToken) that the
// refill's condition compares with the caller's. It has the token's TTL.
type quotaItem struct {
	PK             string `dynamodbav:"pk"`
	Remaining      int64  `dynamodbav:"remaining"`
	RefilledAt     string `dynamodbav:"refilledAt,omitempty"`
	RefillAmount   int64  `dynamodbav:"refillAmount,omitempty"`
	RefillInterval int64  `dynamodbav:"refillInterval,omitempty"` // seconds
	TTL            int64  `dynamodbav:"ttl,omitempty"`
}

// toQuotaItem is the counter holding t's own quota (t.Remaining must be set).
func toQuotaItem(t *token.Token) quotaItem {
	it := quotaItem{PK: quotaPrefix + t.ID, Remaining: *t.Remaining, RefilledAt: formatTime(t.RefilledAt), TTL: ttlSeconds(t.PurgeAt)}
	if rf := t.Refill; rf != nil {
		it.RefillAmount, it.RefillInterval = rf.Amount, int64(rf.Interval/time.Second)
	}
	return it
}

func quotaKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: quotaPrefix + id}}
}

// decodeQuota reads a counter's remaining and refilledAt; ok is false for an item without
// remaining (none, or one that UpdateToken's refill settings made before the counter existed).
func decodeQuota(item map[string]types.AttributeValue) (c token.QuotaCounter, ok bool, err error) {
	if _, has := item[attrRemaining]; !has {
		return c, false, nil
	}
	var it quotaItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return c, false, fmt.Errorf("decode quota counter: %w", err)
	}
	c.Remaining = it.Remaining
	if it.RefilledAt != "" {
		if c.RefilledAt, err = time.Parse(timeLayout, it.RefilledAt); err != nil {
			return c, false, fmt.Errorf("decode quota counter: refilledAt: %w", err)
		}
	}
	return c, true, nil
}

// rateItem counts the requests of one token in one rate-limit window; TTL deletes it after the
// window ends.
type rateItem struct {
	PK    string `dynamodbav:"pk"`
	Count int64  `dynamodbav:"count"`
	TTL   int64  `dynamodbav:"ttl"`
}

// rateKey is the key of the rate-limit window of token id that starts at start.
func rateKey(id string, start time.Time) map[string]types.AttributeValue {
	pk := ratePrefix + id + "#" + strconv.FormatInt(start.Unix(), 10)
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}}
}

// usageKey is the key of the usage counters of token id on the UTC day of at.
func usageKey(id string, at time.Time) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: usagePrefix + id + "#" + token.UsageDay(at)}}
}

// decodeUsage reads a usage item: valid uses under attrValid, each refusal under its code
// (token.RefusalCodes), ttl; any other attribute is ignored.
func decodeUsage(day time.Time, item map[string]types.AttributeValue) (token.DayUsage, error) {
	d := token.DayUsage{Day: day, Refused: map[string]int64{}}
	for name, av := range item {
		if name != attrValid && !token.IsRefusalCode(name) {
			continue
		}
		n, ok := av.(*types.AttributeValueMemberN)
		if !ok {
			return d, fmt.Errorf("usage item of %s: %s is not a number", token.UsageDay(day), name)
		}
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			return d, fmt.Errorf("usage item of %s: %s: %w", token.UsageDay(day), name, err)
		}
		if name == attrValid {
			d.Valid = v
		} else if v > 0 {
			d.Refused[name] = v
		}
	}
	return d, nil
}

// clientItem records which token holds a clientId of an owner. It is written in the same
// transaction as the token, and a condition on it keeps one live token per owner and clientId.
type clientItem struct {
	PK      string `dynamodbav:"pk"`
	TokenID string `dynamodbav:"tokenId"`
	// ExpiresAt is when the holder stops being live unless revoked first (see liveUntil), in
	// epoch nanoseconds so that it compares exactly like token.Token.Expired; 0 for never.
	ExpiresAt int64 `dynamodbav:"expiresAt"`
	TTL       int64 `dynamodbav:"ttl,omitempty"`
}

func tokenKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: tokenPrefix + id}}
}

// expiryDay is the expiryIndex partition of an expiry: its UTC day, yyyy-mm-dd.
func expiryDay(at time.Time) string { return at.UTC().Format("2006-01-02") }

// remindKey is the key of the claim of reminder r.
func remindKey(r token.Reminder) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: remindPrefix + r.Key()}}
}

func clientKey(owner, clientID string) string {
	return clientPrefix + owner + "#" + clientID
}

func toItem(t *token.Token) tokenItem {
	it := tokenItem{
		PK:              tokenPrefix + t.ID,
		Owner:           t.Owner,
		SK:              t.SortKey(),
		ID:              t.ID,
		Name:            t.Name,
		Env:             t.Env,
		Hint:            t.Hint,
		Permissions:     t.Permissions,
		APIs:            t.APIs,
		SecretHash:      t.SecretHash,
		PrevSecretHash:  t.PrevSecretHash,
		PrevSecretUntil: formatTime(t.PrevSecretUntil),
		PrevFirstUse:    t.PrevUntilFirstUse,
		CreatedAt:       formatTime(t.CreatedAt),
		UpdatedAt:       formatTime(t.UpdatedAt),
		ExpiresAt:       formatTime(t.ExpiresAt),
		AutoDelete:      t.AutoDelete,
		Enabled:         t.Enabled,
		RevokedAt:       formatTime(t.RevokedAt),
		PurgeAt:         formatTime(t.PurgeAt),
		TTL:             ttlSeconds(t.PurgeAt),
		LastUsedAt:      formatTime(t.LastUsedAt),
		UsageCount:      t.UsageCount,
		RefilledAt:      formatTime(t.RefilledAt),
		AllowedCIDRs:    formatCIDRs(t.AllowedCIDRs),
		Remaining:       t.Remaining,
		CreatedBy:       t.CreatedBy,
		Ref:             t.CreatedBy,
		ClientID:        t.ClientID,
		Meta:            string(t.Meta),
		Version:         t.Version,
	}
	if !t.ExpiresAt.IsZero() && t.RevokedAt.IsZero() {
		it.ExpiryDay, it.ExpiryAt = expiryDay(t.ExpiresAt), it.ExpiresAt
	}
	if rl := t.RateLimit; rl != nil {
		it.RateLimit, it.RateWindow = rl.Limit, int64(rl.Window/time.Second)
	}
	if rf := t.Refill; rf != nil {
		it.RefillAmount, it.RefillInterval = rf.Amount, int64(rf.Interval/time.Second)
	}
	return it
}

func formatCIDRs(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func fromItem(it tokenItem) (*token.Token, error) {
	t := &token.Token{
		ID:                it.ID,
		Owner:             it.Owner,
		Name:              it.Name,
		Env:               it.Env,
		Hint:              it.Hint,
		Permissions:       it.Permissions,
		APIs:              it.APIs,
		SecretHash:        it.SecretHash,
		PrevSecretHash:    it.PrevSecretHash,
		PrevUntilFirstUse: it.PrevFirstUse,
		AutoDelete:        it.AutoDelete,
		Enabled:           it.Enabled,
		UsageCount:        it.UsageCount,
		ClientID:          it.ClientID,
		CreatedBy:         it.CreatedBy,
		Version:           it.Version,
		Remaining:         it.Remaining,
	}
	if it.RateLimit > 0 {
		t.RateLimit = &token.RateLimit{Limit: it.RateLimit, Window: time.Duration(it.RateWindow) * time.Second}
	}
	if it.RefillAmount > 0 {
		t.Refill = &token.Refill{Amount: it.RefillAmount, Interval: time.Duration(it.RefillInterval) * time.Second}
	}
	for _, c := range it.AllowedCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("token %s: allowedCidrs: %w", it.ID, err)
		}
		t.AllowedCIDRs = append(t.AllowedCIDRs, p)
	}
	if it.Meta != "" {
		t.Meta = json.RawMessage(it.Meta)
	}
	for _, f := range []struct {
		name string
		s    string
		dst  *time.Time
	}{
		{"prevSecretUntil", it.PrevSecretUntil, &t.PrevSecretUntil},
		{"createdAt", it.CreatedAt, &t.CreatedAt},
		{"updatedAt", it.UpdatedAt, &t.UpdatedAt},
		{"expiresAt", it.ExpiresAt, &t.ExpiresAt},
		{"revokedAt", it.RevokedAt, &t.RevokedAt},
		{"purgeAt", it.PurgeAt, &t.PurgeAt},
		{"lastUsedAt", it.LastUsedAt, &t.LastUsedAt},
		{"refilledAt", it.RefilledAt, &t.RefilledAt},
	} {
		if f.s == "" {
			continue
		}
		at, err := time.Parse(timeLayout, f.s)
		if err != nil {
			return nil, fmt.Errorf("token %s: %s: %w", it.ID, f.name, err)
		}
		*f.dst = at
	}
	return t, nil
}

// decodeToken converts a raw token item into a token.Token.
func decodeToken(av map[string]types.AttributeValue) (*token.Token, error) {
	var it tokenItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode token item: %w", err)
	}
	if it.ID == "" || it.PK != tokenPrefix+it.ID {
		return nil, fmt.Errorf("decode token item: %q is not a token item", it.PK)
	}
	return fromItem(it)
}

// clientMarker returns the marker saying that t holds its clientId.
func clientMarker(t *token.Token) clientItem {
	until := liveUntil(t)
	m := clientItem{PK: clientKey(t.Owner, t.ClientID), TokenID: t.ID, TTL: ttlSeconds(until)}
	if !until.IsZero() {
		m.ExpiresAt = until.UnixNano()
	}
	return m
}

// liveUntil is when an unrevoked t stops being token.Token.Live: the earlier of its expiry and
// its purge time; zero for never. The marker of t is dead from then on, and DynamoDB's TTL may
// delete it, since it can no longer block anyone.
func liveUntil(t *token.Token) time.Time {
	at := t.ExpiresAt
	if !t.PurgeAt.IsZero() && (at.IsZero() || t.PurgeAt.Before(at)) {
		at = t.PurgeAt
	}
	return at
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// ttlSeconds converts an instant to DynamoDB's TTL (epoch seconds), rounding up: TTL must never
// delete an item before the instant reads start to treat it as gone. Zero stays zero (no TTL).
func ttlSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
