package oidc_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/oidc"
	"github.com/apitokens/apitokens/pkg/token"
)

const audience = "dashboard"

// clock is a settable time for the verifier: key-set TTLs and refetch intervals without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newProvider(t *testing.T) *oidctest.Provider {
	return oidctest.Start(t, oidctest.Config{
		Clients: []oidctest.Client{{ID: audience, RedirectURIs: []string{"http://127.0.0.1:1/"}}},
		Users: []oidctest.User{
			{Subject: "alice", Username: "alice"},
			{Subject: "root", Username: "root", Groups: []string{"ops", "apitokens-admin"}},
			{Subject: "carol", Username: "carol", Claims: map[string]any{"role": "apitokens-admin"}},
		},
	})
}

func newVerifier(t *testing.T, p *oidctest.Provider, c *clock, edit ...func(*oidc.Config)) *oidc.Verifier {
	t.Helper()
	cfg := oidc.Config{Issuer: p.Issuer(), Audience: audience, AdminClaim: "groups", AdminValue: "apitokens-admin", Now: c.Now}
	for _, e := range edit {
		e(&cfg)
	}
	v, err := oidc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustVerify(t *testing.T, v *oidc.Verifier, jwt string) token.Principal {
	t.Helper()
	p, _, err := v.Verify(context.Background(), jwt)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return p
}

// refused checks that Verify refuses jwt as unauthorized with a message containing want, and
// that the message does not quote the token.
func refused(t *testing.T, v *oidc.Verifier, jwt, want string) {
	t.Helper()
	p, _, err := v.Verify(context.Background(), jwt)
	if token.ErrorCode(err) != token.EUNAUTHORIZED {
		t.Fatalf("Verify = %+v, %v; want unauthorized (%s)", p, err, want)
	}
	msg := token.ErrorMessage(err)
	if !strings.Contains(msg, want) {
		t.Errorf("message %q, want it to say %q", msg, want)
	}
	for _, part := range strings.Split(jwt, ".") {
		if len(part) > 8 && strings.Contains(msg, part) {
			t.Errorf("message %q quotes the token", msg)
		}
	}
}

func TestVerify(t *testing.T) {
	p := newProvider(t)
	c := &clock{now: time.Now()}
	v := newVerifier(t, p, c)
	now := c.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	set := func(k string, val any) func(map[string]any) { return func(m map[string]any) { m[k] = val } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }

	t.Run("valid: manage for the owner named by sub", func(t *testing.T) {
		got := mustVerify(t, v, p.IDToken(t, audience, "alice"))
		if got.Owner != "alice" || got.Subject != "alice" || got.TokenID != "" || !got.IsPerson() ||
			!got.CanManage("alice") || got.CanManage("bob") || got.IsAdmin() {
			t.Errorf("alice = %+v", got)
		}
	})
	t.Run("admin through a group of an array claim", func(t *testing.T) {
		got := mustVerify(t, v, p.IDToken(t, audience, "root"))
		if !got.IsAdmin() || !got.CanManage("bob") || got.Owner != "root" {
			t.Errorf("root = %+v, want an admin", got)
		}
	})
	t.Run("admin through a string claim", func(t *testing.T) {
		v := newVerifier(t, p, c, func(cfg *oidc.Config) { cfg.AdminClaim = "role" })
		if got := mustVerify(t, v, p.IDToken(t, audience, "carol")); !got.IsAdmin() {
			t.Errorf("carol = %+v, want an admin", got)
		}
		if got := mustVerify(t, v, p.IDToken(t, audience, "root")); got.IsAdmin() {
			t.Errorf("root without the role claim = %+v, want no admin", got)
		}
	})
	t.Run("no admin claim configured: nobody is admin", func(t *testing.T) {
		v := newVerifier(t, p, c, func(cfg *oidc.Config) { cfg.AdminClaim, cfg.AdminValue = "", "" })
		if got := mustVerify(t, v, p.IDToken(t, audience, "root")); got.IsAdmin() {
			t.Errorf("root = %+v, want no admin", got)
		}
	})
	t.Run("a group that merely contains the value is not it", func(t *testing.T) {
		tok := p.IDToken(t, audience, "mallory", set("groups", []string{"apitokens-admin-not", "x-apitokens-admin"}))
		if got := mustVerify(t, v, tok); got.IsAdmin() {
			t.Errorf("mallory = %+v, want no admin", got)
		}
	})
	t.Run("owner from another claim", func(t *testing.T) {
		v := newVerifier(t, p, c, func(cfg *oidc.Config) { cfg.OwnerClaim = "team" })
		got := mustVerify(t, v, p.IDToken(t, audience, "alice", set("team", "payments")))
		if got.Owner != "payments" || got.Subject != "alice" {
			t.Errorf("got %+v, want owner payments, subject alice", got)
		}
		refused(t, v, p.IDToken(t, audience, "alice"), "team claim is not an owner name")
	})
	t.Run("an Auth0 subject is an owner", func(t *testing.T) {
		if got := mustVerify(t, v, p.IDToken(t, audience, "auth0|64f1c0ffee")); got.Owner != "auth0|64f1c0ffee" {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("an owner claim that is no owner name", func(t *testing.T) {
		refused(t, v, p.IDToken(t, audience, "alice#TOKEN"), "sub claim is not an owner name")
		refused(t, v, p.IDToken(t, audience, strings.Repeat("a", 129)), "sub claim is not an owner name")
	})

	for _, tc := range []struct {
		name   string
		edit   func(map[string]any)
		refuse string // "" accepts
	}{
		{"expired", set("exp", at(-61*time.Second)), "expired"},
		{"expired within the leeway", set("exp", at(-59*time.Second)), ""},
		{"no exp", del("exp"), "no expiry"},
		{"nbf ahead", set("nbf", at(61*time.Second)), "not valid yet"},
		{"nbf ahead within the leeway", set("nbf", at(59*time.Second)), ""},
		{"iat ahead", set("iat", at(61*time.Second)), "issued in the future"},
		{"iat ahead within the leeway", set("iat", at(59*time.Second)), ""},
		{"no iat", del("iat"), "no issue time"},
		{"wrong aud", set("aud", []string{"another-client"}), "another audience"},
		{"aud as a string", set("aud", audience), ""},
		{"aud among others, azp ours", set("aud", []string{"api://other", audience}), ""},
		{"azp another client", set("azp", "another-client"), "another client"},
		{"wrong iss", set("iss", p.Issuer()+"/other"), "another issuer"},
		{"iss with a trailing slash", set("iss", p.Issuer()+"/"), "another issuer"},
		{"no sub", del("sub"), "no subject"},
		{"Cognito access token", func(m map[string]any) { m["token_use"] = "access"; m["client_id"] = audience }, "access token"},
		{"Cognito access token without aud", func(m map[string]any) { delete(m, "aud"); m["token_use"] = "access"; m["client_id"] = audience }, "another audience"},
		{"Cognito ID token", set("token_use", "id"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := p.IDToken(t, audience, "alice", tc.edit)
			if tc.refuse == "" {
				mustVerify(t, v, tok)
			} else {
				refused(t, v, tok, tc.refuse)
			}
		})
	}

	t.Run("typ at+jwt", func(t *testing.T) {
		claims := claimsOf(t, p.IDToken(t, audience, "alice"))
		refused(t, v, oidctest.SignWith(t, p.SigningKey(), claims, (&jose.SignerOptions{}).WithType("at+jwt")), "access token")
	})
}

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAlgorithms: only asymmetric signatures by the issuer's keys verify; none and HS256 are
// refused before any key is fetched.
func TestAlgorithms(t *testing.T) {
	p := newProvider(t)
	c := &clock{now: time.Now()}
	v := newVerifier(t, p, c)
	claims := claimsOf(t, p.IDToken(t, audience, "root"))

	t.Run("alg none", func(t *testing.T) {
		header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		payload, _ := json.Marshal(claims)
		tok := header + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
		if !token.LooksLikeJWT(tok) {
			t.Fatal("an alg none token must reach the verifier, to be refused there")
		}
		refused(t, v, tok, "not a JWT signed with an asymmetric algorithm")
		refused(t, v, tok+"c2lnbmF0dXJl", "not a JWT signed with an asymmetric algorithm")
	})
	t.Run("HS256 signed with the public key", func(t *testing.T) {
		pub := p.PublicKey()
		der, err := x509.MarshalPKIXPublicKey(pub.Key)
		if err != nil {
			t.Fatal(err)
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		jwk, _ := pub.MarshalJSON()
		for name, secret := range map[string][]byte{"PEM": pemKey, "DER": der, "JWK": jwk} {
			tok := oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: secret, KeyID: pub.KeyID}}, claims)
			t.Run(name, func(t *testing.T) { refused(t, v, tok, "not a JWT signed with an asymmetric algorithm") })
		}
	})
	if n := v.Fetches(); n != 0 {
		t.Errorf("refusing none and HS256 fetched the key set %d times, want 0", n)
	}
	t.Run("RS256 by another key under the provider's key id", func(t *testing.T) {
		forged := oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: oidctest.NewRSAKey(t), KeyID: p.KeyID()}}, claims)
		refused(t, v, forged, "signature does not verify")
	})
	t.Run("a token without kid is checked against every key", func(t *testing.T) {
		k := p.SigningKey()
		k.Key = k.Key.(jose.JSONWebKey).Key // a bare key: no kid in the header
		got := mustVerify(t, v, oidctest.SignWith(t, k, claims))
		if !got.IsAdmin() {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("too long", func(t *testing.T) {
		refused(t, v, strings.Repeat("a", token.MaxJWTLen)+".b.c", "longer than")
	})
}

// TestKeySet: unknown key ids make the verifier fetch the JWK set again, at most once per
// RefetchInterval; a rotation at the provider is picked up that way; a removed key stops
// working once the set is fetched again.
func TestKeySet(t *testing.T) {
	p := newProvider(t)
	c := &clock{now: time.Now()}
	v := newVerifier(t, p, c)
	mustVerify(t, v, p.IDToken(t, audience, "alice"))
	if v.Fetches() != 1 || p.KeySetRequests() != 1 {
		t.Fatalf("first verify: %d fetches, %d JWK set requests; want 1, 1", v.Fetches(), p.KeySetRequests())
	}
	for range 3 {
		mustVerify(t, v, p.IDToken(t, audience, "alice"))
	}
	if p.KeySetRequests() != 1 {
		t.Errorf("known keys: %d JWK set requests, want 1 (cached)", p.KeySetRequests())
	}

	claims := claimsOf(t, p.IDToken(t, audience, "alice"))
	foreign := func(kid string) string {
		return oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: oidctest.NewRSAKey(t), KeyID: kid}}, claims)
	}
	t.Run("unknown kid: refetched, then refused", func(t *testing.T) {
		c.Advance(oidc.DefaultRefetchInterval)
		refused(t, v, foreign("unknown-1"), "a key the issuer does not publish")
		if p.KeySetRequests() != 2 {
			t.Errorf("%d JWK set requests, want 2 (one refetch)", p.KeySetRequests())
		}
	})
	t.Run("refetches are rate-limited", func(t *testing.T) {
		for i := range 5 {
			refused(t, v, foreign("unknown-more-"+string(rune('a'+i))), "a key the issuer does not publish")
		}
		if p.KeySetRequests() != 2 {
			t.Errorf("%d JWK set requests after 5 more unknown kids within the interval, want still 2", p.KeySetRequests())
		}
		c.Advance(oidc.DefaultRefetchInterval)
		refused(t, v, foreign("unknown-2"), "a key the issuer does not publish")
		if p.KeySetRequests() != 3 {
			t.Errorf("%d JWK set requests once the interval passed, want 3", p.KeySetRequests())
		}
	})
	t.Run("key rotation: the new key is accepted after a refetch", func(t *testing.T) {
		old := p.KeyID()
		oldToken := p.IDToken(t, audience, "alice")
		p.RotateKey()
		newToken := p.IDToken(t, audience, "alice")
		refused(t, v, newToken, "a key the issuer does not publish") // within the interval: not yet
		c.Advance(oidc.DefaultRefetchInterval)
		mustVerify(t, v, newToken)
		mustVerify(t, v, oldToken) // still published
		p.RemoveKey(old)
		mustVerify(t, v, oldToken) // the cached set still holds it...
		c.Advance(oidc.DefaultKeysTTL)
		refused(t, v, oldToken, "a key the issuer does not publish") // ...until the set is fetched again
		mustVerify(t, v, newToken)
	})
}

// TestProviderDown: when the keys cannot be had, Verify fails with an error that is not
// unauthorized (every caller answers it as a failure, never an allow).
func TestProviderDown(t *testing.T) {
	unavailable := func(t *testing.T, v *oidc.Verifier, jwt string) {
		t.Helper()
		p, _, err := v.Verify(context.Background(), jwt)
		if err == nil || !errors.Is(err, oidc.ErrUnavailable) || token.ErrorCode(err) == token.EUNAUTHORIZED || p.Owner != "" {
			t.Fatalf("Verify = %+v, %v; want an error wrapping ErrUnavailable", p, err)
		}
		if strings.Contains(err.Error(), strings.Split(jwt, ".")[2]) {
			t.Errorf("the error quotes the token: %v", err)
		}
	}
	t.Run("503 before the first fetch", func(t *testing.T) {
		p := newProvider(t)
		c := &clock{now: time.Now()}
		v := newVerifier(t, p, c)
		p.SetDown(true)
		tok := p.IDToken(t, audience, "alice")
		unavailable(t, v, tok)
		unavailable(t, v, tok) // within the refetch interval: the last failure, no new request
		p.SetDown(false)
		c.Advance(oidc.DefaultRefetchInterval)
		mustVerify(t, v, tok)
	})
	t.Run("stopped, once the cached keys are due", func(t *testing.T) {
		p := newProvider(t)
		c := &clock{now: time.Now()}
		v := newVerifier(t, p, c)
		tok := p.IDToken(t, audience, "alice")
		mustVerify(t, v, tok)
		p.Close()
		mustVerify(t, v, tok) // the set in hand is still trusted
		c.Advance(oidc.DefaultKeysTTL)
		unavailable(t, v, tok)
	})
	t.Run("stopped, for a token with a new key id", func(t *testing.T) {
		p := newProvider(t)
		c := &clock{now: time.Now()}
		v := newVerifier(t, p, c)
		mustVerify(t, v, p.IDToken(t, audience, "alice"))
		p.RotateKey()
		tok := p.IDToken(t, audience, "alice")
		p.Close()
		c.Advance(oidc.DefaultRefetchInterval)
		unavailable(t, v, tok)
	})
}

// TestDocuments: what the verifier takes from the issuer's discovery document and JWK set.
func TestDocuments(t *testing.T) {
	p := newProvider(t)
	pub := p.PublicKey()
	good, _ := pub.MarshalJSON()
	tok := p.IDToken(t, audience, "alice")
	for _, tc := range []struct {
		name      string
		discovery func(issuer, jwks string) string
		keys      string
		ok        bool
	}{
		{
			name:      "unusable keys are left out, the good one kept",
			discovery: func(issuer, jwks string) string { return `{"issuer":"` + issuer + `","jwks_uri":"` + jwks + `"}` },
			keys: `{"keys":[{"kty":"oct","kid":"` + pub.KeyID + `","k":"c2VjcmV0"},{"kty":"weird","kid":"x"},` +
				strings.Replace(string(good), `"use":"sig"`, `"use":"enc"`, 1) + `,` + string(good) + `]}`,
			ok: true,
		},
		{
			name:      "only unusable keys",
			discovery: func(issuer, jwks string) string { return `{"issuer":"` + issuer + `","jwks_uri":"` + jwks + `"}` },
			keys:      `{"keys":[{"kty":"oct","kid":"` + pub.KeyID + `","k":"c2VjcmV0"}]}`,
		},
		{
			name:      "the discovery document names another issuer",
			discovery: func(_, jwks string) string { return `{"issuer":"https://evil.example","jwks_uri":"` + jwks + `"}` },
			keys:      `{"keys":[` + string(good) + `]}`,
		},
		{
			name: "jwks_uri not https",
			discovery: func(issuer, _ string) string {
				return `{"issuer":"` + issuer + `","jwks_uri":"http://keys.example/jwks"}`
			},
			keys: `{"keys":[` + string(good) + `]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var issuer string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/.well-known/openid-configuration":
					w.Write([]byte(tc.discovery(issuer, issuer+"/jwks")))
				case "/jwks":
					w.Write([]byte(tc.keys))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			issuer = srv.URL
			v, err := oidc.New(oidc.Config{Issuer: issuer, Audience: audience})
			if err != nil {
				t.Fatal(err)
			}
			claims := claimsOf(t, tok)
			claims["iss"] = issuer
			_, _, err = v.Verify(context.Background(), p.Sign(t, claims))
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, oidc.ErrUnavailable) {
				t.Errorf("Verify: %v; want ok %v", err, tc.ok)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		cfg oidc.Config
		ok  bool
	}{
		{oidc.Config{Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab", Audience: "x"}, true},
		{oidc.Config{Issuer: "https://tenant.auth0.com/", Audience: "x"}, true},
		{oidc.Config{Issuer: "http://127.0.0.1:8081", Audience: "x"}, true},
		{oidc.Config{Issuer: "http://localhost:8081/realms/a", Audience: "x"}, true},
		{oidc.Config{Issuer: "http://idp.example", Audience: "x"}, false},
		{oidc.Config{Issuer: "idp.example", Audience: "x"}, false},
		{oidc.Config{Issuer: "https://idp.example?x=1", Audience: "x"}, false},
		{oidc.Config{Issuer: "https://idp.example"}, false},
		{oidc.Config{Issuer: "https://idp.example", Audience: "x", AdminClaim: "groups"}, false},
		{oidc.Config{Issuer: "https://idp.example", Audience: "x", AdminValue: "admins"}, false},
	} {
		if _, err := oidc.New(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("New(%+v): %v; want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// TestConcurrentRefetch: requests that need the key set at once wait for one fetch.
func TestConcurrentRefetch(t *testing.T) {
	p := newProvider(t)
	c := &clock{now: time.Now()}
	v := newVerifier(t, p, c)
	mustVerify(t, v, p.IDToken(t, audience, "alice"))
	p.RotateKey()
	c.Advance(oidc.DefaultRefetchInterval)
	tok := p.IDToken(t, audience, "alice")
	before := p.KeySetRequests()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if _, _, err := v.Verify(context.Background(), tok); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := p.KeySetRequests() - before; got != 1 {
		t.Errorf("16 concurrent requests with a new key id: %d JWK set requests, want 1", got)
	}
}
