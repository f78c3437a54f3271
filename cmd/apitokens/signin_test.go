package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/token"
)

// serveWith runs `apitokens serve` on the memory store with the environment vars and returns its
// base URL, the admin token it printed, and its log (stderr).
func serveWith(t *testing.T, vars map[string]string) (base, admin string, log *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, func(k string) string { return vars[k] }, noInput(), &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	re := regexp.MustCompile(`(?m)^apitokens listening on (http://\S+)[\s\S]*^Admin token: (tok_\S+)$`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], m[2], &stderr
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
}

// TestServeSignIn: apitokens serve reads the sign-in and CORS variables: a person signs in with
// an ID token of the configured issuer (owner from sub, admin from a group), a page of an allowed
// origin may call the API, and the server's log never shows a JWT.
func TestServeSignIn(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{
		Clients: []oidctest.Client{{ID: "dashboard"}},
		Users:   []oidctest.User{{Subject: "root", Username: "root", Groups: []string{"apitokens-admin"}}},
	})
	const origin = "https://dashboard.example.com"
	base, admin, log := serveWith(t, map[string]string{
		app.EnvOIDCIssuer: p.Issuer(), app.EnvOIDCClientID: "dashboard",
		app.EnvOIDCAdminClaim: "groups", app.EnvOIDCAdminValue: "apitokens-admin",
		app.EnvCORSAllowedOrigins: origin + ",http://127.0.0.1:5173",
	})
	alice, root := p.IDToken(t, "dashboard", "alice"), p.IDToken(t, "dashboard", "root")
	expired := p.IDToken(t, "dashboard", "alice", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() })

	status, body := call(t, "POST", base+"/tokens", alice, `{"name":"alice's ci","permissions":["deploy"]}`)
	if status != http.StatusCreated || !strings.Contains(body, `"owner":"alice"`) || !strings.Contains(body, `"createdBy":null`) {
		t.Fatalf("alice creates: %d %s", status, body)
	}
	var created struct{ ID string }
	json.Unmarshal([]byte(body), &created)
	status, body = call(t, "POST", base+"/tokens", admin, `{"name":"bob's","owner":"bob"}`)
	var bobs struct{ ID string }
	if json.Unmarshal([]byte(body), &bobs); status != http.StatusCreated {
		t.Fatalf("admin creates for bob: %d %s", status, body)
	}
	if status, body = call(t, "GET", base+"/tokens/"+bobs.ID, alice, ""); status != http.StatusNotFound {
		t.Errorf("alice gets bob's token: %d %s, want 404", status, body)
	}
	if status, body = call(t, "GET", base+"/tokens/"+bobs.ID, root, ""); status != http.StatusOK {
		t.Errorf("root (admin group) gets bob's token: %d %s, want 200", status, body)
	}
	if status, body = call(t, "GET", base+"/tokens", expired, ""); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("an expired ID token: %d %s, want 401 naming the expiry", status, body)
	}
	if status, body = call(t, "GET", base+"/audit?tokenId="+created.ID, alice, ""); status != http.StatusOK || !strings.Contains(body, `"actorSubject":"alice"`) {
		t.Errorf("the audit trail: %d %s, want alice as the actor's subject", status, body)
	}

	t.Run("CORS", func(t *testing.T) {
		preflight := func(origin string) *http.Response {
			req, _ := http.NewRequest(http.MethodOptions, base+"/tokens/abc", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "PATCH")
			req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		ok := preflight(origin)
		if ok.StatusCode != http.StatusNoContent || ok.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(ok.Header.Get("Access-Control-Allow-Methods"), "PATCH") {
			t.Errorf("preflight from %s: %d %v", origin, ok.StatusCode, ok.Header)
		}
		refused := preflight("https://evil.example")
		if refused.Header.Get("Access-Control-Allow-Origin") != "" || refused.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight from another origin: %d %v", refused.StatusCode, refused.Header)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/tokens", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin || resp.Header.Get("Vary") != "Origin" {
			t.Errorf("GET from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
		// The example API is another team's API: apitokens' CORS settings are not its own.
		req, _ = http.NewRequest(http.MethodOptions, base+"/example/whoami", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("the example API answers CORS with apitokens' origins: %v", resp.Header)
		}
	})

	for _, jwt := range []string{alice, root, expired} {
		if sig := jwt[strings.LastIndex(jwt, ".")+1:]; strings.Contains(log.String(), sig) {
			t.Fatalf("the server log shows an ID token:\n%s", log.String())
		}
	}
	if !strings.Contains(log.String(), `route="GET /tokens" status=401`) {
		t.Errorf("the server log misses the refused sign-in:\n%s", log.String())
	}
}

// TestServeSignInConfigErrors: a half-configured sign-in or a bad origin stops serve at start,
// naming the variable.
func TestServeSignInConfigErrors(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		app.EnvOIDCIssuer:         {app.EnvOIDCIssuer: "http://idp.example", app.EnvOIDCClientID: "c"},
		app.EnvOIDCClientID:       {app.EnvOIDCIssuer: "https://idp.example"},
		app.EnvCORSAllowedOrigins: {app.EnvCORSAllowedOrigins: "https://dashboard.example.com/"},
	} {
		var stdout, stderr syncBuffer
		err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0"}, func(k string) string { return vars[k] }, noInput(), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", vars, err, name)
		}
	}
}

// TestAuditActorOfAPerson: apitokens audit names a person's change by their subject and owner.
func TestAuditActorOfAPerson(t *testing.T) {
	for _, tc := range []struct {
		e    token.AuditEvent
		want string
	}{
		{token.AuditEvent{ActorSubject: "auth0|64f1", ActorOwner: "auth0|64f1"}, "person auth0|64f1 (auth0|64f1)"},
		{token.AuditEvent{ActorTokenID: "M3eaEFxWyjmtrj7k", ActorOwner: "admin"}, "M3eaEFxWyjmtrj7k (admin)"},
	} {
		if got := actor(&tc.e); got != tc.want {
			t.Errorf("actor(%+v) = %q, want %q", tc.e, got, tc.want)
		}
	}
}
