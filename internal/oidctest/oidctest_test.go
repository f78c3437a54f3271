package oidctest_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/oidc"
)

const (
	clientID    = "dashboard"
	redirectURI = "http://127.0.0.1:1/callback" // never reached: the test stops at the redirect
)

func startProvider(t *testing.T) *oidctest.Provider {
	return oidctest.Start(t, oidctest.Config{
		Clients: []oidctest.Client{{ID: clientID, RedirectURIs: []string{redirectURI}}},
		Users: []oidctest.User{
			{Subject: "alice", Username: "alice"},
			{Subject: "root", Username: "root", Groups: []string{"apitokens-admin"}},
		},
	})
}

// TestCodeFlowWithPKCE signs a user in as a browser would, through the login form, and checks
// the ID token the token endpoint issues with the sign-in's own verifier.
func TestCodeFlowWithPKCE(t *testing.T) {
	p := startProvider(t)
	for _, tc := range []struct {
		name, user, hint string
		admin            bool
	}{
		{name: "login form", user: "alice"},
		{name: "login form, admin group", user: "root", admin: true},
		{name: "login_hint", hint: "alice", user: "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idToken := signIn(t, p, tc.user, tc.hint)
			v, err := oidc.New(oidc.Config{Issuer: p.Issuer(), Audience: clientID, AdminClaim: "groups", AdminValue: "apitokens-admin"})
			if err != nil {
				t.Fatal(err)
			}
			person, _, err := v.Verify(context.Background(), idToken)
			if err != nil {
				t.Fatalf("the provider's own ID token: %v", err)
			}
			if person.Owner != tc.user || person.Subject != tc.user || person.IsAdmin() != tc.admin {
				t.Errorf("signed in %+v; want owner and subject %s, admin %v", person, tc.user, tc.admin)
			}
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		authURL := authorizeURL(t, p, "s", "challenge-challenge-challenge-challenge-chal", "")
		loginURL := redirectOf(t, get(t, authURL))
		resp := post(t, loginURL, url.Values{"authRequestID": {requestID(t, loginURL)}, "username": {"mallory"}})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Unknown user") {
			t.Errorf("unknown user: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("PKCE is required and checked", func(t *testing.T) {
		code := authorize(t, p, "alice", "", challengeOf("right-verifier-right-verifier-right-verifier"))
		resp := post(t, p.Issuer()+"/oauth/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
			"client_id": {clientID}, "code_verifier": {"wrong-verifier-wrong-verifier-wrong-verifier"},
		})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token with a wrong code_verifier: %d, want 400", resp.StatusCode)
		}
	})
}

// signIn runs the authorization code flow with PKCE for user (through the form, or through
// login_hint when hint is set) and returns the ID token.
func signIn(t *testing.T, p *oidctest.Provider, user, hint string) string {
	t.Helper()
	verifier := "a-verifier-of-at-least-43-characters-" + user + "-0123456789"
	code := authorize(t, p, user, hint, challengeOf(verifier))
	resp := post(t, p.Issuer()+"/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {clientID}, "code_verifier": {verifier},
	})
	var out struct {
		IDToken     string `json:"id_token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.IDToken == "" {
		t.Fatalf("token endpoint: %d %v %+v", resp.StatusCode, err, out)
	}
	return out.IDToken
}

// authorize runs the browser's part of the flow and returns the code the redirect carries.
func authorize(t *testing.T, p *oidctest.Provider, user, hint, challenge string) string {
	t.Helper()
	resp := get(t, authorizeURL(t, p, "state-1", challenge, hint))
	loginURL := redirectOf(t, resp)
	if !strings.Contains(loginURL, "/login?authRequestID=") {
		t.Fatalf("authorize redirects to %s, want the login page", loginURL)
	}
	if hint != "" {
		resp = get(t, loginURL)
	} else {
		form := get(t, loginURL)
		body, _ := io.ReadAll(form.Body)
		for _, want := range []string{`<label for="username">Username</label>`, `<button type="submit">Sign in</button>`} {
			if !strings.Contains(string(body), want) {
				t.Fatalf("login page lacks %s:\n%s", want, body)
			}
		}
		resp = post(t, loginURL, url.Values{"authRequestID": {requestID(t, loginURL)}, "username": {user}})
	}
	for range 3 { // the login's redirect to op's callback, then op's to the client
		loc := redirectOf(t, resp)
		if strings.HasPrefix(loc, redirectURI) {
			u, _ := url.Parse(loc)
			if u.Query().Get("state") != "state-1" || u.Query().Get("code") == "" {
				t.Fatalf("redirect to the client: %s", loc)
			}
			return u.Query().Get("code")
		}
		resp = get(t, loc)
	}
	t.Fatal("no redirect to the client")
	return ""
}

func authorizeURL(t *testing.T, p *oidctest.Provider, state, challenge, hint string) string {
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"state": {state}, "nonce": {"n-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	if hint != "" {
		q.Set("login_hint", hint)
	}
	return p.Issuer() + "/authorize?" + q.Encode()
}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func requestID(t *testing.T, loginURL string) string {
	u, err := url.Parse(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("authRequestID")
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, u string) *http.Response {
	t.Helper()
	resp, err := noRedirects.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func post(t *testing.T, u string, form url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirects.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func redirectOf(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %d, want a redirect: %s", resp.Request.Method, resp.Request.URL, resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

// TestKeys: the JWK set publishes the current key and, after a rotation, both; a removed key
// is gone; Sign uses the current key's id; SetDown answers 503.
func TestKeys(t *testing.T) {
	p := startProvider(t)
	first := p.KeyID()
	second := p.RotateKey()
	if first == second || p.KeyID() != second {
		t.Fatalf("RotateKey: %s -> %s, current %s", first, second, p.KeyID())
	}
	if got := jwksKeyIDs(t, p); !slices.Equal(got, []string{first, second}) {
		t.Errorf("JWK set after a rotation: %v, want [%s %s]", got, first, second)
	}
	p.RemoveKey(first)
	if got := jwksKeyIDs(t, p); !slices.Equal(got, []string{second}) {
		t.Errorf("JWK set after RemoveKey: %v, want [%s]", got, second)
	}
	if n := p.KeySetRequests(); n != 2 {
		t.Errorf("KeySetRequests = %d, want 2", n)
	}
	p.SetDown(true)
	if resp := get(t, p.Issuer()+"/.well-known/openid-configuration"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("down: %d, want 503", resp.StatusCode)
	}
	p.SetDown(false)
	p.Close()
	if _, err := http.Get(p.Issuer() + "/.well-known/openid-configuration"); err == nil {
		t.Error("a closed provider still answers")
	}
}

func jwksKeyIDs(t *testing.T, p *oidctest.Provider) []string {
	t.Helper()
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(get(t, p.Issuer()+"/.well-known/openid-configuration").Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(get(t, doc.JWKSURI).Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.Kid)
	}
	return ids
}
