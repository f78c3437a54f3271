package token

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of the management API.
const (
	MaxNameLen        = 100
	MaxPermissions    = 50
	MaxAPIs           = 20
	MaxExpiryDays     = 3650
	MaxMetaBytes      = 4096
	MaxGracePeriod    = 7 * 24 * time.Hour
	DefaultListLimit  = 20
	MaxListLimit      = 100
	Day               = 24 * time.Hour
	defaultLifetime   = 365 * Day
	defaultRetention  = 30 * Day
	defaultPermission = "read"
)

// Config holds a deployment's settings. The zero value of every field means its default.
type Config struct {
	// Prefix is the deployment prefix of every token (default "tok").
	Prefix string
	// DefaultLifetime applies when a create names no expiry (default 365 days); a negative value
	// means such tokens never expire. With a MaxLifetime, it is capped to it.
	DefaultLifetime time.Duration
	// MaxLifetime, when positive, rejects expiries further than this from now, and "never".
	MaxLifetime time.Duration
	// AllowedPermissions, when non-empty, is the only set of permissions a token may carry
	// (manage and admin are always allowed).
	AllowedPermissions []string
	// DefaultPermissions apply when a create names none (default ["read"]).
	DefaultPermissions []string
	// RevokedRetention is how long a revoked token stays readable before it is purged
	// (default 30 days).
	RevokedRetention time.Duration
	// AuditRetention is how long audit events are kept (default DefaultAuditRetention).
	AuditRetention time.Duration
	// UsageInterval is the least time between two usage writes of one token by this Service
	// (default DefaultUsageInterval; negative: write at every verify): Verify counts valid uses
	// and refusals in a UsageBuffer, and writes a token's counts when they are due, the first of
	// a token at once (or, with BufferUses, at FlushUsage).
	UsageInterval time.Duration
	// BufferUses makes Verify only count, for FlushUsage to write at most once per UsageInterval
	// (a Lambda function runs it alongside each invocation and forced at SIGTERM, pkg/lambdaext).
	BufferUses bool
	// LeakAction is what a leak report does to a token whose secret it confirms: LeakRevoke (the
	// default) or LeakDisable.
	LeakAction LeakAction
	// SelfRevokeLimit is how many POST /revoke calls one address may make per minute (default
	// DefaultSelfRevokeLimit); an IPv6 address counts with its /64.
	SelfRevokeLimit int64
	// Events receives a lifecycle event after each change is written (events.go); nil: none.
	Events Publisher
	// Limits tunes Verify's leases of rate limits and quotas (Limiter).
	Limits LimiterConfig
	// Logger logs what fails without failing a call (an event not published); nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
}

// Service implements the token lifecycle on top of a Store.
type Service struct {
	store  Store
	cfg    Config
	usage  *UsageBuffer // Verify's outcomes not yet written
	limits *Limiter     // Verify's leases of rate-limit windows and quotas
}

// NewService returns a Service on store. Returns EINVALID if cfg breaks a rule.
func NewService(store Store, cfg Config) (*Service, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !ValidPrefix(cfg.Prefix) {
		return nil, Errorf(EINVALID, "prefix %q: must be a lowercase letter and up to 15 lowercase letters or digits", cfg.Prefix)
	}
	if cfg.DefaultLifetime == 0 {
		cfg.DefaultLifetime = defaultLifetime
		if cfg.MaxLifetime > 0 && cfg.MaxLifetime < defaultLifetime {
			cfg.DefaultLifetime = cfg.MaxLifetime
		}
	}
	if cfg.MaxLifetime > 0 && (cfg.DefaultLifetime < 0 || cfg.DefaultLifetime > cfg.MaxLifetime) {
		cfg.DefaultLifetime = cfg.MaxLifetime // a default beyond the maximum means the maximum
	}
	for _, p := range append(slices.Clone(cfg.AllowedPermissions), cfg.DefaultPermissions...) {
		if !permissionRule.match(p) {
			return nil, Errorf(EINVALID, "permission %q: must match %s", p, permissionSyntax)
		}
	}
	if len(cfg.DefaultPermissions) == 0 {
		cfg.DefaultPermissions = []string{defaultPermission}
	}
	if cfg.RevokedRetention <= 0 {
		cfg.RevokedRetention = defaultRetention
	}
	if cfg.AuditRetention <= 0 {
		cfg.AuditRetention = DefaultAuditRetention
	}
	switch cfg.LeakAction {
	case "":
		cfg.LeakAction = LeakRevoke
	case LeakRevoke, LeakDisable:
	default:
		return nil, Errorf(EINVALID, "leak action %q: must be %s or %s", cfg.LeakAction, LeakRevoke, LeakDisable)
	}
	if cfg.SelfRevokeLimit < 0 || cfg.SelfRevokeLimit > MaxRateLimit {
		return nil, Errorf(EINVALID, "self-revoke limit %d: must be 1-%d per minute, or 0 for the default", cfg.SelfRevokeLimit, MaxRateLimit)
	}
	if cfg.SelfRevokeLimit == 0 {
		cfg.SelfRevokeLimit = DefaultSelfRevokeLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.UsageInterval == 0:
		cfg.UsageInterval = DefaultUsageInterval
	case cfg.UsageInterval < 0:
		cfg.UsageInterval = 0
	}
	usage := NewUsageBuffer(store, UsageBufferConfig{
		Interval: cfg.UsageInterval, Buffered: cfg.BufferUses, WriteTimeout: usageWriteTimeout, Logger: cfg.Logger, Now: cfg.Now,
	})
	return &Service{store: store, cfg: cfg, usage: usage, limits: NewLimiter(store, cfg.Limits)}, nil
}

// ReturnLeases gives back what Verify's idle quota leases hold (all of them with force, at
// shutdown): see Limiter.ReturnIdle. Run it every second or so, and at shutdown.
func (s *Service) ReturnLeases(ctx context.Context, force bool) int64 {
	return s.limits.ReturnIdle(ctx, s.cfg.Now(), force)
}

// Prefix returns the deployment prefix.
func (s *Service) Prefix() string { return s.cfg.Prefix }

// Now returns the service clock's current time.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// Lifetime says when a new or updated token expires: at most one of At, Days and Never. With none
// set, a create applies the configured default.
type Lifetime struct {
	At    *time.Time // expiresAt
	Days  *int       // expiresIn, whole days from now
	Never bool       // expiresAt: null
}

// CreateInput is the request to create a token.
type CreateInput struct {
	Owner       string   // "" for the caller's owner; another owner needs admin
	Name        string   // 1-100 characters
	Permissions []string // nil for the configured default
	APIs        []string // APIs the token is bound to; empty for every API
	Env         string   // environment label in the token's prefix, e.g. "live"; "" for none
	Lifetime    Lifetime
	AutoDelete  bool
	Enabled     *bool // nil for true
	ClientID    string
	Meta        json.RawMessage
	Limits      LimitsInput // rate limit, quota and IP allowlist; none by default
}

// Create makes a token for the caller (or, for an admin, for in.Owner) and returns it with its
// plaintext, which is never available again. A caller that is not an admin hands on no more than
// it holds (attenuation.go): what the create omits of apis, expiry and limits is inherited from
// the caller's own token, read fresh (one more FindToken). Returns EFORBIDDEN if the caller may
// not manage the owner or grant a permission, or a setting exceeds the caller's own (naming the
// field and the ceiling); EUNAUTHORIZED if the caller's token is no longer valid; EINVALID for a
// broken rule; ECONFLICT if the clientId is taken.
func (s *Service) Create(ctx context.Context, caller Principal, in CreateInput) (*Token, string, error) {
	owner := in.Owner
	if owner == "" {
		owner = caller.Owner
	}
	if !ValidOwner(owner) {
		return nil, "", Errorf(EINVALID, "owner: must be %s", OwnerRule)
	}
	if !caller.CanManage(owner) {
		return nil, "", forbidden(caller, owner)
	}
	now := s.cfg.Now().UTC()
	name, err := validName(in.Name)
	if err != nil {
		return nil, "", err
	}
	perms := in.Permissions
	if perms == nil {
		perms = s.cfg.DefaultPermissions
	}
	if perms, err = s.validPermissions(caller, perms); err != nil {
		return nil, "", err
	}
	apis, err := validAPIs(in.APIs)
	if err != nil {
		return nil, "", err
	}
	if in.Env != "" && !ValidEnv(in.Env) {
		return nil, "", Errorf(EINVALID, "environment: must be 1-16 lowercase letters or digits")
	}
	expiresAt, err := s.expiry(in.Lifetime, now, true)
	if err != nil {
		return nil, "", err
	}
	if in.ClientID != "" && !clientIDSyntax.match(in.ClientID) {
		return nil, "", Errorf(EINVALID, "clientId: must be 1-128 letters, digits or ._:/+-")
	}
	meta, err := validMeta(in.Meta)
	if err != nil {
		return nil, "", err
	}
	ceiling, err := s.ceilings(ctx, caller, now)
	if err != nil {
		return nil, "", err
	}

	id, secret := NewID(), NewSecret()
	t := &Token{
		ID:          id,
		Owner:       owner,
		Name:        name,
		Env:         in.Env,
		Hint:        Hint(s.cfg.Prefix, in.Env, id),
		Permissions: perms,
		APIs:        apis,
		SecretHash:  HashSecret(secret),
		CreatedAt:   now,
		UpdatedAt:   now,
		ExpiresAt:   expiresAt,
		AutoDelete:  in.AutoDelete,
		Enabled:     in.Enabled == nil || *in.Enabled,
		ClientID:    in.ClientID,
		Meta:        meta,
		CreatedBy:   caller.TokenID,
		Version:     1,
	}
	if ceiling != nil {
		inherit(t, in.Lifetime, &in.Limits, ceiling)
	}
	if err := applyLimits(t, in.Limits, now); err != nil {
		return nil, "", err
	}
	if ceiling != nil {
		if err := attenuateCreate(t, ceiling); err != nil {
			return nil, "", err
		}
	}
	t.PurgeAt = s.purgeAt(t)
	ev := s.newAuditEvent(caller, ActionCreate, t, now)
	ev.Changes = created(t)
	if err := s.store.CreateToken(ctx, t, ev); err != nil {
		return nil, "", err
	}
	t.ResetQuota = false
	s.publish(ctx, ev, nil, t)
	return t, Format(s.cfg.Prefix, in.Env, id, secret), nil
}

// ListInput selects a page of tokens.
type ListInput struct {
	Owner     string // "" for the caller's owner; another owner needs admin
	CreatedBy string // a token id: only the tokens that token created (its direct children)
	Status    string // "active" (default), "expired", "revoked", "disabled" or "all"
	Limit     int    // 1-100; 0 for 20
	Cursor    string // NextCursor of the previous page
}

// ListPage is a page of tokens, newest first.
type ListPage struct {
	Tokens     []*Token
	NextCursor string // "" on the last page
}

// List returns a page of an owner's tokens. Returns EFORBIDDEN if the caller may not manage the
// owner, EINVALID for a bad status, limit or cursor (a cursor of another owner or query is bad).
func (s *Service) List(ctx context.Context, caller Principal, in ListInput) (ListPage, error) {
	owner := in.Owner
	if owner == "" {
		owner = caller.Owner
	}
	if !caller.CanManage(owner) {
		return ListPage{}, forbidden(caller, owner)
	}
	q := ListQuery{Owner: owner, Limit: in.Limit}
	if in.CreatedBy != "" {
		if !ValidID(in.CreatedBy) {
			return ListPage{}, Errorf(EINVALID, "createdBy: must be a token id")
		}
		q.CreatedBy = in.CreatedBy
		if in.Owner == "" && caller.IsAdmin() {
			q.Owner = "" // an admin's children may belong to any owner
		}
	}
	scope := q.Owner + "|" + q.CreatedBy
	switch in.Status {
	case "", string(StatusActive):
		q.Status = StatusActive
	case string(StatusExpired), string(StatusRevoked), string(StatusDisabled):
		q.Status = Status(in.Status)
	case "all":
	default:
		return ListPage{}, Errorf(EINVALID, "status: must be one of active, expired, revoked, disabled, all")
	}
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return ListPage{}, Errorf(EINVALID, "limit: must be 1-%d", MaxListLimit)
	}
	if in.Cursor != "" {
		after, ok := decodeCursor(in.Cursor, scope, string(q.Status))
		if !ok {
			return ListPage{}, Errorf(EINVALID, "cursor: not a cursor of this list")
		}
		q.After = after
	}
	page, err := s.store.ListTokens(ctx, q)
	if err == nil {
		err = s.liveQuotas(ctx, page.Tokens...)
	}
	if err != nil {
		return ListPage{}, err
	}
	for _, t := range page.Tokens {
		s.withHeld(t)
	}
	out := ListPage{Tokens: page.Tokens}
	if page.Next != "" {
		out.NextCursor = encodeCursor(page.Next, scope, string(q.Status))
	}
	return out, nil
}

// AuditInput selects a page of audit events.
type AuditInput struct {
	Owner   string    // "" for the caller's owner; an admin's "" means every owner
	TokenID string    // "" for every token
	Since   time.Time // zero: from the start of the retention
	Until   time.Time // zero: until now
	Limit   int       // 1-100; 0 for 20
	Cursor  string    // NextCursor of the previous page
}

// AuditPageOut is a page of audit events, newest first, for a caller.
type AuditPageOut struct {
	Events     []*AuditEvent
	NextCursor string // "" on the last page
}

// Audit returns a page of the audit trail: for a caller with manage, its owner's tokens' events;
// for an admin, any owner's or (no owner) every owner's. Returns EFORBIDDEN if the caller may not
// manage the owner, EINVALID for a bad token id, range, limit or cursor.
func (s *Service) Audit(ctx context.Context, caller Principal, in AuditInput) (AuditPageOut, error) {
	owner := in.Owner
	if owner == "" && !caller.IsAdmin() {
		owner = caller.Owner
	}
	if !caller.CanManage(owner) && !(owner == "" && caller.IsAdmin()) {
		return AuditPageOut{}, forbidden(caller, owner)
	}
	q := AuditQuery{Owner: owner, TokenID: in.TokenID, Since: in.Since, Until: in.Until, Limit: in.Limit}
	if q.TokenID != "" && !ValidID(q.TokenID) {
		return AuditPageOut{}, Errorf(EINVALID, "tokenId: must be a token id")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return AuditPageOut{}, Errorf(EINVALID, "since: must be before until")
	}
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return AuditPageOut{}, Errorf(EINVALID, "limit: must be 1-%d", MaxListLimit)
	}
	scope := "audit|" + owner + "|" + q.TokenID
	bounds := q.Since.UTC().Format(time.RFC3339Nano) + "|" + q.Until.UTC().Format(time.RFC3339Nano)
	if in.Cursor != "" {
		after, ok := decodeCursor(in.Cursor, scope, bounds)
		if !ok {
			return AuditPageOut{}, Errorf(EINVALID, "cursor: not a cursor of this list")
		}
		q.After = after
	}
	page, err := s.store.ListAudit(ctx, q)
	if err != nil {
		return AuditPageOut{}, err
	}
	out := AuditPageOut{Events: page.Events}
	if page.Next != "" {
		out.NextCursor = encodeCursor(page.Next, scope, bounds)
	}
	return out, nil
}

// Get returns one token, with the uses this Service holds of it unwritten (Verify) added to its
// usageCount and lastUsedAt, as List and Self do. Returns ENOTFOUND if it does not exist, is gone, or belongs to an owner
// the caller may not manage; EFORBIDDEN if the caller manages no tokens at all.
func (s *Service) Get(ctx context.Context, caller Principal, id string) (*Token, error) {
	t, err := s.readable(ctx, caller, id)
	if err == nil {
		err = s.liveQuotas(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	return s.withHeld(t), nil
}

// readable loads a token the caller may read, as Get does, without its live quota: for reads of
// what belongs to the token (its usage) rather than the token itself.
func (s *Service) readable(ctx context.Context, caller Principal, id string) (*Token, error) {
	if !caller.CanManage(caller.Owner) {
		return nil, forbidden(caller, caller.Owner)
	}
	return s.find(ctx, caller, id)
}

// Self returns the token the caller presented. Returns ENOTFOUND if it is gone, or if the caller
// is a person signed in with OpenID Connect, who presented no token.
func (s *Service) Self(ctx context.Context, caller Principal) (*Token, error) {
	if caller.IsPerson() {
		return nil, Errorf(ENOTFOUND, "You signed in as a person (%s), not with a token: there is no token to show.", caller.Subject)
	}
	t, err := s.store.FindToken(ctx, caller.TokenID)
	if err != nil {
		return nil, err
	}
	if err := s.liveQuotas(ctx, t); err != nil {
		return nil, err
	}
	return s.withHeld(t), nil
}

// liveQuotas sets the Remaining and RefilledAt of the tokens with a quota to their counters'
// (Store.QuotaCounters; a token without a counter holds its own), for answers and ceilings: one
// store read for all of them, none when no token has a quota. The enforcement path never calls
// it: leases read the counter themselves.
func (s *Service) liveQuotas(ctx context.Context, tokens ...*Token) error {
	var ids []string
	for _, t := range tokens {
		if t.Remaining != nil {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	counters, err := s.store.QuotaCounters(ctx, ids)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if c, ok := counters[t.ID]; ok && t.Remaining != nil {
			r := c.Remaining
			t.Remaining, t.RefilledAt = &r, c.RefilledAt
		}
	}
	return nil
}

// UpdateInput changes a token; nil fields stay as they are.
type UpdateInput struct {
	Name        *string
	Permissions *[]string
	APIs        *[]string // empty: bound to no API (usable on every API)
	Lifetime    *Lifetime
	AutoDelete  *bool
	Enabled     *bool
	Meta        *json.RawMessage // pointer to nil clears the metadata
	Limits      LimitsInput
}

// Update changes a token's settings. A caller that is not an admin may tighten any setting of a
// token it manages, itself included, and loosen one only up to its own ceiling (attenuation.go);
// settings the update leaves alone are not checked. That costs one more FindToken when the update
// sets permissions, apis, expiry or a limit of another token. Returns EINVALID for a broken rule
// or an empty update, ENOTFOUND as Get, EFORBIDDEN if a setting exceeds the caller's own (naming
// the field and the ceiling), EUNAUTHORIZED if the caller's token is no longer valid, ECONFLICT if
// the token is revoked or changed concurrently.
func (s *Service) Update(ctx context.Context, caller Principal, id string, in UpdateInput) (*Token, error) {
	if !caller.CanManage(caller.Owner) {
		return nil, forbidden(caller, caller.Owner)
	}
	if in == (UpdateInput{}) {
		return nil, Errorf(EINVALID, "nothing to update: give at least one of name, permissions, apis, expiresAt, expiresIn, autoDelete, enabled, meta, rateLimit, remaining, refill, allowedCidrs")
	}
	now := s.cfg.Now().UTC()
	var err error
	var name string
	if in.Name != nil {
		if name, err = validName(*in.Name); err != nil {
			return nil, err
		}
	}
	var perms []string
	if in.Permissions != nil {
		if perms, err = s.validPermissions(caller, *in.Permissions); err != nil {
			return nil, err
		}
	}
	var apis []string
	if in.APIs != nil {
		if apis, err = validAPIs(*in.APIs); err != nil {
			return nil, err
		}
	}
	var expiresAt time.Time
	if in.Lifetime != nil {
		if expiresAt, err = s.expiry(*in.Lifetime, now, false); err != nil {
			return nil, err
		}
	}
	var meta json.RawMessage
	if in.Meta != nil {
		if meta, err = validMeta(*in.Meta); err != nil {
			return nil, err
		}
	}

	t, err := s.findMutable(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	if !t.RevokedAt.IsZero() {
		return nil, Errorf(ECONFLICT, "Token is revoked and cannot be changed.")
	}
	before := t.Clone()
	var prev *Token
	checks := in.bounds()
	if !caller.IsAdmin() && len(checks) > 0 {
		prev = t.Clone()
	}
	if in.Name != nil {
		t.Name = name
	}
	if in.Permissions != nil {
		t.Permissions = perms
	}
	if in.APIs != nil {
		t.APIs = apis
	}
	if in.Lifetime != nil {
		t.ExpiresAt = expiresAt
	}
	if in.AutoDelete != nil {
		t.AutoDelete = *in.AutoDelete
	}
	if in.Enabled != nil {
		t.Enabled = *in.Enabled
	}
	if in.Meta != nil {
		t.Meta = meta
	}
	if err := applyLimits(t, in.Limits, now); err != nil {
		return nil, err
	}
	if prev != nil {
		if err := s.attenuateUpdate(ctx, caller, checks, prev, t, now); err != nil {
			return nil, err
		}
	}
	// Bringing a token back into use (re-enabling it, or moving an expiry that has passed) hands
	// the caller a working token again: as good as creating it, so a caller that is not an admin
	// may do it only for a token it could have created, as for Rotate.
	if before.Status(now) != StatusActive && t.Status(now) == StatusActive && t.ID != caller.TokenID {
		ceiling, err := s.ceilings(ctx, caller, now)
		if err != nil {
			return nil, err
		}
		if ceiling != nil {
			if err := attenuateCreate(t, ceiling); err != nil {
				return nil, err
			}
		}
	}
	return t, s.save(ctx, s.newAuditEvent(caller, ActionUpdate, t, now), before, t)
}

// Revoke revokes a token for good; revoking a revoked token changes nothing and succeeds.
// Returns ENOTFOUND as Get, ECONFLICT if the token changed concurrently.
func (s *Service) Revoke(ctx context.Context, caller Principal, id string) (*Token, error) {
	if !caller.CanManage(caller.Owner) {
		return nil, forbidden(caller, caller.Owner)
	}
	t, err := s.findMutable(ctx, caller, id)
	if err != nil || !t.RevokedAt.IsZero() {
		return t, err
	}
	return t, s.revoke(ctx, caller, t, "")
}

// revoke revokes t, recording cascade (the token a cascade started from) in its audit event.
func (s *Service) revoke(ctx context.Context, caller Principal, t *Token, cascade string) error {
	now := s.cfg.Now().UTC()
	before := t.Clone()
	t.RevokedAt = now
	t.PrevSecretHash, t.PrevSecretUntil, t.PrevUntilFirstUse = nil, time.Time{}, false
	ev := s.newAuditEvent(caller, ActionRevoke, t, now)
	ev.Cascade = cascade
	return s.save(ctx, ev, before, t)
}

// Cascade is the outcome of a cascading revoke.
type Cascade struct {
	Revoked int // descendants revoked by this call
	Skipped int // descendants the caller may not change (another owner's, or carrying admin)
}

// RevokeFamily revokes a token and every token descended from it (created by it, by those, and so
// on), each with its own audit event naming the token the cascade started from. Descendants
// already revoked are passed over, but their own descendants are not. Cost: per token in the
// family, one Query page of the ref index per 100 children, and one write per token revoked; it
// runs breadth first and stops at the first store error, which a repeated call resumes. Returns
// the token and the counts; errors as Revoke.
func (s *Service) RevokeFamily(ctx context.Context, caller Principal, id string) (*Token, Cascade, error) {
	root, err := s.Revoke(ctx, caller, id)
	if err != nil {
		return nil, Cascade{}, err
	}
	var out Cascade
	queue, seen := []string{root.ID}, map[string]bool{root.ID: true}
	for len(queue) > 0 {
		parent := queue[0]
		queue = queue[1:]
		q := ListQuery{CreatedBy: parent, Limit: MaxListLimit}
		for {
			page, err := s.store.ListTokens(ctx, q)
			if err != nil {
				return root, out, err
			}
			for _, child := range page.Tokens {
				if seen[child.ID] {
					continue
				}
				seen[child.ID] = true
				queue = append(queue, child.ID)
				if !child.RevokedAt.IsZero() {
					continue
				}
				if !caller.CanManage(child.Owner) || slices.Contains(child.Permissions, PermAdmin) && !caller.IsAdmin() {
					out.Skipped++
					continue
				}
				if err := s.revokeChild(ctx, caller, child, root.ID); err != nil {
					return root, out, err
				}
				out.Revoked++
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
	}
	return root, out, nil
}

// revokeChild revokes one descendant, reading it again once if it changed since it was listed.
func (s *Service) revokeChild(ctx context.Context, caller Principal, child *Token, root string) error {
	err := s.revoke(ctx, caller, child, root)
	if ErrorCode(err) != ECONFLICT {
		return ignoreNotFound(err)
	}
	fresh, err := s.store.FindToken(ctx, child.ID)
	if err != nil || !fresh.RevokedAt.IsZero() {
		return ignoreNotFound(err)
	}
	return ignoreNotFound(s.revoke(ctx, caller, fresh, root))
}

// ignoreNotFound: a descendant that is gone needs no revoking.
func ignoreNotFound(err error) error {
	if ErrorCode(err) == ENOTFOUND {
		return nil
	}
	return err
}

// Rotate gives a token a new secret, keeping its id and settings, and returns the new plaintext.
// The old secret keeps working for grace (0 to 7 days), then never again. Returns EINVALID for a
// bad grace period, ENOTFOUND as Get, EFORBIDDEN if the token has the admin permission and the
// caller has not, ECONFLICT if the token is revoked or expired, or changed concurrently.
func (s *Service) Rotate(ctx context.Context, caller Principal, id string, grace time.Duration) (*Token, string, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return nil, "", Errorf(EINVALID, "gracePeriodSeconds: must be 0-%d", int(MaxGracePeriod/time.Second))
	}
	return s.rotate(ctx, caller, id, grace, false)
}

// RotateUntilFirstUse is Rotate with a grace that waits for the new secret: the old secret keeps
// working until the new one is first used (see EndGrace), or max passes, whichever comes first.
// Returns EINVALID unless max is 1 second to 7 days, and the errors of Rotate.
func (s *Service) RotateUntilFirstUse(ctx context.Context, caller Principal, id string, max time.Duration) (*Token, string, error) {
	if max < time.Second || max > MaxGracePeriod {
		return nil, "", Errorf(EINVALID, "maxGracePeriodSeconds: must be 1-%d with gracePeriod untilFirstUse", int(MaxGracePeriod/time.Second))
	}
	return s.rotate(ctx, caller, id, max, true)
}

// rotate is Rotate with a checked grace; untilFirstUse makes grace a maximum.
func (s *Service) rotate(ctx context.Context, caller Principal, id string, grace time.Duration, untilFirstUse bool) (*Token, string, error) {
	if !caller.CanManage(caller.Owner) {
		return nil, "", forbidden(caller, caller.Owner)
	}
	t, err := s.findMutable(ctx, caller, id)
	if err != nil {
		return nil, "", err
	}
	now := s.cfg.Now().UTC()
	switch t.Status(now) {
	case StatusRevoked:
		return nil, "", Errorf(ECONFLICT, "Token is revoked and cannot be rotated.")
	case StatusExpired:
		return nil, "", Errorf(ECONFLICT, "Token is expired and cannot be rotated; extend its expiry first.")
	}
	// Rotating hands the caller the token's new secret: as good as creating it, so a caller that
	// is not an admin may rotate only a token it could have created (attenuation.go).
	if t.ID != caller.TokenID {
		ceiling, err := s.ceilings(ctx, caller, now)
		if err != nil {
			return nil, "", err
		}
		if ceiling != nil {
			if err := attenuateCreate(t, ceiling); err != nil {
				return nil, "", err
			}
		}
	}
	before := t.Clone()
	secret := NewSecret()
	t.PrevSecretHash, t.PrevSecretUntil, t.PrevUntilFirstUse = nil, time.Time{}, false
	if grace > 0 {
		t.PrevSecretHash, t.PrevSecretUntil, t.PrevUntilFirstUse = t.SecretHash, now.Add(grace), untilFirstUse
	}
	t.SecretHash = HashSecret(secret)
	if err := s.save(ctx, s.newAuditEvent(caller, ActionRotate, t, now), before, t); err != nil {
		return nil, "", err
	}
	return t, Format(s.cfg.Prefix, t.Env, t.ID, secret), nil
}

// find loads a token the caller may manage; another owner's token answers ENOTFOUND, so ids of
// other owners cannot be probed.
func (s *Service) find(ctx context.Context, caller Principal, id string) (*Token, error) {
	if !ValidID(id) {
		return nil, errNotFound
	}
	t, err := s.store.FindToken(ctx, id)
	if err != nil {
		return nil, err
	}
	if !caller.CanManage(t.Owner) {
		return nil, errNotFound
	}
	return t, nil
}

// findMutable is find for a change, with the token's live quota (the answer shows it, and a new
// one is checked against it): a token that carries admin may be changed, rotated or revoked only
// by an admin, or a manage token could rotate its way to admin or lock the admin out.
func (s *Service) findMutable(ctx context.Context, caller Principal, id string) (*Token, error) {
	t, err := s.find(ctx, caller, id)
	if err == nil && slices.Contains(t.Permissions, PermAdmin) && !caller.IsAdmin() {
		return nil, Errorf(EFORBIDDEN, "Only an admin token may change a token with the admin permission.")
	}
	if err == nil {
		err = s.liveQuotas(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// save writes the change of before into t, made at ev.At, together with its audit event ev, then
// publishes its lifecycle event (events.go).
func (s *Service) save(ctx context.Context, ev *AuditEvent, before, t *Token) error {
	t.UpdatedAt = ev.At
	t.PurgeAt = s.purgeAt(t)
	ev.Changes = diff(before, t)
	err := s.store.UpdateToken(ctx, t, ev)
	t.ResetQuota = false
	if err == nil {
		s.publish(ctx, ev, before, t)
	}
	return err
}

// purgeAt is when t should vanish: at expiry with autoDelete, or after the retention period of a
// revoked token, whichever comes first.
func (s *Service) purgeAt(t *Token) time.Time {
	var at time.Time
	if t.AutoDelete && !t.ExpiresAt.IsZero() {
		at = t.ExpiresAt
	}
	if !t.RevokedAt.IsZero() {
		if r := t.RevokedAt.Add(s.cfg.RevokedRetention); at.IsZero() || r.Before(at) {
			at = r
		}
	}
	return at
}

func (s *Service) expiry(l Lifetime, now time.Time, create bool) (time.Time, error) {
	given := 0
	for _, set := range []bool{l.At != nil, l.Days != nil, l.Never} {
		if set {
			given++
		}
	}
	if given > 1 {
		return time.Time{}, Errorf(EINVALID, "expiresAt and expiresIn: give at most one")
	}
	var at time.Time
	switch {
	case l.At != nil:
		if !l.At.After(now) {
			return time.Time{}, Errorf(EINVALID, "expiresAt: must be in the future")
		}
		if l.At.Sub(now) > MaxExpiryDays*Day {
			return time.Time{}, Errorf(EINVALID, "expiresAt: must be at most %d days from now, or null for never", MaxExpiryDays)
		}
		at = l.At.UTC()
	case l.Days != nil:
		if *l.Days < 1 || *l.Days > MaxExpiryDays {
			return time.Time{}, Errorf(EINVALID, "expiresIn: must be a whole number of days from 1 to %d", MaxExpiryDays)
		}
		at = now.Add(time.Duration(*l.Days) * Day)
	case l.Never:
	case create && s.cfg.DefaultLifetime > 0:
		at = now.Add(s.cfg.DefaultLifetime)
	}
	if max := s.cfg.MaxLifetime; max > 0 && (at.IsZero() || at.Sub(now) > max) {
		return time.Time{}, Errorf(EINVALID, "expiresAt: must be at most %d days from now", int(max/Day))
	}
	return at, nil
}

func (s *Service) validPermissions(caller Principal, perms []string) ([]string, error) {
	if len(perms) == 0 || len(perms) > MaxPermissions {
		return nil, Errorf(EINVALID, "permissions: must list 1-%d permissions", MaxPermissions)
	}
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		if !permissionRule.match(p) {
			return nil, Errorf(EINVALID, "permissions: %q must match %s", truncate(p, 70), permissionSyntax)
		}
		if allowed := s.cfg.AllowedPermissions; len(allowed) > 0 && p != PermManage && p != PermAdmin && !slices.Contains(allowed, p) {
			return nil, Errorf(EINVALID, "permissions: %q is not allowed in this deployment", p)
		}
		if p == PermAdmin && !caller.IsAdmin() {
			return nil, Errorf(EFORBIDDEN, "Only an admin token may grant the admin permission.")
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// validAPIs checks the names of the APIs a token is bound to: at most MaxAPIs, each matching
// apiNameSyntax; duplicates are dropped. Returns nil for an empty list (bound to no API).
func validAPIs(apis []string) ([]string, error) {
	if len(apis) > MaxAPIs {
		return nil, Errorf(EINVALID, "apis: must list at most %d APIs", MaxAPIs)
	}
	var out []string
	for i, a := range apis {
		if !ValidAPIName(a) {
			return nil, Errorf(EINVALID, "apis[%d]: must match %s", i, apiNameSyntax)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// validName trims surrounding white space from name and checks what is left: 1-100 characters of
// valid UTF-8, none of them refused (refusedRune).
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxNameLen || !utf8.ValidString(name) {
		return "", Errorf(EINVALID, "name: must be 1-%d characters", MaxNameLen)
	}
	if err := checkText("name", name); err != nil {
		return "", err
	}
	return name, nil
}

// validMeta returns meta compacted, or nil for none: a JSON object of at most 4096 bytes once
// compacted, valid UTF-8, with no repeated key and no refused character in a key or string.
func validMeta(meta json.RawMessage) (json.RawMessage, error) {
	if meta == nil || string(meta) == "null" {
		return nil, nil
	}
	if !utf8.Valid(meta) {
		return nil, Errorf(EINVALID, "meta: must be valid UTF-8")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, meta); err != nil || buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, Errorf(EINVALID, "meta: must be a JSON object")
	}
	if buf.Len() > MaxMetaBytes {
		return nil, Errorf(EINVALID, "meta: must be at most %d bytes of JSON", MaxMetaBytes)
	}
	if err := checkMeta(buf.Bytes()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func forbidden(caller Principal, owner string) error {
	if owner != caller.Owner && !caller.IsAdmin() && slices.Contains(caller.Permissions, PermManage) {
		return Errorf(EFORBIDDEN, "Only an admin token may manage another owner's tokens.")
	}
	return Errorf(EFORBIDDEN, "This token lacks the %s permission.", PermManage)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s...", s[:n])
}

var errNotFound = Errorf(ENOTFOUND, "Token not found.")

// NotFound returns the error stores answer for an absent or gone token.
func NotFound() error { return errNotFound }
