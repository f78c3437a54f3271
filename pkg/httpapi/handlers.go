package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// TokenView is a token as callers see it: never a secret or a hash; unset values are null.
type TokenView struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Hint        string          `json:"hint"`
	Owner       string          `json:"owner"`
	Permissions []string        `json:"permissions"`
	APIs        []string        `json:"apis"` // null: usable on every API
	Status      token.Status    `json:"status"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	LastUsedAt  *time.Time      `json:"lastUsedAt"`
	ExpiresAt   *time.Time      `json:"expiresAt"`
	RevokedAt   *time.Time      `json:"revokedAt"`
	AutoDelete  bool            `json:"autoDelete"`
	Enabled     bool            `json:"enabled"`
	UsageCount  int64           `json:"usageCount"`
	ClientID    *string         `json:"clientId"`
	CreatedBy   *string         `json:"createdBy"` // the token whose caller created it; null: the CLI or a caller without one
	Meta        json.RawMessage `json:"meta"`

	RateLimit    *RateLimitView `json:"rateLimit"`
	Remaining    *int64         `json:"remaining"` // uses left now, a refill that fell due included
	Refill       *RefillView    `json:"refill"`
	AllowedCIDRs []string       `json:"allowedCidrs"`
}

// RateLimitView is a rate limit as records show it. Get and list add the live state of the
// current window (WithWindow); other answers leave it out.
type RateLimitView struct {
	Limit         int64      `json:"limit"`
	WindowSeconds int64      `json:"windowSeconds"`
	Count         *int64     `json:"count,omitempty"`     // requests counted in the current window
	Remaining     *int64     `json:"remaining,omitempty"` // requests the current window still admits
	Reset         *time.Time `json:"reset,omitempty"`     // when the current window ends
}

// RefillView is a quota's refill as records show it.
type RefillView struct {
	Amount          int64      `json:"amount"`
	IntervalSeconds int64      `json:"intervalSeconds"`
	NextRefillAt    *time.Time `json:"nextRefillAt"` // null when unknown
}

// RateLimitJSON is a rate limit as requests set it.
type RateLimitJSON struct {
	Limit         int64 `json:"limit"`
	WindowSeconds int64 `json:"windowSeconds"`
}

// RefillJSON is a quota's refill as requests set it.
type RefillJSON struct {
	Amount          int64 `json:"amount"`
	IntervalSeconds int64 `json:"intervalSeconds"`
}

// limitsFields are the limit settings of create and update requests; null removes one.
type limitsFields struct {
	RateLimit    optional[RateLimitJSON] `json:"rateLimit"`
	Remaining    optional[int64]         `json:"remaining"`
	Refill       optional[RefillJSON]    `json:"refill"`
	AllowedCIDRs optional[[]string]      `json:"allowedCidrs"`
}

func (f *limitsFields) input() token.LimitsInput {
	var in token.LimitsInput
	switch rl := f.RateLimit; {
	case rl.Null:
		in.ClearRateLimit = true
	case rl.Set:
		in.RateLimit = &token.RateLimit{Limit: rl.Value.Limit, Window: seconds(rl.Value.WindowSeconds)}
	}
	switch r := f.Remaining; {
	case r.Null:
		in.ClearRemaining = true
	case r.Set:
		in.Remaining = &r.Value
	}
	switch rf := f.Refill; {
	case rf.Null:
		in.ClearRefill = true
	case rf.Set:
		in.Refill = &token.Refill{Amount: rf.Value.Amount, Interval: seconds(rf.Value.IntervalSeconds)}
	}
	if c := f.AllowedCIDRs; c.Set {
		cidrs := c.Value
		if cidrs == nil {
			cidrs = []string{}
		}
		in.AllowedCIDRs = &cidrs
	}
	return in
}

// seconds converts a count of seconds from a request; out-of-range counts become -1, which every
// duration rule rejects, rather than overflowing into an accepted value.
func seconds(n int64) time.Duration {
	if n < 0 || n > 1<<32 {
		return -1
	}
	return time.Duration(n) * time.Second
}

// WithSecret is the answer of create and rotate: the record plus the plaintext, shown once.
type WithSecret struct {
	TokenView
	Token string `json:"token"`
}

// View is t as callers see it at now.
func View(t *token.Token, now time.Time) TokenView {
	v := TokenView{
		ID:          t.ID,
		Name:        t.Name,
		Hint:        t.Hint,
		Owner:       t.Owner,
		Permissions: t.Permissions,
		APIs:        t.APIs,
		Status:      t.Status(now),
		CreatedAt:   t.CreatedAt,
		UpdatedAt:   t.UpdatedAt,
		LastUsedAt:  timeOrNil(t.LastUsedAt),
		ExpiresAt:   timeOrNil(t.ExpiresAt),
		RevokedAt:   timeOrNil(t.RevokedAt),
		AutoDelete:  t.AutoDelete,
		Enabled:     t.Enabled,
		UsageCount:  t.UsageCount,
		ClientID:    stringOrNil(t.ClientID),
		CreatedBy:   stringOrNil(t.CreatedBy),
		Meta:        t.Meta,
	}
	if rl := t.RateLimit; rl != nil {
		v.RateLimit = &RateLimitView{Limit: rl.Limit, WindowSeconds: int64(rl.Window / time.Second)}
	}
	if left, next, ok := t.QuotaNow(now); ok {
		v.Remaining = &left
		if rf := t.Refill; rf != nil {
			v.Refill = &RefillView{Amount: rf.Amount, IntervalSeconds: int64(rf.Interval / time.Second), NextRefillAt: timeOrNil(next)}
		}
	}
	for _, p := range t.AllowedCIDRs {
		v.AllowedCIDRs = append(v.AllowedCIDRs, p.String())
	}
	return v
}

// WithWindow adds the live state of the token's current rate-limit window to v.
func (v TokenView) WithWindow(w token.WindowState) TokenView {
	if v.RateLimit != nil {
		rl := *v.RateLimit
		rl.Count, rl.Remaining, rl.Reset = &w.Count, &w.Remaining, &w.Reset
		v.RateLimit = &rl
	}
	return v
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type createRequest struct {
	Name        string                    `json:"name"`
	Permissions []string                  `json:"permissions"`
	APIs        []string                  `json:"apis"`
	Owner       string                    `json:"owner"`
	Environment string                    `json:"environment"`
	ExpiresAt   optional[string]          `json:"expiresAt"`
	ExpiresIn   optional[int]             `json:"expiresIn"`
	AutoDelete  bool                      `json:"autoDelete"`
	Enabled     optional[bool]            `json:"enabled"`
	ClientID    string                    `json:"clientId"`
	Meta        optional[json.RawMessage] `json:"meta"`
	limitsFields
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		a.fail(w, r, err)
		return
	}
	lifetime, err := parseLifetime(req.ExpiresAt, req.ExpiresIn)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	in := token.CreateInput{
		Owner:       req.Owner,
		Name:        req.Name,
		Permissions: req.Permissions,
		APIs:        req.APIs,
		Env:         req.Environment,
		Lifetime:    lifetime,
		AutoDelete:  req.AutoDelete,
		ClientID:    req.ClientID,
		Meta:        req.Meta.Value,
		Limits:      req.input(),
	}
	if req.Enabled.Set && !req.Enabled.Null {
		in.Enabled = &req.Enabled.Value
	}
	t, plaintext, err := a.Service.Create(r.Context(), principal(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, WithSecret{View(t, a.Service.Now()), plaintext})
}

// queryLimit reads the limit of a list query: 0 when absent (the default), else 1-100.
func queryLimit(q url.Values) (int, error) {
	s := q.Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > token.MaxListLimit {
		return 0, token.Errorf(token.EINVALID, "limit: must be a whole number from 1 to %d", token.MaxListLimit)
	}
	return n, nil
}

type listResponse struct {
	Tokens     []TokenView `json:"tokens"`
	NextCursor *string     `json:"nextCursor"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := token.ListInput{Owner: q.Get("owner"), CreatedBy: q.Get("createdBy"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	var err error
	if in.Limit, err = queryLimit(q); err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := a.Service.List(r.Context(), principal(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views, err := LiveViews(r.Context(), a.Service, page.Tokens)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, listResponse{Tokens: views, NextCursor: stringOrNil(page.NextCursor)})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	t, err := a.Service.Get(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views, err := LiveViews(r.Context(), a.Service, []*token.Token{t})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, views[0])
}

// LiveViews are the views of tokens as get and list answer them, with the live state of their
// rate-limit windows: one store read for all the rate-limited ones among them
// (token.Service.RateWindows), none without.
func LiveViews(ctx context.Context, svc *token.Service, tokens []*token.Token) ([]TokenView, error) {
	windows, err := svc.RateWindows(ctx, tokens)
	if err != nil {
		return nil, err
	}
	now := svc.Now()
	views := make([]TokenView, 0, len(tokens))
	for _, t := range tokens {
		v := View(t, now)
		if w, ok := windows[t.ID]; ok {
			v = v.WithWindow(w)
		}
		views = append(views, v)
	}
	return views, nil
}

// UsageResponse is the answer of GET /tokens/{id}/usage: one entry per UTC day, oldest first,
// ending today.
type UsageResponse struct {
	TokenID string         `json:"tokenId"`
	Days    []UsageDayView `json:"days"`
}

// UsageDayView is one day of a token's usage counters.
type UsageDayView struct {
	Date    string           `json:"date"`    // 2026-11-22
	Valid   int64            `json:"valid"`   // uses admitted
	Refused map[string]int64 `json:"refused"` // refusals by verdict code; {} for none
}

func (a *API) usage(w http.ResponseWriter, r *http.Request) {
	days := token.DefaultUsageDays
	if q := r.URL.Query(); q.Has("days") {
		if len(q["days"]) > 1 {
			a.fail(w, r, token.Errorf(token.EINVALID, "days: must be given once"))
			return
		}
		n, err := strconv.Atoi(q.Get("days"))
		if err != nil || n < 1 || n > token.MaxUsageDays {
			a.fail(w, r, token.Errorf(token.EINVALID, "days: must be a whole number from 1 to %d", token.MaxUsageDays))
			return
		}
		days = n
	}
	id := r.PathValue("id")
	counters, err := a.Service.Usage(r.Context(), principal(r), id, days)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp := UsageResponse{TokenID: id, Days: make([]UsageDayView, 0, len(counters))}
	for _, d := range counters {
		refused := d.Refused
		if refused == nil {
			refused = map[string]int64{}
		}
		resp.Days = append(resp.Days, UsageDayView{Date: token.UsageDay(d.Day), Valid: d.Valid, Refused: refused})
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) self(w http.ResponseWriter, r *http.Request) {
	t, err := a.Service.Self(r.Context(), principal(r))
	a.answer(w, r, t, err)
}

type updateRequest struct {
	Name        optional[string]          `json:"name"`
	Permissions optional[[]string]        `json:"permissions"`
	APIs        optional[[]string]        `json:"apis"` // null or []: bound to no API
	ExpiresAt   optional[string]          `json:"expiresAt"`
	ExpiresIn   optional[int]             `json:"expiresIn"`
	AutoDelete  optional[bool]            `json:"autoDelete"`
	Enabled     optional[bool]            `json:"enabled"`
	Meta        optional[json.RawMessage] `json:"meta"`
	limitsFields
}

func (a *API) update(w http.ResponseWriter, r *http.Request) {
	var req updateRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		a.fail(w, r, err)
		return
	}
	var in token.UpdateInput
	for _, f := range []struct {
		name string
		opt  interface{ null() bool }
	}{{"name", &req.Name}, {"permissions", &req.Permissions}, {"autoDelete", &req.AutoDelete}, {"enabled", &req.Enabled}} {
		if f.opt.null() {
			a.fail(w, r, token.Errorf(token.EINVALID, "%s: must not be null", f.name))
			return
		}
	}
	if req.Name.Set {
		in.Name = &req.Name.Value
	}
	if req.Permissions.Set {
		in.Permissions = &req.Permissions.Value
	}
	if req.APIs.Set {
		apis := req.APIs.Value // nil for null: unbind
		in.APIs = &apis
	}
	if req.ExpiresAt.Set || req.ExpiresIn.Set {
		lifetime, err := parseLifetime(req.ExpiresAt, req.ExpiresIn)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		in.Lifetime = &lifetime
	}
	if req.AutoDelete.Set {
		in.AutoDelete = &req.AutoDelete.Value
	}
	if req.Enabled.Set {
		in.Enabled = &req.Enabled.Value
	}
	if req.Meta.Set {
		in.Meta = &req.Meta.Value
	}
	in.Limits = req.input()
	t, err := a.Service.Update(r.Context(), principal(r), r.PathValue("id"), in)
	a.answer(w, r, t, err)
}

// RevokeResponse is a revoked token, and with ?cascade=true what happened to its descendants.
type RevokeResponse struct {
	TokenView
	DescendantsRevoked *int `json:"descendantsRevoked,omitempty"`
	DescendantsSkipped *int `json:"descendantsSkipped,omitempty"`
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Query().Get("cascade") {
	case "", "false":
		t, err := a.Service.Revoke(r.Context(), principal(r), r.PathValue("id"))
		a.answer(w, r, t, err)
	case "true":
		t, c, err := a.Service.RevokeFamily(r.Context(), principal(r), r.PathValue("id"))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, RevokeResponse{View(t, a.Service.Now()), &c.Revoked, &c.Skipped})
	default:
		a.fail(w, r, token.Errorf(token.EINVALID, "cascade: must be true or false"))
	}
}

// AuditEventView is an audit event as callers see it.
type AuditEventView struct {
	ID           string         `json:"id"`
	At           time.Time      `json:"at"`
	Action       string         `json:"action"`
	TokenID      string         `json:"tokenId"`
	Owner        string         `json:"owner"`
	ActorTokenID *string        `json:"actorTokenId"`
	ActorOwner   *string        `json:"actorOwner"`
	ActorSubject *string        `json:"actorSubject"` // a person signed in with OpenID Connect
	Changes      []token.Change `json:"changes"`
	SourceIP     *string        `json:"sourceIp"`
	RequestID    *string        `json:"requestId"`
	Cascade      *string        `json:"cascade"`
	Report       *ReportView    `json:"report,omitempty"` // only on events of a reported secret (POST /leaks, POST /revoke)
}

// ReportView is who reported a token's secret and where it was found, as audit events show it.
type ReportView struct {
	Reporter string  `json:"reporter"`
	URL      *string `json:"url"`
	Source   *string `json:"source"`
	Type     *string `json:"type"`
}

type auditResponse struct {
	Events     []AuditEventView `json:"events"`
	NextCursor *string          `json:"nextCursor"`
}

func (a *API) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := token.AuditInput{Owner: q.Get("owner"), TokenID: q.Get("tokenId"), Cursor: q.Get("cursor")}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &in.Since}, {"until", &in.Until}} {
		if v := q.Get(f.name); v != "" {
			at, err := time.Parse(time.RFC3339, v)
			if err != nil {
				a.fail(w, r, token.Errorf(token.EINVALID, "%s: must be an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name))
				return
			}
			*f.dst = at
		}
	}
	var err error
	if in.Limit, err = queryLimit(q); err != nil {
		a.fail(w, r, err)
		return
	}
	page, err := a.Service.Audit(r.Context(), principal(r), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	resp := auditResponse{Events: make([]AuditEventView, 0, len(page.Events)), NextCursor: stringOrNil(page.NextCursor)}
	for _, e := range page.Events {
		resp.Events = append(resp.Events, AuditView(e))
	}
	writeJSON(w, http.StatusOK, resp)
}

// AuditView is an audit event as GET /audit shows it.
func AuditView(e *token.AuditEvent) AuditEventView {
	changes := e.Changes
	if changes == nil {
		changes = []token.Change{}
	}
	v := AuditEventView{
		ID: e.ID, At: e.At, Action: e.Action, TokenID: e.TargetID, Owner: e.TargetOwner,
		ActorTokenID: stringOrNil(e.ActorTokenID), ActorOwner: stringOrNil(e.ActorOwner),
		ActorSubject: stringOrNil(e.ActorSubject), Changes: changes,
		SourceIP: stringOrNil(e.SourceIP), RequestID: stringOrNil(e.RequestID), Cascade: stringOrNil(e.Cascade),
	}
	if r := e.Report; r != nil {
		v.Report = &ReportView{Reporter: r.Reporter, URL: stringOrNil(r.URL), Source: stringOrNil(r.Source), Type: stringOrNil(r.Type)}
	}
	return v
}

// rotateRequest: a fixed grace (gracePeriodSeconds), or one that waits for the new secret
// (gracePeriod "untilFirstUse" with maxGracePeriodSeconds). A null is the same as leaving the
// field out.
type rotateRequest struct {
	GracePeriodSeconds    *int64  `json:"gracePeriodSeconds"`
	GracePeriod           *string `json:"gracePeriod"`
	MaxGracePeriodSeconds *int64  `json:"maxGracePeriodSeconds"`
}

// graceUntilFirstUse is the one named grace period of POST /tokens/{id}/rotate.
const graceUntilFirstUse = "untilFirstUse"

func (a *API) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		a.fail(w, r, err)
		return
	}
	max := int64(token.MaxGracePeriod / time.Second)
	var (
		t         *token.Token
		plaintext string
		err       error
	)
	switch {
	case req.GracePeriod != nil && *req.GracePeriod != graceUntilFirstUse:
		err = token.Errorf(token.EINVALID, "gracePeriod: must be %q (or use gracePeriodSeconds)", graceUntilFirstUse)
	case req.GracePeriod != nil && req.GracePeriodSeconds != nil:
		err = token.Errorf(token.EINVALID, "gracePeriodSeconds: not with gracePeriod %q; its limit is maxGracePeriodSeconds", graceUntilFirstUse)
	case req.GracePeriod != nil && (req.MaxGracePeriodSeconds == nil || *req.MaxGracePeriodSeconds < 1 || *req.MaxGracePeriodSeconds > max):
		err = token.Errorf(token.EINVALID, "maxGracePeriodSeconds: must be 1-%d with gracePeriod %q", max, graceUntilFirstUse)
	case req.GracePeriod != nil:
		t, plaintext, err = a.Service.RotateUntilFirstUse(r.Context(), principal(r), r.PathValue("id"), time.Duration(*req.MaxGracePeriodSeconds)*time.Second)
	case req.MaxGracePeriodSeconds != nil:
		err = token.Errorf(token.EINVALID, "maxGracePeriodSeconds: only with gracePeriod %q", graceUntilFirstUse)
	case req.GracePeriodSeconds != nil && (*req.GracePeriodSeconds < 0 || *req.GracePeriodSeconds > max):
		err = token.Errorf(token.EINVALID, "gracePeriodSeconds: must be 0-%d", max)
	default:
		var grace int64
		if req.GracePeriodSeconds != nil {
			grace = *req.GracePeriodSeconds
		}
		t, plaintext, err = a.Service.Rotate(r.Context(), principal(r), r.PathValue("id"), time.Duration(grace)*time.Second)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WithSecret{View(t, a.Service.Now()), plaintext})
}

type verifyRequest struct {
	Token       string   `json:"token"`
	Permissions []string `json:"permissions"`
	API         string   `json:"api"` // the API the token was presented to, for API binding
	IP          string   `json:"ip"`  // the address the token was presented from, for allowlists
}

// VerifyResponse is the answer of POST /verify.
type VerifyResponse struct {
	Valid       bool       `json:"valid"`
	Code        string     `json:"code"`
	Error       string     `json:"error,omitempty"`
	TokenID     string     `json:"tokenId,omitempty"`
	Owner       string     `json:"owner,omitempty"`
	Name        string     `json:"name,omitempty"`
	Permissions []string   `json:"permissions,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	Reset       *time.Time `json:"reset,omitempty"` // when a rate limit or quota lets the token in again
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		a.fail(w, r, err)
		return
	}
	req.Token = strings.TrimSpace(req.Token) // as token.BearerToken trims a header's
	if req.Token == "" {
		a.fail(w, r, token.Errorf(token.EINVALID, "token: required"))
		return
	}
	in := token.VerifyInput{Token: req.Token, Permissions: req.Permissions, API: req.API}
	if req.API != "" && !token.ValidAPIName(req.API) {
		a.fail(w, r, token.Errorf(token.EINVALID, "api: must be the name of an API: lowercase letters, digits and ._-, at most 64"))
		return
	}
	if req.IP != "" {
		ip, err := netip.ParseAddr(req.IP)
		if err != nil {
			a.fail(w, r, token.Errorf(token.EINVALID, "ip: must be an IPv4 or IPv6 address"))
			return
		}
		in.SourceIP = ip
	}
	v, err := a.Service.VerifyRequest(r.Context(), in)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, VerifyView(v))
}

// VerifyView is a verdict as POST /verify answers it: the token's identity when it is valid,
// the code and message (and when a limit lets the token in again) when it is not.
func VerifyView(v token.Verdict) VerifyResponse {
	if !v.Valid() {
		resp := VerifyResponse{Code: v.Code, Error: v.Message()}
		if v.Limit != nil {
			resp.Reset = timeOrNil(v.Limit.Reset)
		}
		return resp
	}
	t := v.Token
	return VerifyResponse{
		Valid: true, Code: v.Code, TokenID: t.ID, Owner: t.Owner, Name: t.Name,
		Permissions: t.Permissions, ExpiresAt: timeOrNil(t.ExpiresAt),
	}
}

// answer writes a token record or the error.
func (a *API) answer(w http.ResponseWriter, r *http.Request, t *token.Token, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, View(t, a.Service.Now()))
}

// parseLifetime turns the expiresAt/expiresIn fields into a token.Lifetime.
func parseLifetime(at optional[string], in optional[int]) (token.Lifetime, error) {
	var l token.Lifetime
	switch {
	case at.Set && at.Null:
		l.Never = true
	case at.Set:
		t, err := time.Parse(time.RFC3339, at.Value)
		if err != nil {
			return l, token.Errorf(token.EINVALID, "expiresAt: must be an RFC 3339 time such as 2030-01-02T15:04:05Z, or null")
		}
		l.At = &t
	}
	if in.Set {
		if in.Null {
			return l, token.Errorf(token.EINVALID, "expiresIn: must be a whole number of days")
		}
		l.Days = &in.Value
	}
	return l, nil
}
