package authorizer_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// eventKind sends one authorization of a given kind and says what API Gateway makes of it.
type eventKind struct {
	name  string
	hasIP bool
	send  func(t *testing.T, f *fixture, tok, ip string) (outcome, map[string]any)
}

var eventKinds = []eventKind{
	{"TOKEN", false, func(t *testing.T, f *fixture, tok, _ string) (outcome, map[string]any) {
		resp, err := f.authorizer(t, nil).HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
			Type: "TOKEN", AuthorizationToken: "Bearer " + tok, MethodArn: arn("GET", "/a"),
		})
		return restOutcome(t, resp, err, arn("GET", "/a")), resp.Context
	}},
	{"REQUEST", true, func(t *testing.T, f *fixture, tok, ip string) (outcome, map[string]any) {
		e := events.APIGatewayCustomAuthorizerRequestTypeRequest{
			Type: "REQUEST", MethodArn: arn("GET", "/a"), HTTPMethod: "GET", Resource: "/a", Headers: map[string]string{"Authorization": "Bearer " + tok},
		}
		e.RequestContext.Identity.SourceIP = ip
		resp, err := f.authorizer(t, nil).HandleRequest(context.Background(), e)
		return restOutcome(t, resp, err, arn("GET", "/a")), resp.Context
	}},
	{"HTTP", true, func(t *testing.T, f *fixture, tok, ip string) (outcome, map[string]any) {
		e := httpEvent("GET", "/a", map[string]string{"authorization": "Bearer " + tok})
		e.RequestContext.HTTP.SourceIP = ip
		resp, err := f.authorizer(t, nil).HandleHTTP(context.Background(), e)
		if err != nil {
			return failed, nil
		}
		simple := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
		if simple.IsAuthorized {
			return allow, simple.Context
		}
		return forbidden, simple.Context // HTTP APIs answer 403 for isAuthorized false
	}},
}

func (f *fixture) limited(t *testing.T, limits token.LimitsInput) string {
	t.Helper()
	_, plain, err := f.svc.Create(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}},
		token.CreateInput{Name: "limited", Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func TestIPAllowlist(t *testing.T) {
	f := newFixture(t)
	cidrs := []string{"203.0.113.0/24", "2001:db8::/32"}
	pinned := f.limited(t, token.LimitsInput{AllowedCIDRs: &cidrs})
	for _, kind := range eventKinds {
		for _, tc := range []struct {
			ip   string
			want outcome
		}{
			{"203.0.113.9", allow},
			{"::ffff:203.0.113.9", allow},
			{"2001:db8::1", allow},
			{"198.51.100.1", forbidden},
			{"2001:db9::1", forbidden},
			{"::ffff:198.51.100.1", forbidden},
			{"", forbidden},
		} {
			t.Run(kind.name+"/"+tc.ip, func(t *testing.T) {
				want := tc.want
				if !kind.hasIP {
					want = forbidden // a TOKEN event carries no address: never allowed by default
				}
				got, ctx := kind.send(t, f, pinned, tc.ip)
				if got != want {
					t.Fatalf("outcome %s; want %s", got, want)
				}
				if got == forbidden && ctx["code"] != token.CodeForbiddenIP {
					t.Fatalf("context %v; want code %s", ctx, token.CodeForbiddenIP)
				}
			})
		}
	}
}

func TestRateLimitAndQuota(t *testing.T) {
	for _, kind := range eventKinds {
		t.Run(kind.name, func(t *testing.T) {
			f := newFixture(t)
			rated := f.limited(t, token.LimitsInput{RateLimit: &token.RateLimit{Limit: 2, Window: time.Minute}})
			for i := range 2 {
				if got, _ := kind.send(t, f, rated, "203.0.113.9"); got != allow {
					t.Fatalf("request %d inside the limit: %s", i, got)
				}
			}
			got, ctx := kind.send(t, f, rated, "203.0.113.9")
			reset := token.WindowStart(f.clock.Now(), time.Minute).Add(time.Minute).Format(time.RFC3339)
			if got != forbidden || ctx["code"] != token.CodeRateLimited || ctx["reset"] != reset || ctx["error"] != "Rate limit exceeded" {
				t.Fatalf("over the limit: %s %v; want a denial with code, error and reset %s", got, ctx, reset)
			}
			f.clock.Advance(time.Minute)
			if got, _ := kind.send(t, f, rated, "203.0.113.9"); got != allow {
				t.Fatalf("next window: %s", got)
			}

			quota := f.limited(t, token.LimitsInput{Remaining: new(int64)})
			if got, ctx := kind.send(t, f, quota, "203.0.113.9"); got != forbidden || ctx["code"] != token.CodeUsageExceeded {
				t.Fatalf("no uses left: %s %v", got, ctx)
			}
		})
	}
}

// TestDeferredLimits: apitokens' own management authorizer (RoleManagement) passes limit
// refusals on to its functions, which can answer 429: it counts the request, allows it, and puts
// the refusal in the context. A consumer authorizer never does, whatever the API's stage
// variables say: only the role, fixed by the deployment, decides.
func TestDeferredLimits(t *testing.T) {
	f := newFixture(t)
	limited := f.limited(t, token.LimitsInput{Remaining: new(int64)})
	management, err := authorizer.ConfigFromEnv(func(k string) string {
		if k == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if !management.DeferLimits || management.CacheTTL != 0 || management.Routes != nil || management.HTTPIAMPolicy {
		t.Fatalf("management config %+v: want deferred limits, no memory cache, no route map, simple responses", management)
	}
	for _, tc := range []struct {
		name    string
		defer_  bool
		tok     string
		allowed bool
		code    any
	}{
		{"management, over quota", true, limited, true, token.CodeUsageExceeded},
		{"management, valid", true, f.valid, true, nil},
		{"management, revoked", true, f.revoked, false, nil},
		{"consumer, over quota", false, limited, false, token.CodeUsageExceeded},
	} {
		e := httpEvent("GET", "/tokens", map[string]string{"authorization": "Bearer " + tc.tok})
		e.StageVariables = map[string]string{"apitokensDeferLimits": "true"} // the old switch: ignored
		resp, err := f.authorizer(t, func(c *authorizer.Config) { c.DeferLimits = tc.defer_ }).HandleHTTP(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		simple := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
		if simple.IsAuthorized != tc.allowed || simple.Context[authorizer.ContextCode] != tc.code {
			t.Errorf("%s: %+v; want allowed %v and code %v", tc.name, simple, tc.allowed, tc.code)
		}
	}
}
