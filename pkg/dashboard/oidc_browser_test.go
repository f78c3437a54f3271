package dashboard_test

// The page's side of OpenID Connect sign-in, against an identity provider of the test's own
// (discovery, authorization and token endpoints, written to check what the page sends). Whether
// the API accepts the id_token is the server's business (its own tests, and the end-to-end cases
// against a real provider in oidc_provider_browser_test.go): here, what the page asks the provider
// for, what it checks of the answers, and what it sends the API.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/token"
)

// provider is an identity provider that follows the flow and records what it was sent. forge
// changes its answers: "state" sends another state back, "nonce" signs another nonce in.
type provider struct {
	*httptest.Server
	clientID string
	forge    string

	mu        sync.Mutex
	authorize url.Values // the query of the authorization request
	exchange  url.Values // the body of the token request
	idToken   string     // what it issued
}

func newProvider(t *testing.T, clientID, forge string) *provider {
	t.Helper()
	p := &provider{clientID: clientID, forge: forge}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token",
			"code_challenge_methods_supported": []string{"S256"},
		})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.authorize = q
		p.mu.Unlock()
		state := q.Get("state")
		if p.forge == "state" {
			state = "forged-state"
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=the-code&state="+url.QueryEscape(state), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.exchange = r.PostForm
		nonce := p.authorize.Get("nonce")
		if p.forge == "nonce" {
			nonce = "forged-nonce"
		}
		claims, _ := json.Marshal(map[string]any{
			"iss": p.URL, "aud": p.clientID, "sub": "alice", "nonce": nonce,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		})
		enc := base64.RawURLEncoding.EncodeToString
		p.idToken = enc([]byte(`{"alg":"RS256","kid":"k1"}`)) + "." + enc(claims) + "." + enc([]byte("signature"))
		json.NewEncoder(w).Encode(map[string]any{"id_token": p.idToken, "access_token": "opaque", "token_type": "Bearer", "expires_in": 3600})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *provider) seen() (authorize, exchange url.Values, idToken string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.authorize, p.exchange, p.idToken
}

// TestOIDCSignInFlow: "Sign in with single sign-on" sends the browser to the provider with an
// authorization code request with PKCE (S256) for the page's own origin, exchanges the code
// with the verifier that matches the challenge, and sends the id_token to the API as a bearer
// token; the code leaves the address bar, and nothing lands in localStorage.
func TestOIDCSignInFlow(t *testing.T) {
	idp := newProvider(t, "spa", "")
	s := newSite(t, dashboard.Config{OIDC: &dashboard.OIDC{Issuer: idp.URL, ClientID: "spa"}}, token.Config{})
	p := s.open(t)
	p.click(p.named("button", "Sign in with single sign-on"))
	p.waitFor(`location.search === '' && sessionStorage.getItem('apitokens.oidc.pending') === null && document.readyState === 'complete'`)

	var idToken string
	deadline := time.Now().Add(20 * time.Second)
	for idToken == "" && time.Now().Before(deadline) {
		_, _, issued := idp.seen()
		for _, r := range s.got() {
			if r.path == "/me" && issued != "" && r.authorization == "Bearer "+issued {
				idToken = issued
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if idToken == "" {
		t.Fatalf("the page never sent the id_token to GET /me; the server got %v; alert %q", s.got(), p.alertText())
	}
	authorize, exchange, _ := idp.seen()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "spa", "redirect_uri": s.URL + "/", "scope": "openid profile email",
		"code_challenge_method": "S256",
	} {
		if got := authorize.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	if len(authorize.Get("state")) < 22 || len(authorize.Get("nonce")) < 22 || authorize.Get("state") == authorize.Get("nonce") {
		t.Errorf("state %q and nonce %q: want two random values", authorize.Get("state"), authorize.Get("nonce"))
	}
	verifier := exchange.Get("code_verifier")
	sum := sha256.Sum256([]byte(verifier))
	if len(verifier) < 43 || base64.RawURLEncoding.EncodeToString(sum[:]) != authorize.Get("code_challenge") {
		t.Errorf("code_verifier %q does not match the challenge %q", verifier, authorize.Get("code_challenge"))
	}
	for k, want := range map[string]string{"grant_type": "authorization_code", "code": "the-code", "redirect_uri": s.URL + "/", "client_id": "spa"} {
		if got := exchange.Get(k); got != want {
			t.Errorf("token request %s = %q, want %q", k, got, want)
		}
	}
	if stored := eval[string](p, `JSON.stringify({...localStorage})`); stored != "{}" {
		t.Errorf("localStorage holds %s", stored)
	}
	if strings.Contains(p.everything(), verifier) {
		t.Error("the PKCE verifier outlived the sign-in")
	}
}

// TestOIDCAnswersChecked: an answer whose state is not the request's is refused before any code
// is exchanged; an id_token whose nonce is not the request's is refused and never sent to the API.
func TestOIDCAnswersChecked(t *testing.T) {
	for _, tc := range []struct{ forge, alert string }{
		{"state", "does not match its request (state)"},
		{"nonce", "was not issued for this sign-in (nonce)"},
	} {
		t.Run(tc.forge, func(t *testing.T) {
			idp := newProvider(t, "spa", tc.forge)
			s := newSite(t, dashboard.Config{OIDC: &dashboard.OIDC{Issuer: idp.URL, ClientID: "spa"}}, token.Config{})
			p := s.open(t)
			p.click(p.named("button", "Sign in with single sign-on"))
			p.waitFor(`location.search === '' && document.getElementById('alert-text').textContent !== ''`)
			if got := p.alertText(); !strings.Contains(got, tc.alert) {
				t.Errorf("alert %q, want it to say %q", got, tc.alert)
			}
			_, exchange, _ := idp.seen()
			if tc.forge == "state" && exchange != nil {
				t.Error("a code was exchanged for an answer of another state")
			}
			for _, r := range s.got() {
				if r.path == "/me" {
					t.Errorf("the page called GET /me (%q) after a refused sign-in", r.authorization)
				}
			}
			p.waitVisible(p.named("button", "Sign in with single sign-on"))
		})
	}
}
