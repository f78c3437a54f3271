package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

func TestLeakSettings(t *testing.T) {
	cfg, err := app.ServiceConfig(env(map[string]string{app.EnvLeakAction: "disable", app.EnvSelfRevokeLimit: "25"}))
	if err != nil || cfg.LeakAction != token.LeakDisable || cfg.SelfRevokeLimit != 25 {
		t.Fatalf("ServiceConfig: %+v, %v; want disable and 25", cfg, err)
	}
	for _, bad := range []map[string]string{
		{app.EnvLeakAction: "delete"}, {app.EnvLeakAction: "Revoke"},
		{app.EnvSelfRevokeLimit: "0"}, {app.EnvSelfRevokeLimit: "-3"}, {app.EnvSelfRevokeLimit: "ten"}, {app.EnvSelfRevokeLimit: "1000001"},
	} {
		for name := range bad {
			if _, err := app.ServiceConfig(env(bad)); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("ServiceConfig(%v): %v; want an error naming %s", bad, err, name)
			}
		}
	}
	for _, bad := range []string{"ftp://keys.example/k", "keys.example/k", "https://"} {
		_, err := app.LambdaRouteWithStore(memstore.New(nil), env(map[string]string{app.EnvLeakKeysURL: bad}), "POST /leaks")
		if err == nil || !strings.Contains(err.Error(), app.EnvLeakKeysURL) {
			t.Errorf("%s=%q: %v; want an init error naming it", app.EnvLeakKeysURL, bad, err)
		}
	}
}

// TestRequestOrigin: on Lambda the caller's address and request id are API Gateway's, never a
// client's X-Forwarded-For or X-Request-Id.
func TestRequestOrigin(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/revoke", nil)
	r.Header.Set("X-Forwarded-For", "10.9.9.9")
	r.Header.Set("X-Request-Id", "mine")
	if ip, id := app.RequestOrigin(r); ip.IsValid() || id != "" {
		t.Fatalf("without API Gateway's context: %v %q; want nothing", ip, id)
	}
	var ip netip.Addr
	var id string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, id = app.RequestOrigin(r)
		w.WriteHeader(http.StatusNoContent)
	})
	_, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST /revoke", RawPath: "/revoke",
		Headers: map[string]string{"x-forwarded-for": "10.9.9.9", "x-request-id": "mine"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "Ab11CdEfGhIjKlQ=",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", Path: "/revoke", SourceIP: "2001:db8::7"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("2001:db8::7") || id != "Ab11CdEfGhIjKlQ=" {
		t.Fatalf("RequestOrigin = %v %q; want API Gateway's", ip, id)
	}
}
