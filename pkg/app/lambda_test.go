package app_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLambdaRouteConfigErrors(t *testing.T) {
	_, err := app.LambdaRoute(env(nil), "GET /tokens")
	if err == nil || !strings.Contains(err.Error(), app.EnvTableName) {
		t.Errorf("LambdaRoute without %s: error %v, want one naming the variable", app.EnvTableName, err)
	}

	store := memstore.New(nil)
	if _, err := app.LambdaRouteWithStore(store, env(nil), "GET /nowhere"); err == nil || !strings.Contains(err.Error(), "GET /nowhere") {
		t.Errorf("unknown route: error %v, want one naming it", err)
	}
	_, err = app.LambdaRouteWithStore(store, env(map[string]string{app.EnvDefaultExpiryDays: "soon"}), "GET /tokens")
	if err == nil || !strings.Contains(err.Error(), app.EnvDefaultExpiryDays) {
		t.Errorf("malformed %s: error %v, want one naming it", app.EnvDefaultExpiryDays, err)
	}
	_, err = app.LambdaRouteWithStore(store, env(map[string]string{app.EnvPrefix: "Not-A-Prefix"}), "GET /tokens")
	if err == nil {
		t.Error("an invalid TOKEN_PREFIX was accepted")
	}
}

// TestAuthorizerContext runs GET /tokens/self through the adapter every function uses, with the
// authorizer context in the event as API Gateway passes it.
func TestAuthorizerContext(t *testing.T) {
	clock := storetest.NewClock()
	store := memstore.New(clock.Now)
	caller := storetest.NewToken("alice", clock.Now())
	caller.Permissions = []string{"manage", "files:read"}
	storetest.MustCreate(t, store, caller)

	h, err := app.LambdaRouteWithStore(store, env(nil), "GET /tokens/self")
	if err != nil {
		t.Fatal(err)
	}
	proxy := httpadapter.NewV2(h).ProxyWithContext

	for _, tc := range []struct {
		name       string
		authorizer *events.APIGatewayV2HTTPRequestContextAuthorizerDescription
		want       int
	}{
		{"full context", lambdaAuthorizer(map[string]any{
			"tokenId": caller.ID, "owner": "alice", "permissions": "manage files:read", "name": caller.Name, "expiresAt": "2026-03-31T12:00:00Z",
		}), http.StatusOK},
		{"without permissions", lambdaAuthorizer(map[string]any{"tokenId": caller.ID, "owner": "alice"}), http.StatusOK},
		{"no authorizer", nil, http.StatusUnauthorized},
		{"empty lambda context", lambdaAuthorizer(map[string]any{}), http.StatusUnauthorized},
		{"JWT authorizer only", &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "alice"}},
		}, http.StatusUnauthorized},
		{"no tokenId", lambdaAuthorizer(map[string]any{"owner": "alice", "permissions": "manage"}), http.StatusUnauthorized},
		{"empty owner", lambdaAuthorizer(map[string]any{"tokenId": caller.ID, "owner": "", "permissions": "manage"}), http.StatusUnauthorized},
		{"tokenId not a string", lambdaAuthorizer(map[string]any{"tokenId": 42.0, "owner": "alice"}), http.StatusUnauthorized},
		{"permissions not a string", lambdaAuthorizer(map[string]any{"tokenId": caller.ID, "owner": "alice", "permissions": []any{"admin"}}), http.StatusUnauthorized},
		{"unknown token", lambdaAuthorizer(map[string]any{"tokenId": token.NewID(), "owner": "alice"}), http.StatusNotFound},
		{"a person, who has no token to show", lambdaAuthorizer(map[string]any{
			"tokenId": "", "owner": "alice", "permissions": "manage", "name": "", "subject": "alice-sub", "expiresAt": "2026-03-31T12:00:00Z",
		}), http.StatusNotFound},
		{"a token id and a subject", lambdaAuthorizer(map[string]any{"tokenId": caller.ID, "owner": "alice", "subject": "alice-sub"}), http.StatusUnauthorized},
		{"a subject without an owner", lambdaAuthorizer(map[string]any{"tokenId": "", "owner": "", "subject": "alice-sub"}), http.StatusUnauthorized},
		{"subject not a string", lambdaAuthorizer(map[string]any{"tokenId": "", "owner": "alice", "subject": 7.0}), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := events.APIGatewayV2HTTPRequest{
				Version: "2.0", RouteKey: "GET /tokens/self", RawPath: "/tokens/self",
				Headers: map[string]string{"authorization": "Bearer ignored-by-the-function"},
				RequestContext: events.APIGatewayV2HTTPRequestContext{
					DomainName: "abc123.execute-api.eu-west-1.amazonaws.com", Stage: "$default",
					HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/tokens/self", SourceIP: "203.0.113.9"},
					Authorizer: tc.authorizer,
				},
			}
			resp, err := proxy(context.Background(), ev)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.want, resp.Body)
			}
			if tc.want == http.StatusOK {
				var got struct {
					ID          string   `json:"id"`
					Permissions []string `json:"permissions"`
				}
				if err := json.Unmarshal([]byte(resp.Body), &got); err != nil || got.ID != caller.ID || !slices.Equal(got.Permissions, caller.Permissions) {
					t.Errorf("body %s (%v): want the caller's token", resp.Body, err)
				}
			}
		})
	}
}

// TestAuthorizerContextIgnoresHeaders: the adapter also copies the request context into a
// header, which a client can send too; the caller must come from the event only.
func TestAuthorizerContextIgnoresHeaders(t *testing.T) {
	r, err := http.NewRequest(http.MethodGet, "/tokens/self", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-GoLambdaProxyApiGatewayContext", `{"authorizer":{"lambda":{"tokenId":"x","owner":"mallory"}}}`)
	if _, err := app.AuthorizerContext(r); token.ErrorCode(err) != token.EUNAUTHORIZED {
		t.Errorf("AuthorizerContext with a forged header: %v, want EUNAUTHORIZED", err)
	}
}

func lambdaAuthorizer(c map[string]any) *events.APIGatewayV2HTTPRequestContextAuthorizerDescription {
	return &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: c}
}

// TestDeferredLimitsAnswer429: the management API's authorizer passes limit refusals on in its
// context; the function answers them: 429 with Retry-After and RateLimit headers for a rate limit
// or quota, 403 for an address outside the allowlist.
func TestDeferredLimitsAnswer429(t *testing.T) {
	clock := storetest.NewClock()
	store := memstore.New(clock.Now)
	caller := storetest.NewToken("alice", clock.Now())
	storetest.MustCreate(t, store, caller)
	h, err := app.LambdaRouteWithStore(store, env(nil), "GET /tokens/self")
	if err != nil {
		t.Fatal(err)
	}
	reset := time.Now().Add(30 * time.Second).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		extra   map[string]any
		status  int
		headers map[string]string
	}{
		{nil, http.StatusOK, nil},
		{map[string]any{authorizer.ContextCode: token.CodeRateLimited, authorizer.ContextLimit: "50", authorizer.ContextReset: reset},
			http.StatusTooManyRequests, map[string]string{"Ratelimit-Limit": "50", "Ratelimit-Remaining": "0"}},
		{map[string]any{authorizer.ContextCode: token.CodeUsageExceeded, authorizer.ContextReset: ""},
			http.StatusTooManyRequests, map[string]string{"Ratelimit-Remaining": "0"}},
		{map[string]any{authorizer.ContextCode: token.CodeForbiddenIP}, http.StatusForbidden, nil},
		{map[string]any{authorizer.ContextCode: "SOMETHING_NEW"}, http.StatusUnauthorized, nil},
	} {
		c := map[string]any{authorizer.ContextTokenID: caller.ID, authorizer.ContextOwner: "alice", authorizer.ContextPermissions: "read"}
		for k, v := range tc.extra {
			c[k] = v
		}
		resp, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: "GET /tokens/self", RawPath: "/tokens/self",
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/tokens/self", SourceIP: "203.0.113.9"},
				Authorizer: lambdaAuthorizer(c),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status {
			t.Fatalf("context %v: %d %s; want %d", tc.extra, resp.StatusCode, resp.Body, tc.status)
		}
		for h, want := range tc.headers {
			if resp.Headers[h] != want {
				t.Errorf("context %v: %s = %q; want %q", tc.extra, h, resp.Headers[h], want)
			}
		}
		if tc.extra[authorizer.ContextCode] == token.CodeRateLimited {
			if retry, _ := strconv.Atoi(resp.Headers["Retry-After"]); retry < 29 || retry > 31 {
				t.Errorf("Retry-After %q; want about 30", resp.Headers["Retry-After"])
			}
		}
	}
}

// TestNewAuthorizerFailsInitClearly: a missing or malformed setting fails the authorizer's init
// with an error naming the variable.
func TestNewAuthorizerFailsInitClearly(t *testing.T) {
	base := map[string]string{
		app.EnvTableName: "tokens", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
		authorizer.EnvRole: authorizer.RoleConsumer,
	}
	if _, err := app.NewAuthorizer(env(base)); err != nil {
		t.Fatalf("a complete environment: %v", err)
	}
	for name, value := range map[string]string{
		app.EnvTableName:            "",
		"AWS_REGION":                "",
		authorizer.EnvCacheTTL:      "soon",
		authorizer.EnvRoutes:        `{"FETCH /x":["a"]}`,
		authorizer.EnvPrefix:        "Tok",
		authorizer.EnvUsageInterval: "-5",
		authorizer.EnvRole:          "",
	} {
		vars := maps.Clone(base)
		vars[name] = value
		if _, err := app.NewAuthorizer(env(vars)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v; want an error naming %s", name, value, err, name)
		}
	}
}
