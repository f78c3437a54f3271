package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// tokenView is a token as callers see it: never a secret or a hash; unset values are null.
type tokenView struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Hint        string          `json:"hint"`
	Owner       string          `json:"owner"`
	Permissions []string        `json:"permissions"`
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
	Meta        json.RawMessage `json:"meta"`
}

// withSecret is the answer of create and rotate: the record plus the plaintext, shown once.
type withSecret struct {
	tokenView
	Token string `json:"token"`
}

func view(t *token.Token, now time.Time) tokenView {
	return tokenView{
		ID:          t.ID,
		Name:        t.Name,
		Hint:        t.Hint,
		Owner:       t.Owner,
		Permissions: t.Permissions,
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
		Meta:        t.Meta,
	}
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
	Owner       string                    `json:"owner"`
	Environment string                    `json:"environment"`
	ExpiresAt   optional[string]          `json:"expiresAt"`
	ExpiresIn   optional[int]             `json:"expiresIn"`
	AutoDelete  bool                      `json:"autoDelete"`
	Enabled     optional[bool]            `json:"enabled"`
	ClientID    string                    `json:"clientId"`
	Meta        optional[json.RawMessage] `json:"meta"`
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	lifetime, err := parseLifetime(req.ExpiresAt, req.ExpiresIn)
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	in := token.CreateInput{
		Owner:       req.Owner,
		Name:        req.Name,
		Permissions: req.Permissions,
		Env:         req.Environment,
		Lifetime:    lifetime,
		AutoDelete:  req.AutoDelete,
		ClientID:    req.ClientID,
		Meta:        req.Meta.Value,
	}
	if req.Enabled.Set && !req.Enabled.Null {
		in.Enabled = &req.Enabled.Value
	}
	t, plaintext, err := a.Service.Create(r.Context(), principal(r), in)
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	w.Header().Set("Location", "/tokens/"+t.ID)
	writeJSON(w, http.StatusCreated, withSecret{view(t, a.Service.Now()), plaintext})
}

type listResponse struct {
	Tokens     []tokenView `json:"tokens"`
	NextCursor *string     `json:"nextCursor"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in := token.ListInput{Owner: q.Get("owner"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > token.MaxListLimit {
			writeError(w, r, a.logger(), token.Errorf(token.EINVALID, "limit: must be a whole number from 1 to %d", token.MaxListLimit))
			return
		}
		in.Limit = n
	}
	page, err := a.Service.List(r.Context(), principal(r), in)
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	now := a.Service.Now()
	resp := listResponse{Tokens: make([]tokenView, 0, len(page.Tokens)), NextCursor: stringOrNil(page.NextCursor)}
	for _, t := range page.Tokens {
		resp.Tokens = append(resp.Tokens, view(t, now))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	t, err := a.Service.Get(r.Context(), principal(r), r.PathValue("id"))
	a.answer(w, r, t, err)
}

func (a *API) self(w http.ResponseWriter, r *http.Request) {
	t, err := a.Service.Self(r.Context(), principal(r))
	a.answer(w, r, t, err)
}

type updateRequest struct {
	Name        optional[string]          `json:"name"`
	Permissions optional[[]string]        `json:"permissions"`
	ExpiresAt   optional[string]          `json:"expiresAt"`
	ExpiresIn   optional[int]             `json:"expiresIn"`
	AutoDelete  optional[bool]            `json:"autoDelete"`
	Enabled     optional[bool]            `json:"enabled"`
	Meta        optional[json.RawMessage] `json:"meta"`
}

func (a *API) update(w http.ResponseWriter, r *http.Request) {
	var req updateRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	var in token.UpdateInput
	for _, f := range []struct {
		name string
		opt  interface{ null() bool }
	}{{"name", &req.Name}, {"permissions", &req.Permissions}, {"autoDelete", &req.AutoDelete}, {"enabled", &req.Enabled}} {
		if f.opt.null() {
			writeError(w, r, a.logger(), token.Errorf(token.EINVALID, "%s: must not be null", f.name))
			return
		}
	}
	if req.Name.Set {
		in.Name = &req.Name.Value
	}
	if req.Permissions.Set {
		in.Permissions = &req.Permissions.Value
	}
	if req.ExpiresAt.Set || req.ExpiresIn.Set {
		lifetime, err := parseLifetime(req.ExpiresAt, req.ExpiresIn)
		if err != nil {
			writeError(w, r, a.logger(), err)
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
	t, err := a.Service.Update(r.Context(), principal(r), r.PathValue("id"), in)
	a.answer(w, r, t, err)
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	t, err := a.Service.Revoke(r.Context(), principal(r), r.PathValue("id"))
	a.answer(w, r, t, err)
}

type rotateRequest struct {
	GracePeriodSeconds int64 `json:"gracePeriodSeconds"`
}

func (a *API) rotate(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	max := int64(token.MaxGracePeriod / time.Second)
	if req.GracePeriodSeconds < 0 || req.GracePeriodSeconds > max {
		writeError(w, r, a.logger(), token.Errorf(token.EINVALID, "gracePeriodSeconds: must be 0-%d", max))
		return
	}
	t, plaintext, err := a.Service.Rotate(r.Context(), principal(r), r.PathValue("id"), time.Duration(req.GracePeriodSeconds)*time.Second)
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	writeJSON(w, http.StatusOK, withSecret{view(t, a.Service.Now()), plaintext})
}

type verifyRequest struct {
	Token       string   `json:"token"`
	Permissions []string `json:"permissions"`
}

type verifyResponse struct {
	Valid       bool       `json:"valid"`
	Code        string     `json:"code"`
	Error       string     `json:"error,omitempty"`
	TokenID     string     `json:"tokenId,omitempty"`
	Owner       string     `json:"owner,omitempty"`
	Name        string     `json:"name,omitempty"`
	Permissions []string   `json:"permissions,omitempty"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	if req.Token == "" {
		writeError(w, r, a.logger(), token.Errorf(token.EINVALID, "token: required"))
		return
	}
	v, err := a.Service.Verify(r.Context(), req.Token, req.Permissions...)
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	if !v.Valid() {
		writeJSON(w, http.StatusOK, verifyResponse{Code: v.Code, Error: v.Message()})
		return
	}
	t := v.Token
	writeJSON(w, http.StatusOK, verifyResponse{
		Valid: true, Code: v.Code, TokenID: t.ID, Owner: t.Owner, Name: t.Name,
		Permissions: t.Permissions, ExpiresAt: timeOrNil(t.ExpiresAt),
	})
}

// answer writes a token record or the error.
func (a *API) answer(w http.ResponseWriter, r *http.Request, t *token.Token, err error) {
	if err != nil {
		writeError(w, r, a.logger(), err)
		return
	}
	writeJSON(w, http.StatusOK, view(t, a.Service.Now()))
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
