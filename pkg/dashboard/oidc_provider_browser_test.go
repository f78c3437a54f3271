package dashboard_test

// Single sign-on end to end: the page in Chromium against a real OpenID provider in the process
// (internal/oidctest, zitadel's certified op: discovery, a login form, the code flow with PKCE,
// RS256 id_tokens), and the server configured from the environment exactly as `apitokens serve`
// reads it (newSiteFromEnv: OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_ADMIN_CLAIM, OIDC_ADMIN_VALUE), so
// that the API itself judges the id_token the page sends: its signature, issuer, audience, the
// owner it names and the admin group.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/domstorage"
	"github.com/chromedp/chromedp"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/token"
)

const (
	ssoClientID   = "dashboard"       // the page's public client at the provider
	ssoGroups     = "groups"          // the provider's claim of a user's groups: OIDC_ADMIN_CLAIM
	ssoAdminGroup = "apitokens-admin" // OIDC_ADMIN_VALUE
	ssoSession    = "apitokens.oidc.session"
)

// ssoSite is a server with single sign-on configured, its provider, and the tokens of alice and
// bob minted by the service.
type ssoSite struct {
	*site
	idp   *oidctest.Provider
	alice []*token.Token
	bob   []*token.Token
}

// aliceTokens and bobTokens are the names of the tokens each owner has at the start.
var (
	aliceTokens = []string{"alice's ci", "alice's deploy"}
	bobTokens   = []string{"bob's backup", "bob's deploy"}
)

// newSSOSite starts a provider with the users alice, bob and root (in the admin group), and a
// server whose people sign in with it, registered at the provider with its origin + "/".
func newSSOSite(t *testing.T) *ssoSite {
	t.Helper()
	idp := oidctest.Start(t, oidctest.Config{
		Clients:     []oidctest.Client{{ID: ssoClientID}},
		GroupsClaim: ssoGroups,
		Users: []oidctest.User{
			{Subject: "alice", Username: "alice"},
			{Subject: "bob", Username: "bob"},
			{Subject: "root", Username: "root", Groups: []string{"staff", ssoAdminGroup}},
		},
	})
	s := newSiteFromEnv(t, map[string]string{
		app.EnvOIDCIssuer:     idp.Issuer(),
		app.EnvOIDCClientID:   ssoClientID,
		app.EnvOIDCAdminClaim: ssoGroups,
		app.EnvOIDCAdminValue: ssoAdminGroup,
	})
	idp.AddRedirectURI(ssoClientID, s.URL+"/")
	w := &ssoSite{site: s, idp: idp}
	for owner, names := range map[string][]string{"alice": aliceTokens, "bob": bobTokens} {
		for _, name := range names {
			tok, _ := s.mint(t, token.CreateInput{Owner: owner, Name: name, Permissions: []string{"deploy"}})
			if owner == "alice" {
				w.alice = append(w.alice, tok)
			} else {
				w.bob = append(w.bob, tok)
			}
		}
	}
	return w
}

// openWatched opens the dashboard in a tab whose storage writes on the site's origin are
// watched (watchStorage); at the end of the test it fails the test if any went to localStorage.
func (w *ssoSite) openWatched(t *testing.T) (*tab, *storageWatch) {
	t.Helper()
	p := w.open(t)
	sw := p.watchStorage()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if local := sw.local(); len(local) > 0 {
			t.Errorf("the page wrote to localStorage: %q", local)
		}
		if n := eval[int](p, `localStorage.length`); n != 0 {
			t.Errorf("localStorage holds %d items", n)
		}
	})
	return p, sw
}

// signInWithProvider signs in as a person does: "Sign in with single sign-on", then on the
// provider's login page the username in "Username" and "Sign in"; back on the dashboard, it waits
// until the page says whom it signed in as, owner.
func (p *tab) signInWithProvider(idp *oidctest.Provider, username, owner string) {
	p.t.Helper()
	p.click(p.named("button", "Sign in with single sign-on"))
	p.waitFor(fmt.Sprintf(`location.origin === %q && document.readyState === 'complete' && document.getElementById('username')`, idp.Issuer()))
	p.fill("Username", username)
	p.click(p.named("button", "Sign in"))
	p.waitFor(fmt.Sprintf(`location.origin === %q && document.getElementById('session') && !document.getElementById('session').hidden`, p.site.URL))
	if got := eval[string](p, `document.getElementById('session-owner').textContent`); got != owner {
		p.t.Fatalf("signed in as %q, want %q", got, owner)
	}
}

// rowNames returns the names of the tokens the list shows, sorted.
func (p *tab) rowNames() []string {
	p.t.Helper()
	names := eval[[]string](p, `[...document.querySelectorAll('#token-rows tr.token-row .details-toggle')].map((b) => b.textContent)`)
	slices.Sort(names)
	return names
}

// waitRows waits until the list shows exactly the tokens named want (and no other), and fails
// the test naming what it shows when it does not within 20 s.
func (p *tab) waitRows(want ...string) {
	p.t.Helper()
	want = slices.Sorted(slices.Values(want))
	var got []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if eval[string](p, `document.getElementById('tokens-table').getAttribute('aria-busy')`) != "false" {
			continue
		}
		if got = p.rowNames(); slices.Equal(got, want) {
			return
		}
	}
	p.t.Fatalf("the list shows %q, want exactly %q\nalert: %s", got, want, p.alertText())
}

// storageWatch records the items pages of a tab add to or change in sessionStorage and
// localStorage on one origin, from the browser's side (DevTools' DOMStorage events), through
// every navigation of the tab: to the provider and back included.
type storageWatch struct {
	origin string

	mu     sync.Mutex
	writes []storageWrite
}

type storageWrite struct {
	local      bool
	key, value string
}

// watchStorage starts recording the storage writes of the site's origin in p's tab.
func (p *tab) watchStorage() *storageWatch {
	p.t.Helper()
	w := &storageWatch{origin: p.site.URL}
	record := func(id *domstorage.StorageID, key, value string) {
		if id == nil || strings.TrimSuffix(id.SecurityOrigin, "/") != w.origin && strings.TrimSuffix(string(id.StorageKey), "/") != w.origin {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.writes = append(w.writes, storageWrite{local: id.IsLocalStorage, key: key, value: value})
	}
	if err := chromedp.Listen(p.ctx, func(ev any) {
		switch e := ev.(type) {
		case *domstorage.EventDomStorageItemAdded:
			record(e.StorageID, e.Key, e.NewValue)
		case *domstorage.EventDomStorageItemUpdated:
			record(e.StorageID, e.Key, e.NewValue)
		}
	}); err != nil {
		p.t.Fatalf("listen: %v", err)
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, domstorage.Enable, cdp.Empty{})
		return err
	}))
	// What the page may have written before the watch began is still there.
	if n := eval[int](p, `localStorage.length + sessionStorage.length`); n != 0 {
		p.t.Fatalf("the page stored %d items before signing in", n)
	}
	return w
}

// local returns the keys written to localStorage.
func (w *storageWatch) local() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var keys []string
	for _, wr := range w.writes {
		if wr.local {
			keys = append(keys, wr.key)
		}
	}
	return keys
}

// session returns the values written to sessionStorage under key.
func (w *storageWatch) session(key string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var values []string
	for _, wr := range w.writes {
		if !wr.local && wr.key == key {
			values = append(values, wr.value)
		}
	}
	return values
}

// jwtClaims decodes the payload of a JWT, unverified.
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// withClaims returns jwt with its payload changed by edit, and its header and signature kept:
// what a person who edits the page's storage can make.
func withClaims(t *testing.T, jwt string, edit func(map[string]any)) string {
	t.Helper()
	claims := jwtClaims(t, jwt)
	edit(claims)
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(jwt, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

// storedIDToken returns the id_token of the page's session in sessionStorage, failing the test
// unless the session is the only thing stored and holds only the id_token, its expiry and issuer.
func (p *tab) storedIDToken() string {
	p.t.Helper()
	stored := eval[map[string]string](p, `({...sessionStorage})`)
	if len(stored) != 1 || stored[ssoSession] == "" {
		p.t.Fatalf("sessionStorage holds %q, want the session only", slices.Sorted(maps.Keys(stored)))
	}
	var session struct {
		IDToken string  `json:"idToken"`
		Exp     float64 `json:"exp"`
		Issuer  string  `json:"issuer"`
	}
	dec := json.NewDecoder(strings.NewReader(stored[ssoSession]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&session); err != nil || session.IDToken == "" {
		p.t.Fatalf("the stored session is not {idToken, exp, issuer}: %v", err)
	}
	return session.IDToken
}

// fetchStatus calls the API from the page, as a script in it could, with bearer as the
// credential, and returns the status of the answer.
func (p *tab) fetchStatus(method, path, bearer string) int {
	p.t.Helper()
	return eval[int](p, fmt.Sprintf(`fetch(%q, {method: %q, headers: {Authorization: 'Bearer ' + %q, 'Content-Type': 'application/json'},
		body: %q === 'PATCH' ? '{"name":"taken"}' : undefined, cache: 'no-store'}).then((r) => r.status)`, path, method, bearer, method))
}

// TestSingleSignOnOwner: alice signs in at the provider's login page and lands on the dashboard as
// owner alice, seeing her tokens and none of bob's; a token she creates there is hers, and the
// audit trail names her as the person who made it. The page's CSP lets it reach the provider; no
// step writes to localStorage.
func TestSingleSignOnOwner(t *testing.T) {
	w := newSSOSite(t)

	resp, err := http.Get(w.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var connect []string
	for _, d := range strings.Split(resp.Header.Get("Content-Security-Policy"), ";") {
		if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
			connect = f[1:]
		}
	}
	if !slices.Equal(connect, []string{"'self'", w.idp.Issuer()}) {
		t.Errorf("connect-src %q, want 'self' and the provider's origin %s (discovery and token endpoint)", connect, w.idp.Issuer())
	}

	p, sw := w.openWatched(t)
	p.signInWithProvider(w.idp, "alice", "alice")
	if role := eval[string](p, `document.getElementById('session-role').textContent`); role != "" {
		t.Errorf("alice is shown as %q, want no role (she is not in the admin group)", role)
	}
	p.waitRows(aliceTokens...)
	idToken := p.storedIDToken()
	if sub := jwtClaims(t, idToken)["sub"]; sub != "alice" {
		t.Errorf("the stored id_token's sub is %v", sub)
	}
	if saved := sw.session(ssoSession); len(saved) != 1 || !strings.Contains(saved[0], idToken) {
		t.Errorf("the storage watch saw %d writes of the session: it did not follow the tab through the provider", len(saved))
	}
	var me []string
	for _, r := range w.got() {
		if r.path == "/me" {
			me = append(me, fmt.Sprintf("%d (the stored id_token: %t)", r.status, r.authorization == "Bearer "+idToken))
		}
	}
	if want := fmt.Sprintf("%d (the stored id_token: true)", http.StatusOK); len(me) != 1 || me[0] != want {
		t.Errorf("GET /me answered %q, want once %q", me, want)
	}

	p.click(p.named("DisclosureTriangle", "Create a token"))
	p.fill("Name", "alice's laptop")
	// Straight from typing a permission to the button, as a person does: the chip the field's
	// blur adds must not move the button between the press and the release.
	p.fill("Permissions", "read")
	p.click(p.named("button", "Create token"))
	p.waitFor(`document.getElementById('secret-dialog').open || document.querySelector('#create-form .form-error')?.textContent`)
	if msg := eval[string](p, `document.querySelector('#create-form .form-error')?.textContent ?? ''`); msg != "" {
		t.Fatalf("the create form says %q", msg)
	}
	dlg := p.dialog("New token")
	p.click(p.named("button", "Done").in(dlg))
	p.waitRows(append(slices.Clone(aliceTokens), "alice's laptop")...)

	ctx := context.Background()
	page, err := w.svc.List(ctx, admin(), token.ListInput{Owner: "alice", Status: "all"})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(page.Tokens, func(tok *token.Token) bool { return tok.Name == "alice's laptop" })
	if i < 0 || len(page.Tokens) != 3 {
		t.Fatalf("alice has %d tokens, the new one at %d", len(page.Tokens), i)
	}
	created := page.Tokens[i]
	if created.Owner != "alice" || created.CreatedBy != "" {
		t.Errorf("the token alice created: owner %q, createdBy %q; want alice's, made by no token", created.Owner, created.CreatedBy)
	}
	if bobs, err := w.svc.List(ctx, admin(), token.ListInput{Owner: "bob", Status: "all"}); err != nil || len(bobs.Tokens) != len(bobTokens) {
		t.Errorf("bob has %d tokens (%v), want %d", len(bobs.Tokens), err, len(bobTokens))
	}
	audit, err := w.svc.Audit(ctx, admin(), token.AuditInput{Owner: "alice", TokenID: created.ID})
	if err != nil || len(audit.Events) != 1 {
		t.Fatalf("audit of the new token: %d events (%v)", len(audit.Events), err)
	}
	if ev := audit.Events[0]; ev.Action != token.ActionCreate || ev.ActorSubject != "alice" || ev.ActorOwner != "alice" || ev.ActorTokenID != "" {
		t.Errorf("audit event %+v: want a create by the person alice", ev)
	}
	if strings.Contains(w.logs.String(), strings.Split(idToken, ".")[2]) {
		t.Error("the server's log shows the id_token")
	}
}

// TestSingleSignOnAdminGroup: a person in the admin group is an admin: the page says so, offers
// the owner filter, and shows alice's tokens for owner alice and bob's for owner bob.
func TestSingleSignOnAdminGroup(t *testing.T) {
	w := newSSOSite(t)
	p, _ := w.openWatched(t)
	p.signInWithProvider(w.idp, "root", "root")
	if role := eval[string](p, `document.getElementById('session-role').textContent`); role != "(admin)" {
		t.Errorf("root is shown as %q, want (admin)", role)
	}
	p.waitRows()
	for _, tc := range []struct {
		owner string
		want  []string
	}{{"alice", aliceTokens}, {"bob", bobTokens}} {
		p.fill("Owner", tc.owner)
		p.click(p.named("button", "Refresh"))
		p.waitRows(tc.want...)
	}
	if claims := jwtClaims(t, p.storedIDToken()); claims["sub"] != "root" {
		t.Errorf("the stored id_token's sub is %v", claims["sub"])
	}
}

// TestSingleSignOnCannotActAsAnother: what alice's session stores is her id_token only, and the
// API, not just the page, holds her to her owner: with it, bob's tokens answer 403 (his list) and
// 404 (each token); an id_token whose payload is edited to say bob, or to add the admin group,
// is refused 401 whether a script sends it or the page resumes it from sessionStorage, after
// which the page is signed out and has shown nothing of bob's.
func TestSingleSignOnCannotActAsAnother(t *testing.T) {
	w := newSSOSite(t)
	p, _ := w.openWatched(t)
	p.signInWithProvider(w.idp, "alice", "alice")
	p.waitRows(aliceTokens...)
	idToken := p.storedIDToken()
	claims := jwtClaims(t, idToken)
	if claims["sub"] != "alice" || claims[ssoGroups] != nil {
		t.Fatalf("alice's id_token claims %v", claims)
	}
	if stored := eval[string](p, `JSON.stringify({...sessionStorage})`); strings.Contains(stored, "bob") {
		t.Errorf("the session names bob: %s", stored)
	}

	bob := w.bob[0]
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/me", http.StatusOK},
		{"GET", "/tokens?owner=bob", http.StatusForbidden},
		{"GET", "/tokens/" + bob.ID, http.StatusNotFound},
		{"PATCH", "/tokens/" + bob.ID, http.StatusNotFound},
		{"DELETE", "/tokens/" + bob.ID, http.StatusNotFound},
	} {
		if got := p.fetchStatus(tc.method, tc.path, idToken); got != tc.want {
			t.Errorf("alice's id_token, %s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	if now := w.get(t, bob.ID); now.Name != bob.Name || !now.RevokedAt.IsZero() {
		t.Errorf("bob's token changed: %+v", now)
	}

	asBob := withClaims(t, idToken, func(c map[string]any) { c["sub"], c["preferred_username"] = "bob", "bob" })
	asAdmin := withClaims(t, idToken, func(c map[string]any) { c[ssoGroups] = []string{ssoAdminGroup} })
	for name, forged := range map[string]string{"sub bob": asBob, "admin group": asAdmin} {
		for _, path := range []string{"/me", "/tokens?owner=bob", "/tokens/" + bob.ID} {
			if got := p.fetchStatus("GET", path, forged); got != http.StatusUnauthorized {
				t.Errorf("id_token edited (%s), GET %s: %d, want 401", name, path, got)
			}
		}
	}

	// The page resumes the session it finds in sessionStorage: edited to be bob's, the API
	// refuses it and the page signs out.
	eval[bool](p, fmt.Sprintf(`(() => {
		const s = JSON.parse(sessionStorage.getItem(%q));
		s.idToken = %q;
		sessionStorage.setItem(%q, JSON.stringify(s));
		return true;
	})()`, ssoSession, asBob, ssoSession))
	p.do(chromedp.Reload())
	p.waitFor(`!document.getElementById('sign-in').hidden && document.getElementById('alert-text').textContent !== ''`)
	if alert := p.alertText(); !strings.Contains(alert, "signature") {
		t.Errorf("alert %q, want the API's refusal of the signature", alert)
	}
	if n := eval[int](p, `document.querySelectorAll('#token-rows tr').length + sessionStorage.length`); n != 0 {
		t.Errorf("after the refusal the page holds %d rows and stored items", n)
	}
	if !eval[bool](p, `document.getElementById('session').hidden && document.getElementById('dashboard').hidden`) {
		t.Error("after the refusal the page still shows a session")
	}
	var sent int
	for _, r := range w.got() {
		if r.authorization == "Bearer "+asBob {
			sent++
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s %s with the edited id_token: %d, want 401", r.method, r.path, r.status)
			}
		}
	}
	if sent < 4 { // three fetches above, and the page's GET /me after the reload
		t.Errorf("the server got the edited id_token %d times, want at least 4", sent)
	}
}
