package app_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/oidc"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

const dashboard = "dashboard"

// logBuffer collects log lines, safe for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// managementPath is one way a management call reaches the functions: the local server, or API
// Gateway's management authorizer then a Lambda function. call answers the status and body a
// client gets; pattern is the route (httpapi.Routes) the request is for.
type managementPath struct {
	name string
	call func(t *testing.T, pattern, target, bearer, body string) (int, string)
	// refusedStatus is the status of a refused credential: 401 locally, 403 from API Gateway
	// (an HTTP API authorizer's "no").
	refusedStatus int
}

// signInWorld is a deployment with sign-in on: a provider, a store with alice's and bob's
// tokens and an admin token, and both paths, each with its own verifier on one clock.
type signInWorld struct {
	provider  *oidctest.Provider
	clock     *storetest.Clock
	svc       *token.Service
	admin     string
	aliceID   string
	bobID     string
	logs      *logBuffer
	paths     []managementPath
	verifiers []*oidc.Verifier
}

func newSignInWorld(t *testing.T) *signInWorld {
	t.Helper()
	w := &signInWorld{clock: storetest.NewClockAt(time.Now()), logs: &logBuffer{}}
	w.provider = oidctest.Start(t, oidctest.Config{
		Clients: []oidctest.Client{{ID: dashboard, RedirectURIs: []string{"http://127.0.0.1:1/"}}},
		Users: []oidctest.User{
			{Subject: "alice", Username: "alice"},
			{Subject: "root", Username: "root", Groups: []string{"apitokens-admin"}},
		},
	})
	store := memstore.New(w.clock.Now)
	svc, err := token.NewService(store, token.Config{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	cli := token.Principal{Owner: "ops", Permissions: []string{token.PermAdmin}}
	_, w.admin, err = svc.Create(context.Background(), cli, token.CreateInput{Name: "root", Permissions: []string{token.PermAdmin, token.PermManage}})
	if err != nil {
		t.Fatal(err)
	}
	for owner, id := range map[string]*string{"alice": &w.aliceID, "bob": &w.bobID} {
		tok, _, err := svc.Create(context.Background(), cli, token.CreateInput{Owner: owner, Name: owner + "'s deploy", Permissions: []string{"deploy"}})
		if err != nil {
			t.Fatal(err)
		}
		*id = tok.ID
	}
	logger := slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	newAuthorizer := func() *authorizer.Authorizer {
		cfg, err := authorizer.ConfigFromEnv(func(k string) string {
			if k == authorizer.EnvRole {
				return authorizer.RoleManagement
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := oidc.New(oidc.Config{Issuer: w.provider.Issuer(), Audience: dashboard, AdminClaim: "groups", AdminValue: "apitokens-admin", Now: w.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		w.verifiers = append(w.verifiers, v)
		cfg.People, cfg.Logger, cfg.Now = v, logger, w.clock.Now
		return authorizer.New(store, cfg)
	}

	// apitokens serve: the management authorizer's code authenticates each request.
	local := &httpapi.API{Service: svc, Authenticate: newAuthorizer().AuthenticateRequest, Logger: logger}
	localHandler := local.Handler()
	w.paths = append(w.paths, managementPath{name: "local server", refusedStatus: http.StatusUnauthorized,
		call: func(t *testing.T, _, target, bearer, body string) (int, string) {
			method, path, _ := strings.Cut(target, " ")
			r := httptest.NewRequest(method, path, strings.NewReader(body))
			r.RemoteAddr = "203.0.113.9:4711"
			r.Header.Set("Authorization", "Bearer "+bearer)
			rec := httptest.NewRecorder()
			localHandler.ServeHTTP(rec, r)
			return rec.Code, rec.Body.String()
		}})

	// AWS: the management authorizer answers API Gateway's event; on isAuthorized the function
	// gets its context, read by AuthorizerContext, as every route function does.
	lambdaAuthz := newAuthorizer()
	functions := &httpapi.API{Service: svc, Authenticate: app.AuthorizerContext, Logger: logger}
	w.paths = append(w.paths, managementPath{name: "management authorizer and function", refusedStatus: http.StatusForbidden,
		call: func(t *testing.T, pattern, target, bearer, body string) (int, string) {
			method, rawURL, _ := strings.Cut(target, " ")
			u, _ := url.Parse(rawURL)
			headers := map[string]string{"authorization": "Bearer " + bearer}
			httpCtx := events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: u.Path, SourceIP: "203.0.113.9"}
			resp, err := lambdaAuthz.HandleHTTP(context.Background(), events.APIGatewayV2CustomAuthorizerV2Request{
				Version: "2.0", Type: "REQUEST", RouteKey: pattern, RawPath: u.Path, RawQueryString: u.RawQuery, Headers: headers,
				RouteArn:       "arn:aws:execute-api:eu-west-1:123456789012:abc123/$default/" + method + u.Path,
				RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: httpCtx, RequestID: "req-" + t.Name()},
			})
			if err != nil {
				return http.StatusInternalServerError, `{"message":"Internal Server Error"}`
			}
			simple := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
			if !simple.IsAuthorized {
				return http.StatusForbidden, `{"message":"Forbidden"}`
			}
			h, ok := functions.RouteHandler(pattern)
			if !ok {
				t.Fatalf("no route %s", pattern)
			}
			out, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: pattern, RawPath: u.Path, RawQueryString: u.RawQuery, Headers: headers, Body: body,
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					HTTP: httpCtx, RequestID: "req-1", Authorizer: lambdaAuthorizer(simple.Context),
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			return out.StatusCode, out.Body
		}})
	return w
}

// TestSignInPaths: a person's ID token, on the local server and through the management
// authorizer and a Lambda function: the same rules, the same answers (but for API Gateway's own
// 403 for a refused credential), and no JWT in any log.
func TestSignInPaths(t *testing.T) {
	w := newSignInWorld(t)
	p := w.provider
	var presented []string
	jwt := func(subject string, edits ...func(map[string]any)) string {
		s := p.IDToken(t, dashboard, subject, edits...)
		presented = append(presented, s)
		return s
	}
	now := w.clock.Now()
	claims := func(subject string) map[string]any {
		var m map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(strings.Split(p.IDToken(t, dashboard, subject), ".")[1])
		json.Unmarshal(b, &m)
		return m
	}

	for i, path := range w.paths {
		t.Run(path.name, func(t *testing.T) {
			call := func(pattern, target, bearer, body string) (int, string) {
				t.Helper()
				return path.call(t, pattern, target, bearer, body)
			}
			expect := func(what string, status int, body string, wantStatus int, wantIn ...string) {
				t.Helper()
				if status != wantStatus {
					t.Errorf("%s: %d %s; want %d", what, status, body, wantStatus)
					return
				}
				for _, s := range wantIn {
					if !strings.Contains(body, s) {
						t.Errorf("%s: %s; want it to contain %s", what, body, s)
					}
				}
			}
			alice := jwt("alice")

			status, body := call("GET /tokens", "GET /tokens?status=all", alice, "")
			expect("alice lists", status, body, 200, `"owner":"alice"`, w.aliceID)
			if strings.Contains(body, w.bobID) || strings.Contains(body, `"owner":"ops"`) {
				t.Errorf("alice's list shows another owner's token: %s", body)
			}
			status, body = call("GET /tokens/{id}", "GET /tokens/"+w.bobID, alice, "")
			expect("alice gets bob's token", status, body, 404, `"code":"not_found"`)
			status, body = call("PATCH /tokens/{id}", "PATCH /tokens/"+w.bobID, alice, `{"enabled":false}`)
			expect("alice disables bob's token", status, body, 404)
			status, body = call("DELETE /tokens/{id}", "DELETE /tokens/"+w.bobID, alice, "")
			expect("alice revokes bob's token", status, body, 404)
			status, body = call("GET /tokens", "GET /tokens?owner=bob", alice, "")
			expect("alice lists bob's tokens", status, body, 403)
			status, body = call("GET /tokens/{id}", "GET /tokens/"+w.aliceID, alice, "")
			expect("alice gets her own token", status, body, 200, w.aliceID)
			status, body = call("GET /tokens/self", "GET /tokens/self", alice, "")
			expect("a person has no token to introspect", status, body, 404, "signed in as a person")

			// A person has no ceiling but their owner: a token without limits, created by nobody.
			status, body = call("POST /tokens", "POST /tokens", alice, `{"name":"ci","permissions":["manage","deploy:*"],"expiresAt":null}`)
			expect("alice creates", status, body, 201, `"owner":"alice"`, `"createdBy":null`, `"expiresAt":null`, `"rateLimit":null`)
			var created struct{ ID string }
			json.Unmarshal([]byte(body), &created)
			status, body = call("POST /tokens", "POST /tokens", alice, `{"name":"x","owner":"bob"}`)
			expect("alice creates for bob", status, body, 403)
			status, body = call("POST /tokens", "POST /tokens", alice, `{"name":"x","permissions":["admin"]}`)
			expect("alice grants admin", status, body, 403)
			status, body = call("GET /audit", "GET /audit?tokenId="+created.ID, alice, "")
			expect("the audit trail names the person", status, body, 200, `"actorSubject":"alice"`, `"actorTokenId":null`, `"actorOwner":"alice"`)

			root := jwt("root")
			status, body = call("GET /tokens", "GET /tokens?owner=bob", root, "")
			expect("an admin by group lists bob's tokens", status, body, 200, w.bobID)
			status, body = call("GET /tokens/{id}", "GET /tokens/"+w.bobID, root, "")
			expect("an admin by group gets bob's token", status, body, 200)
			status, body = call("POST /tokens", "POST /tokens", root, `{"name":"for bob","owner":"bob","permissions":["admin"]}`)
			expect("an admin creates an admin token for bob", status, body, 201, `"owner":"bob"`)

			status, body = call("GET /tokens", "GET /tokens", w.admin, "")
			expect("an apitokens token still works", status, body, 200)

			hs256 := func() string {
				pub := p.PublicKey()
				der, _ := x509.MarshalPKIXPublicKey(pub.Key)
				return oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: jose.JSONWebKey{Key: der, KeyID: pub.KeyID}}, claims("root"))
			}
			none := func() string {
				b, _ := json.Marshal(claims("root"))
				return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
			}
			for _, c := range []struct {
				name, jwt, why string
			}{
				{"expired", jwt("root", func(m map[string]any) { m["exp"] = now.Add(-2 * time.Minute).Unix() }), "expired"},
				{"wrong aud", jwt("root", func(m map[string]any) { m["aud"] = "another-client" }), "another audience"},
				{"wrong iss", jwt("root", func(m map[string]any) { m["iss"] = "https://evil.example" }), "another issuer"},
				{"alg none", none(), "asymmetric"},
				{"HS256 signed with the public key", hs256(), "asymmetric"},
				{"a JWT with a made-up signature", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln", "signature does not verify"},
			} {
				presented = append(presented, c.jwt)
				status, body := call("GET /tokens", "GET /tokens?owner=bob", c.jwt, "")
				want := []string{}
				if path.refusedStatus == http.StatusUnauthorized {
					want = append(want, c.why)
				}
				expect(c.name, status, body, path.refusedStatus, want...)
			}

			// Unknown key id: one refetch of the JWK set, then refused; more within the interval
			// cost no request.
			w.clock.Advance(oidc.DefaultRefetchInterval)
			foreign := func() string {
				s := oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: oidctest.NewRSAKey(t), KeyID: "not-published"}}, claims("root"))
				presented = append(presented, s)
				return s
			}
			before := p.KeySetRequests()
			status, body = call("GET /tokens", "GET /tokens", foreign(), "")
			expect("unknown kid", status, body, path.refusedStatus)
			status, body = call("GET /tokens", "GET /tokens", foreign(), "")
			expect("unknown kid again", status, body, path.refusedStatus)
			if got := p.KeySetRequests() - before; got != 1 {
				t.Errorf("two unknown kids within the refetch interval: %d JWK set requests, want 1", got)
			}

			// Key rotation at the provider: the new key is taken once a refetch is due.
			p.RotateKey()
			rotated := jwt("alice")
			status, body = call("GET /tokens", "GET /tokens", rotated, "")
			expect("a new key within the refetch interval", status, body, path.refusedStatus)
			w.clock.Advance(oidc.DefaultRefetchInterval)
			status, body = call("GET /tokens", "GET /tokens", rotated, "")
			expect("a new key after the refetch", status, body, 200)

			// Provider down once the keys are due: fails closed, as an error (500), never a yes.
			p.SetDown(true)
			w.clock.Advance(oidc.DefaultKeysTTL)
			status, body = call("GET /tokens", "GET /tokens", rotated, "")
			expect("provider down", status, body, 500)
			p.SetDown(false)
			w.clock.Advance(oidc.DefaultRefetchInterval)
			status, body = call("GET /tokens", "GET /tokens", rotated, "")
			expect("provider back", status, body, 200)
			if w.verifiers[i].Fetches() == 0 {
				t.Error("this path's verifier never fetched the keys")
			}
		})
	}

	logs := w.logs.String()
	if !strings.Contains(logs, "sign-in refused") || !strings.Contains(logs, "sign-in could not be checked") {
		t.Errorf("the logs miss the refusals and the outage:\n%s", logs)
	}
	for _, s := range presented {
		for _, part := range strings.Split(s, ".") {
			if len(part) > 16 && strings.Contains(logs, part) {
				t.Fatalf("a log shows a JWT presented (%s...):\n%s", s[:20], logs)
			}
		}
	}
}

// TestSignInWiring: the management authorizer as its function builds it (NewAuthorizerWithStore)
// signs people in when OIDC_ISSUER is set, with OIDC_CLIENT_ID as the audience; a consumer
// authorizer refuses sign-in settings at init.
func TestSignInWiring(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{Clients: []oidctest.Client{{ID: dashboard}}})
	vars := map[string]string{authorizer.EnvRole: authorizer.RoleManagement, app.EnvOIDCIssuer: p.Issuer(), app.EnvOIDCClientID: dashboard}
	a, err := app.NewAuthorizerWithStore(memstore.New(nil), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	event := func(jwt string) events.APIGatewayV2CustomAuthorizerV2Request {
		return events.APIGatewayV2CustomAuthorizerV2Request{
			Version: "2.0", Type: "REQUEST", RouteKey: "GET /tokens", Headers: map[string]string{"authorization": "Bearer " + jwt},
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/tokens"}},
		}
	}
	resp, err := a.HandleHTTP(context.Background(), event(p.IDToken(t, dashboard, "alice")))
	simple, _ := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
	if err != nil || !simple.IsAuthorized || simple.Context[authorizer.ContextOwner] != "alice" ||
		simple.Context[authorizer.ContextSubject] != "alice" || simple.Context[authorizer.ContextTokenID] != "" ||
		simple.Context[authorizer.ContextPermissions] != "manage" {
		t.Fatalf("a person: %+v, %v", resp, err)
	}
	if exp, err := time.Parse(time.RFC3339, fmt.Sprint(simple.Context[authorizer.ContextExpiresAt])); err != nil || exp.Before(time.Now()) {
		t.Errorf("expiresAt %v: want the ID token's expiry", simple.Context[authorizer.ContextExpiresAt])
	}
	resp, err = a.HandleHTTP(context.Background(), event(p.IDToken(t, "another-client", "alice")))
	if simple, _ := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse); err != nil || simple.IsAuthorized || simple.Context != nil {
		t.Fatalf("another audience: %+v, %v", resp, err)
	}

	without, err := app.NewAuthorizerWithStore(memstore.New(nil), env(map[string]string{authorizer.EnvRole: authorizer.RoleManagement}))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := without.HandleHTTP(context.Background(), event(p.IDToken(t, dashboard, "alice"))); err != nil ||
		resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse).IsAuthorized {
		t.Errorf("sign-in off: a JWT got %+v, %v", resp, err)
	}

	consumer := map[string]string{authorizer.EnvRole: authorizer.RoleConsumer, app.EnvOIDCIssuer: p.Issuer(), app.EnvOIDCClientID: dashboard}
	if _, err := app.NewAuthorizerWithStore(memstore.New(nil), env(consumer)); err == nil || !strings.Contains(err.Error(), app.EnvOIDCIssuer) {
		t.Errorf("a consumer authorizer with %s: %v, want an init error naming it", app.EnvOIDCIssuer, err)
	}
}

func TestSignInFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want app.SignIn // zero with err
		err  string     // a variable the error names
	}{
		{name: "off", vars: nil},
		{name: "client id is the audience", vars: map[string]string{app.EnvOIDCIssuer: "https://idp.example", app.EnvOIDCClientID: "c1"},
			want: app.SignIn{Issuer: "https://idp.example", ClientID: "c1", Audience: "c1", OwnerClaim: "sub"}},
		{name: "everything", vars: map[string]string{
			app.EnvOIDCIssuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab", app.EnvOIDCClientID: "c1", app.EnvOIDCAudience: "api",
			app.EnvOIDCOwnerClaim: "email", app.EnvOIDCAdminClaim: "cognito:groups", app.EnvOIDCAdminValue: "apitokens-admin"},
			want: app.SignIn{Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ab", ClientID: "c1", Audience: "api",
				OwnerClaim: "email", AdminClaim: "cognito:groups", AdminValue: "apitokens-admin"}},
		{name: "no audience", vars: map[string]string{app.EnvOIDCIssuer: "https://idp.example"}, err: app.EnvOIDCClientID},
		{name: "http issuer", vars: map[string]string{app.EnvOIDCIssuer: "http://idp.example", app.EnvOIDCClientID: "c"}, err: app.EnvOIDCIssuer},
		{name: "admin claim alone", vars: map[string]string{app.EnvOIDCIssuer: "https://idp.example", app.EnvOIDCClientID: "c", app.EnvOIDCAdminClaim: "groups"}, err: app.EnvOIDCAdminValue},
		{name: "client id without issuer", vars: map[string]string{app.EnvOIDCClientID: "c"}, err: app.EnvOIDCIssuer},
		{name: "owner claim without issuer", vars: map[string]string{app.EnvOIDCOwnerClaim: "sub"}, err: app.EnvOIDCOwnerClaim},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := app.SignInFromEnv(env(tc.vars))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCORSOriginsFromEnv(t *testing.T) {
	ok := map[string][]string{
		"":                              nil,
		"https://dashboard.example.com": {"https://dashboard.example.com"},
		"https://a.example, http://127.0.0.1:8080": {"https://a.example", "http://127.0.0.1:8080"},
	}
	for s, want := range ok {
		got, err := app.CORSOriginsFromEnv(env(map[string]string{app.EnvCORSAllowedOrigins: s}))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"*", "https://a.example/", "https://a.example/app", "a.example", "https://A.example", "ftp://a.example", "https://a.example?x=1", "https://user@a.example"} {
		if _, err := app.CORSOriginsFromEnv(env(map[string]string{app.EnvCORSAllowedOrigins: s})); err == nil || !strings.Contains(err.Error(), app.EnvCORSAllowedOrigins) {
			t.Errorf("%q: %v, want an error naming %s", s, err, app.EnvCORSAllowedOrigins)
		}
	}
}
