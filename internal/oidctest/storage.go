package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the provider's op.Storage, in memory: clients, users, authorization requests and
// their codes, access tokens, and signing keys. It issues no refresh tokens and knows no
// confidential clients.
type storage struct {
	issuer string
	cfg    Config

	mu           sync.Mutex
	clients      map[string]*client
	authRequests map[string]*authRequest
	codes        map[string]string // code -> authorization request id
	tokens       map[string]*accessToken
	current      *signingKey
	published    []*signingKey
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func newStorage(issuer string, cfg Config) *storage {
	s := &storage{
		issuer: issuer, cfg: cfg,
		clients:      map[string]*client{},
		authRequests: map[string]*authRequest{},
		codes:        map[string]string{},
		tokens:       map[string]*accessToken{},
		current:      newSigningKey(),
	}
	s.published = []*signingKey{s.current}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = &client{id: c.ID, redirectURIs: slices.Clone(c.RedirectURIs), lifetime: cfg.IDTokenLifetime}
	}
	return s
}

func (s *storage) userBySubject(sub string) (User, bool) {
	i := slices.IndexFunc(s.cfg.Users, func(u User) bool { return u.Subject == sub })
	if i < 0 {
		return User{}, false
	}
	return s.cfg.Users[i], true
}

// addUserClaims puts the user's claims into an ID token's.
func (s *storage) addUserClaims(claims map[string]any, u User) {
	claims["preferred_username"] = u.Username
	if u.Groups != nil {
		claims[s.cfg.GroupsClaim] = slices.Clone(u.Groups)
	}
	for k, v := range u.Claims {
		claims[k] = v
	}
}

// loginHint returns the login_hint of the authorization request id; false if there is none.
func (s *storage) loginHint(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok {
		return "", false
	}
	return r.loginHint, true
}

// signIn completes the authorization request id as the user with that username; false if there
// is no such request or user.
func (s *storage) signIn(id, username string) bool {
	i := slices.IndexFunc(s.cfg.Users, func(u User) bool { return u.Username == username })
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok || i < 0 {
		return false
	}
	r.subject, r.done, r.authTime = s.cfg.Users[i].Subject, true, time.Now()
	return true
}

// signingKey is an RSA key of the provider, signing (op.SigningKey) and published (op.Key).
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func newSigningKey() *signingKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return &signingKey{id: rand.Text()[:16], key: k}
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *signingKey) Use() string                                 { return "sig" }
func (k *signingKey) ID() string                                  { return k.id }

// Key is the private key to sign with (op.SigningKey).
func (k *signingKey) Key() any { return k.key }

// publicKey is a signing key as the JWK set publishes it (op.Key).
type publicKey struct{ *signingKey }

func (k publicKey) Key() any { return &k.key.PublicKey }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]op.Key, len(s.published))
	for i, k := range s.published {
		keys[i] = publicKey{k}
	}
	return keys, nil
}

// client is a public client in development mode (http redirect URIs allowed).
type client struct {
	id           string
	redirectURIs []string
	lifetime     time.Duration
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.redirectURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeUserAgent }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType                                 { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string                                    { return "/login?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType                          { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration                               { return c.lifetime }
func (c *client) DevMode() bool                                                { return true }
func (c *client) IsScopeAllowed(string) bool                                   { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool                         { return false }
func (c *client) ClockSkew() time.Duration                                     { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string     { return keep }
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string { return keep }

func keep(scopes []string) []string { return scopes }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	cp := *c
	cp.redirectURIs = slices.Clone(c.redirectURIs)
	return &cp, nil
}

func (s *storage) AuthorizeClientIDSecret(context.Context, string, string) error {
	return errors.New("public clients only: no client secrets")
}

// authRequest is an authorization request, from /authorize until its code is redeemed.
type authRequest struct {
	id, clientID, redirectURI, state, nonce, loginHint string
	scopes                                             []string
	responseType                                       oidc.ResponseType
	responseMode                                       oidc.ResponseMode
	challenge                                          *oidc.CodeChallenge

	subject  string
	done     bool
	authTime time.Time
}

func (r *authRequest) GetID() string                         { return r.id }
func (r *authRequest) GetACR() string                        { return "" }
func (r *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (r *authRequest) GetAudience() []string                 { return []string{r.clientID} }
func (r *authRequest) GetAuthTime() time.Time                { return r.authTime }
func (r *authRequest) GetClientID() string                   { return r.clientID }
func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.challenge }
func (r *authRequest) GetNonce() string                      { return r.nonce }
func (r *authRequest) GetRedirectURI() string                { return r.redirectURI }
func (r *authRequest) GetResponseType() oidc.ResponseType    { return r.responseType }
func (r *authRequest) GetResponseMode() oidc.ResponseMode    { return r.responseMode }
func (r *authRequest) GetScopes() []string                   { return r.scopes }
func (r *authRequest) GetState() string                      { return r.state }
func (r *authRequest) GetSubject() string                    { return r.subject }
func (r *authRequest) Done() bool                            { return r.done }

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired()
	}
	r := &authRequest{
		id: rand.Text(), clientID: req.ClientID, redirectURI: req.RedirectURI, state: req.State, nonce: req.Nonce,
		loginHint: req.LoginHint, scopes: req.Scopes, responseType: req.ResponseType, responseMode: req.ResponseMode,
	}
	if req.CodeChallenge != "" {
		r.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authRequests[r.id] = r
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok {
		return nil, errors.New("authorization request not found")
	}
	return r, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or used")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// accessToken is an opaque access token, good for the userinfo endpoint.
type accessToken struct {
	id, subject, clientID string
	scopes                []string
	expires               time.Time
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	t := &accessToken{id: rand.Text(), subject: req.GetSubject(), scopes: req.GetScopes(), expires: time.Now().Add(s.cfg.IDTokenLifetime)}
	if r, ok := req.(*authRequest); ok {
		t.clientID = r.clientID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.id] = t
	return t.id, t.expires, nil
}

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("no refresh tokens")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, id, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
	return nil
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the claims of an ID token: the user's username, groups and extra
// claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	s.setUserinfo(info, req.GetSubject())
	return nil
}

func (s *storage) setUserinfo(info *oidc.UserInfo, subject string) {
	info.Subject = subject
	u, ok := s.userBySubject(subject)
	if !ok {
		return
	}
	claims := map[string]any{}
	s.addUserClaims(claims, u)
	for k, v := range claims {
		info.AppendClaims(k, v)
	}
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) {
		return errors.New("access token invalid or expired")
	}
	s.setUserinfo(info, t.subject)
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || time.Now().After(t.expires) || t.clientID != clientID {
		return errors.New("access token invalid")
	}
	resp.Subject, resp.ClientID, resp.Scope = t.subject, t.clientID, t.scopes
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no JWT profile clients")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("no JWT profile clients")
}

func (s *storage) Health(context.Context) error { return nil }
