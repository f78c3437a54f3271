// Package oidctest runs a real OpenID Connect provider in the test process: zitadel/oidc's
// OpenID-certified op package (github.com/zitadel/oidc/v3/pkg/op) on in-memory storage, serving
// discovery, its JWK set, and the authorization code flow with PKCE for public clients, plus a
// login page a headless browser can complete. Tests of the sign-in verify the tokens it issues,
// mint their own with its keys (expired, for another audience, ...), rotate its key and stop it.
//
// Start one per test; it listens on 127.0.0.1 and stops when the test ends:
//
//	p := oidctest.Start(t, oidctest.Config{
//		Clients: []oidctest.Client{{ID: "dashboard", RedirectURIs: []string{"http://127.0.0.1:8080/"}}},
//		Users: []oidctest.User{
//			{Subject: "alice", Username: "alice"},
//			{Subject: "root", Username: "root", Groups: []string{"apitokens-admin"}},
//		},
//	})
//	p.Issuer()                        // http://127.0.0.1:<port>: OIDC_ISSUER
//	p.IDToken(t, "dashboard", "alice") // an ID token as the token endpoint would issue it
//	p.Sign(t, claims)                 // any claims, signed with the current key (kid in the header)
//	oidctest.SignWith(t, key, claims) // any claims, any key and algorithm (HS256, a foreign key, ...)
//	p.RotateKey()                     // a new signing key; the old one stays in the JWK set
//	p.RemoveKey(kid)                  // drops a key from the JWK set
//	p.KeySetRequests()                // how often the JWK set was fetched
//	p.SetDown(true)                   // every endpoint answers 503 until SetDown(false)
//	p.Close()                         // stops listening (connection refused from then on)
//
// The browser flow (for a dashboard's sign-in), with client ID "dashboard" as registered:
//
//   - GET {issuer}/authorize?client_id=dashboard&redirect_uri=...&response_type=code&scope=openid
//     &state=...&nonce=...&code_challenge=...&code_challenge_method=S256 (PKCE is required of a
//     public client) redirects to the login page, {issuer}/login?authRequestID=....
//   - The login page is a form with a text field labelled "Username" (name "username") and a
//     button "Sign in"; submitting a known username signs that user in and redirects to
//     redirect_uri?code=...&state=.... An unknown username shows the form again with the
//     message "Unknown user". With login_hint=<username> on the authorize request, the login page
//     signs that user in at once, without the form.
//   - POST {issuer}/oauth/token with grant_type=authorization_code, code, redirect_uri,
//     client_id and code_verifier answers {"id_token": ..., "access_token": ..., ...}; the
//     endpoint answers CORS requests from any origin, as a browser page needs.
//
// ID tokens have iss = Issuer(), aud = [client id], azp = client id, sub, iat, exp (Config's
// IDTokenLifetime, 1 hour by default), auth_time, nonce, preferred_username, the user's groups
// in the claim Config.GroupsClaim ("groups" by default, an array of strings) and the user's
// extra Claims. They are signed RS256 with the current key, whose id is in the header.
// RedirectURIs may be added after Start (AddRedirectURI), for a dashboard whose address is
// known only once it listens.
package oidctest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"html/template"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Config describes the provider's clients and users.
type Config struct {
	Clients         []Client
	Users           []User
	GroupsClaim     string        // the claim holding a user's groups; "groups" when empty
	IDTokenLifetime time.Duration // 1 hour when zero
}

// Client is a public client (no secret; authorization code flow with PKCE).
type Client struct {
	ID           string
	RedirectURIs []string // exact URIs; http is allowed (the client is in development mode)
}

// User is a person who can sign in.
type User struct {
	Subject  string         // the "sub" of their tokens
	Username string         // what the login form takes, and login_hint
	Groups   []string       // in Config.GroupsClaim
	Claims   map[string]any // more claims of their ID tokens
}

// Provider is a running OpenID Connect provider.
type Provider struct {
	issuer  string
	cfg     Config
	storage *storage
	op      *op.Provider
	server  *http.Server

	down        atomic.Bool
	keyRequests atomic.Int64
	closeOnce   sync.Once
}

// Start starts a provider on 127.0.0.1 and stops it when tb ends. It fails tb if it cannot.
func Start(tb testing.TB, cfg Config) *Provider {
	tb.Helper()
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.IDTokenLifetime == 0 {
		cfg.IDTokenLifetime = time.Hour
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("oidctest: listen: %v", err)
	}
	p := &Provider{issuer: "http://" + ln.Addr().String(), cfg: cfg}
	p.storage = newStorage(p.issuer, cfg)
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		tb.Fatal(err)
	}
	p.op, err = op.NewProvider(&op.Config{CryptoKey: cryptoKey, CodeMethodS256: true}, p.storage,
		op.StaticIssuer(p.issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		tb.Fatalf("oidctest: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/login", p.login)
	mux.Handle("/", p.op)
	p.server = &http.Server{Handler: p.gate(mux), ReadHeaderTimeout: 10 * time.Second}
	go p.server.Serve(ln)
	tb.Cleanup(p.Close)
	return p
}

// gate answers 503 while the provider is down, and counts requests for the JWK set.
func (p *Provider) gate(next http.Handler) http.Handler {
	keys := p.op.KeysEndpoint().Relative()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.down.Load() {
			http.Error(w, "provider down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == keys {
			p.keyRequests.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// Issuer returns the provider's issuer URL, http://127.0.0.1:<port> (no trailing slash).
func (p *Provider) Issuer() string { return p.issuer }

// AddRedirectURI registers one more redirect URI for a client.
func (p *Provider) AddRedirectURI(clientID, uri string) {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	if c, ok := p.storage.clients[clientID]; ok && !slices.Contains(c.redirectURIs, uri) {
		c.redirectURIs = append(c.redirectURIs, uri)
	}
}

// SetDown makes every endpoint answer 503 (true) or serve again (false).
func (p *Provider) SetDown(down bool) { p.down.Store(down) }

// Close stops the provider: connections are refused from then on. It may be called twice.
func (p *Provider) Close() {
	p.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.server.Shutdown(ctx)
	})
}

// KeySetRequests returns how many times the JWK set was requested.
func (p *Provider) KeySetRequests() int { return int(p.keyRequests.Load()) }

// KeyID returns the id of the current signing key.
func (p *Provider) KeyID() string {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	return p.storage.current.id
}

// PublicKey returns the current signing key's public half as a JWK, as the JWK set shows it.
func (p *Provider) PublicKey() jose.JSONWebKey {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	k := p.storage.current
	return jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"}
}

// RotateKey makes a new RSA key the signing key and returns its id; the previous keys stay in
// the JWK set, as providers publish a retiring key until its tokens have expired.
func (p *Provider) RotateKey() string {
	k := newSigningKey()
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	p.storage.current = k
	p.storage.published = append(p.storage.published, k)
	return k.id
}

// RemoveKey takes the key with id kid out of the JWK set (it still signs if it is current).
func (p *Provider) RemoveKey(kid string) {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	p.storage.published = slices.DeleteFunc(p.storage.published, func(k *signingKey) bool { return k.id == kid })
}

// IDToken returns an ID token for the user with the given subject (which need not be a
// registered user) and client, as the token endpoint issues it, signed with the current key.
// Each edit may change its claims before it is signed, e.g. to backdate exp.
func (p *Provider) IDToken(tb testing.TB, clientID, subject string, edits ...func(claims map[string]any)) string {
	tb.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": p.issuer, "sub": subject, "aud": []string{clientID}, "azp": clientID,
		"iat": now.Unix(), "exp": now.Add(p.cfg.IDTokenLifetime).Unix(), "auth_time": now.Unix(),
	}
	if u, ok := p.storage.userBySubject(subject); ok {
		p.storage.addUserClaims(claims, u)
	}
	for _, edit := range edits {
		edit(claims)
	}
	return p.Sign(tb, claims)
}

// Sign signs claims with the current key (RS256, its id in the header) and returns the JWT.
func (p *Provider) Sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return SignWith(tb, p.SigningKey(), claims)
}

// SigningKey returns the current signing key (private, with its id), for SignWith with other
// header options.
func (p *Provider) SigningKey() jose.SigningKey {
	p.storage.mu.Lock()
	defer p.storage.mu.Unlock()
	k := p.storage.current
	return jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}}
}

// SignWith signs claims with any key and algorithm go-jose supports (e.g. a key the provider
// does not publish, or HS256 with a secret) and returns the JWT in compact form. A
// jose.JSONWebKey as key puts its KeyID in the header.
func SignWith(tb testing.TB, key jose.SigningKey, claims map[string]any, opts ...*jose.SignerOptions) string {
	tb.Helper()
	o := (&jose.SignerOptions{}).WithType("JWT")
	if len(opts) > 0 {
		o = opts[0]
	}
	signer, err := jose.NewSigner(key, o)
	if err != nil {
		tb.Fatalf("oidctest: signer: %v", err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		tb.Fatalf("oidctest: sign: %v", err)
	}
	return s
}

// NewRSAKey returns a fresh 2048-bit RSA key, e.g. one the provider does not publish.
func NewRSAKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// loginPage is the provider's login form: a labelled username field and a "Sign in" button.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - oidctest</title></head>
<body><main><h1>Sign in</h1>
{{if .Error}}<p role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="authRequestID" value="{{.ID}}">
<label for="username">Username</label> <input id="username" name="username" autocomplete="username" autofocus>
<button type="submit">Sign in</button>
</form></main></body></html>
`))

// login is the login UI op redirects to (Client.LoginURL): GET shows the form, or signs the
// login_hint's user in; POST signs the named user in. Either then redirects to op's callback,
// which redirects to the client with a code.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := r.FormValue("authRequestID")
	hint, ok := p.storage.loginHint(id)
	if !ok {
		http.Error(w, "unknown authorization request", http.StatusBadRequest)
		return
	}
	username := hint
	if r.Method == http.MethodPost {
		username = r.FormValue("username")
	}
	if username != "" && p.storage.signIn(id, username) {
		ctx := op.ContextWithIssuer(r.Context(), p.issuer)
		http.Redirect(w, r, op.AuthCallbackURL(p.op)(ctx, id), http.StatusFound)
		return
	}
	data := struct{ ID, Error string }{ID: id}
	if r.Method == http.MethodPost {
		data.Error = "Unknown user"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = loginPage.Execute(w, data)
}
