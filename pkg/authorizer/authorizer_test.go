package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/syncbuf"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

const (
	apiBase = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
	routes  = `{"POST /upload": ["upload"], "DELETE /files/*": ["delete"], "GET /*": ["list"], "GET /admin/{section}": ["admin:read"]}`
)

// countingStore counts store calls, as an SDK middleware counts DynamoDB requests: finds counts
// reads, uses counts usage writes that counted valid uses (RecordUse),
// refusals the usage writes of refusals only, writes every write.
type countingStore struct {
	token.Store
	finds, uses, refusals, writes atomic.Int32
}

func (s *countingStore) LeaseQuota(ctx context.Context, id string, refill *token.Refill, refilledAt, now time.Time, k int64) (token.QuotaLease, error) {
	s.writes.Add(1)
	return s.Store.LeaseQuota(ctx, id, refill, refilledAt, now, k)
}

func (s *countingStore) LeaseRate(ctx context.Context, id string, start time.Time, window time.Duration, k int64) (int64, error) {
	s.writes.Add(1)
	return s.Store.LeaseRate(ctx, id, start, window, k)
}

func (s *countingStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	s.finds.Add(1)
	return s.Store.FindToken(ctx, id)
}

func (s *countingStore) RecordUse(ctx context.Context, id string, u token.Usage) error {
	if u.Valid > 0 {
		s.uses.Add(1)
	} else {
		s.refusals.Add(1)
	}
	s.writes.Add(1)
	return s.Store.RecordUse(ctx, id, u)
}

// syncBuffer is a log destination safe for the usage writes' goroutines.
type syncBuffer = syncbuf.Buffer

type fixture struct {
	clock *storetest.Clock
	store *countingStore
	svc   *token.Service
	logs  *syncBuffer
	// Tokens of owner "alice", by what they are.
	valid, readOnly, expired, revoked, disabled, unknown, badChecksum string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	clock := storetest.NewClock()
	f := &fixture{clock: clock, store: &countingStore{Store: memstore.New(clock.Now)}, logs: &syncBuffer{}}
	svc, err := token.NewService(f.store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	ctx := context.Background()
	root := token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}
	mint := func(perms []string, days int) (*token.Token, string) {
		t.Helper()
		tok, plain, err := svc.Create(ctx, root, token.CreateInput{Name: "uploader", Permissions: perms, Lifetime: token.Lifetime{Days: &days}})
		if err != nil {
			t.Fatal(err)
		}
		return tok, plain
	}
	_, f.valid = mint([]string{"upload", "list", "delete"}, 30)
	_, f.readOnly = mint([]string{"list"}, 30)
	_, f.expired = mint([]string{"upload"}, 1)
	rev, revoked := mint([]string{"upload"}, 30)
	f.revoked = revoked
	dis, disabled := mint([]string{"upload"}, 30)
	f.disabled = disabled
	if _, err := svc.Revoke(ctx, root, rev.ID); err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := svc.Update(ctx, root, dis.ID, token.UpdateInput{Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(25 * time.Hour) // the one-day token has expired
	f.unknown = token.Format("tok", "", token.NewID(), token.NewSecret())
	last := "A"
	if strings.HasSuffix(f.valid, "A") {
		last = "B"
	}
	f.badChecksum = f.valid[:len(f.valid)-1] + last
	f.store.finds.Store(0)
	f.store.uses.Store(0)
	f.store.writes.Store(0)
	return f
}

func (f *fixture) authorizer(t testing.TB, mutate func(*authorizer.Config)) *authorizer.Authorizer {
	t.Helper()
	cfg, err := authorizer.ConfigFromEnv(consumerEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = f.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	if mutate != nil {
		mutate(&cfg)
	}
	return authorizer.New(f.store, cfg)
}

// consumerEnv is the environment of a consumer authorizer with the given variables.
func consumerEnv(vars map[string]string) func(string) string {
	return func(k string) string {
		if k == authorizer.EnvRole {
			return authorizer.RoleConsumer
		}
		return vars[k]
	}
}

func withRoutes(t testing.TB) func(*authorizer.Config) {
	m, err := authorizer.ParseRouteMap(routes)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *authorizer.Config) { c.Routes = m }
}

// outcome is what API Gateway makes of an answer.
type outcome string

const (
	allow        outcome = "allow"
	unauthorized outcome = "401"
	forbidden    outcome = "403"
	failed       outcome = "500"
)

// restOutcome evaluates a REST answer for methodArn the way API Gateway does: "Unauthorized" is
// 401, another error 500, and a policy allows when an Allow statement matches and no Deny does.
func restOutcome(t *testing.T, resp events.APIGatewayCustomAuthorizerResponse, err error, methodArn string) outcome {
	t.Helper()
	if err != nil {
		if err.Error() == "Unauthorized" {
			return unauthorized
		}
		return failed
	}
	if policyAllows(resp.PolicyDocument, methodArn) {
		return allow
	}
	return forbidden
}

func policyAllows(doc events.APIGatewayCustomAuthorizerPolicy, arn string) bool {
	allowed := false
	for _, s := range doc.Statement {
		for _, r := range s.Resource {
			if iamMatch(r, arn) {
				if s.Effect == "Deny" {
					return false
				}
				allowed = true
			}
		}
	}
	return allowed
}

// iamMatch is an independent reading of IAM's wildcard: "*" matches any run of characters.
func iamMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	if pattern[0] == '*' {
		for i := 0; i <= len(s); i++ {
			if iamMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	return s != "" && pattern[0] == s[0] && iamMatch(pattern[1:], s[1:])
}

func arn(method, path string) string { return apiBase + "/" + method + path }

func TestDecisions(t *testing.T) {
	f := newFixture(t)
	type request struct {
		headers map[string]string // for REQUEST and HTTP API events
		tokenH  string            // authorizationToken of a TOKEN event
	}
	bearerH := func(v string) request {
		return request{headers: map[string]string{"Authorization": v}, tokenH: v}
	}
	tests := []struct {
		name         string
		req          request
		method, path string
		routes       bool
		apiKey       bool
		want         outcome
	}{
		{"valid", bearerH("Bearer " + f.valid), "POST", "/upload", false, false, allow},
		{"valid lowercase scheme", bearerH("bearer " + f.valid), "GET", "/x", false, false, allow},
		{"valid extra spaces", bearerH("  Bearer    " + f.valid + "  "), "GET", "/x", false, false, allow},
		{"missing header", request{headers: map[string]string{"Accept": "*/*"}}, "GET", "/x", false, false, unauthorized},
		{"empty bearer", bearerH("Bearer "), "GET", "/x", false, false, unauthorized},
		{"other scheme", bearerH("Basic " + f.valid), "GET", "/x", false, false, unauthorized},
		{"no scheme", bearerH(f.valid), "GET", "/x", false, false, unauthorized},
		{"malformed", bearerH("Bearer tok_abc"), "GET", "/x", false, false, unauthorized},
		{"bad checksum", bearerH("Bearer " + f.badChecksum), "GET", "/x", false, false, unauthorized},
		{"unknown", bearerH("Bearer " + f.unknown), "GET", "/x", false, false, unauthorized},
		{"expired", bearerH("Bearer " + f.expired), "GET", "/x", false, false, unauthorized},
		{"revoked", bearerH("Bearer " + f.revoked), "GET", "/x", false, false, unauthorized},
		{"disabled", bearerH("Bearer " + f.disabled), "GET", "/x", false, false, unauthorized},
		{"route allowed", bearerH("Bearer " + f.valid), "DELETE", "/files/a/b.png", true, false, allow},
		{"route wildcard allowed", bearerH("Bearer " + f.readOnly), "GET", "/files/a", true, false, allow},
		{"route lacks permission", bearerH("Bearer " + f.readOnly), "POST", "/upload", true, false, forbidden},
		{"route param lacks permission", bearerH("Bearer " + f.valid), "GET", "/admin/users", true, false, forbidden},
		{"route unmapped", bearerH("Bearer " + f.valid), "PUT", "/upload", true, false, forbidden},
		{"route invalid token", bearerH("Bearer " + f.revoked), "POST", "/upload", true, false, unauthorized},
	}
	// Cases that only REQUEST and HTTP API events can carry: other headers.
	headerTests := []struct {
		name    string
		headers map[string]string
		apiKey  bool
		want    outcome
	}{
		{"lowercase header name", map[string]string{"authorization": "Bearer " + f.valid}, false, allow},
		{"token in the wrong header", map[string]string{"x-api-key": f.valid}, false, unauthorized},
		{"token in x-api-key when configured", map[string]string{"X-Api-Key": " " + f.valid + " "}, true, allow},
		{"bad token in x-api-key", map[string]string{"x-api-key": f.unknown}, true, unauthorized},
	}
	for _, tt := range headerTests {
		tests = append(tests, struct {
			name         string
			req          request
			method, path string
			routes       bool
			apiKey       bool
			want         outcome
		}{tt.name, request{headers: tt.headers}, "GET", "/x", false, tt.apiKey, tt.want})
	}

	for _, tt := range tests {
		cfg := func(c *authorizer.Config) {
			if tt.routes {
				withRoutes(t)(c)
			}
			if tt.apiKey {
				c.APIKeyHeader = "x-api-key"
			}
		}
		t.Run("REQUEST/"+tt.name, func(t *testing.T) {
			a := f.authorizer(t, cfg)
			resp, err := a.HandleRequest(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
				Type: "REQUEST", MethodArn: arn(tt.method, tt.path), HTTPMethod: tt.method, Resource: resourceOf(tt.path), Path: tt.path, Headers: tt.req.headers,
			})
			if got := restOutcome(t, resp, err, arn(tt.method, tt.path)); got != tt.want {
				t.Fatalf("outcome %s (%v); want %s", got, err, tt.want)
			}
			if tt.want == forbidden && !hasDeny(resp.PolicyDocument) {
				t.Fatal("403 without an explicit Deny")
			}
		})
		if tt.req.tokenH != "" || tt.name == "missing header" {
			t.Run("TOKEN/"+tt.name, func(t *testing.T) {
				a := f.authorizer(t, cfg)
				resp, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
					Type: "TOKEN", AuthorizationToken: tt.req.tokenH, MethodArn: arn(tt.method, tt.path),
				})
				if got := restOutcome(t, resp, err, arn(tt.method, tt.path)); got != tt.want {
					t.Fatalf("outcome %s (%v); want %s", got, err, tt.want)
				}
			})
		}
		t.Run("HTTP/"+tt.name, func(t *testing.T) {
			a := f.authorizer(t, cfg)
			lower := map[string]string{}
			for k, v := range tt.req.headers {
				lower[strings.ToLower(k)] = v
			}
			e := httpEvent(tt.method, tt.path, lower)
			got, err := a.HandleHTTP(context.Background(), e)
			if err != nil {
				t.Fatalf("HandleHTTP: %v", err)
			}
			simple := got.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
			if simple.IsAuthorized != (tt.want == allow) {
				t.Fatalf("isAuthorized %v; want %v", simple.IsAuthorized, tt.want == allow)
			}
			if tt.want == allow && simple.Context["owner"] != "alice" {
				t.Fatalf("context %v", simple.Context)
			}

			iam := f.authorizer(t, func(c *authorizer.Config) { cfg(c); c.HTTPIAMPolicy = true })
			gotIAM, err := iam.HandleHTTP(context.Background(), e)
			if err != nil {
				t.Fatalf("HandleHTTP (IAM): %v", err)
			}
			policy := gotIAM.(events.APIGatewayV2CustomAuthorizerIAMPolicyResponse).PolicyDocument
			if policyAllows(policy, e.RouteArn) != (tt.want == allow) {
				t.Fatalf("IAM policy %+v for %s; want allow=%v", policy, e.RouteArn, tt.want == allow)
			}
		})
	}
}

func hasDeny(doc events.APIGatewayCustomAuthorizerPolicy) bool {
	return slices.ContainsFunc(doc.Statement, func(s events.IAMPolicyStatement) bool { return s.Effect == "Deny" })
}

// resourceOf is the route of the test API that API Gateway would match for path: the resources
// /admin/{section} and /files/{proxy+}, and a literal route for any other path.
func resourceOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/admin/"):
		return "/admin/{section}"
	case strings.HasPrefix(path, "/files/"):
		return "/files/{proxy+}"
	}
	return path
}

func httpEvent(method, path string, headers map[string]string) events.APIGatewayV2CustomAuthorizerV2Request {
	e := events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: arn(method, path), RouteKey: method + " " + resourceOf(path),
		RawPath: path, Headers: headers,
	}
	e.RequestContext.HTTP.Method = method
	e.RequestContext.HTTP.Path = path
	e.RequestContext.HTTP.SourceIP = "203.0.113.7"
	return e
}

func TestContextAndPrincipal(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, nil)
	resp, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + f.valid, MethodArn: arn("GET", "/a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.PrincipalID != "alice" {
		t.Fatalf("principalId %q; want the owner", resp.PrincipalID)
	}
	for _, k := range []string{"tokenId", "owner", "name", "permissions", "expiresAt"} {
		if _, ok := resp.Context[k].(string); !ok {
			t.Errorf("context[%q] = %#v; want a string", k, resp.Context[k])
		}
	}
	if resp.Context["permissions"] != "upload list delete" || resp.Context["name"] != "uploader" {
		t.Fatalf("context %v", resp.Context)
	}
	if _, err := time.Parse(time.RFC3339, resp.Context["expiresAt"].(string)); err != nil {
		t.Fatalf("expiresAt %q: %v", resp.Context["expiresAt"], err)
	}
}

// TestPolicySafeToCache: API Gateway reuses a REST policy for every method the same token calls,
// so the policy answered for GET /a must decide every other route as a fresh call would.
func TestPolicySafeToCache(t *testing.T) {
	f := newFixture(t)
	probes := []struct{ method, path string }{
		{"GET", "/a"}, {"GET", "/files/x/y"}, {"POST", "/upload"}, {"POST", "/upload/extra"}, {"DELETE", "/files/1"},
		{"DELETE", "/other"}, {"PUT", "/upload"}, {"GET", "/admin/users"}, {"PATCH", "/x"}, {"GET", "/"},
	}
	for _, tc := range []struct {
		name   string
		token  string
		routes bool
	}{
		{"route map, all permissions", f.valid, true},
		{"route map, list only", f.readOnly, true},
		{"no route map", f.readOnly, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg func(*authorizer.Config)
			if tc.routes {
				cfg = withRoutes(t)
			}
			a := f.authorizer(t, cfg)
			cached, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
				Type: "TOKEN", AuthorizationToken: "Bearer " + tc.token, MethodArn: arn("GET", "/a"),
			})
			if err != nil {
				t.Fatal(err)
			}
			if !policyAllows(cached.PolicyDocument, arn("GET", "/a")) {
				t.Fatal("GET /a is not allowed")
			}
			allowedOthers := 0
			for _, p := range probes {
				fresh, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
					Type: "TOKEN", AuthorizationToken: "Bearer " + tc.token, MethodArn: arn(p.method, p.path),
				})
				want := restOutcome(t, fresh, err, arn(p.method, p.path)) == allow
				if got := policyAllows(cached.PolicyDocument, arn(p.method, p.path)); got != want {
					t.Errorf("cached policy for GET /a decides %s %s allow=%v; a fresh call decides %v", p.method, p.path, got, want)
				}
				if want && p.path != "/a" {
					allowedOthers++
				}
			}
			if allowedOthers == 0 {
				t.Fatal("no other route is allowed: the comparison proves nothing")
			}
		})
	}
}

// failingStore fails or hangs every lookup.
type failingStore struct {
	token.Store
	hang bool
}

func (s failingStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	if s.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, errors.New("connection reset by peer")
}

// lateStore answers correctly but only after the caller's deadline.
type lateStore struct{ token.Store }

func (s lateStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	<-ctx.Done()
	return s.Store.FindToken(context.Background(), id)
}

func TestFailClosed(t *testing.T) {
	f := newFixture(t)
	stores := map[string]token.Store{
		"error": failingStore{Store: f.store},
		"hang":  failingStore{Store: f.store, hang: true},
		"late":  lateStore{Store: f.store},
	}
	for name, store := range stores {
		t.Run(name, func(t *testing.T) {
			cfg, _ := authorizer.ConfigFromEnv(consumerEnv(nil))
			cfg.LookupTimeout = 20 * time.Millisecond
			cfg.Now = f.clock.Now
			cfg.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
			a := authorizer.New(store, cfg)
			ctx := context.Background()
			rest, err := a.HandleToken(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: "Bearer " + f.valid, MethodArn: arn("GET", "/a")})
			if got := restOutcome(t, rest, err, arn("GET", "/a")); got != failed {
				t.Fatalf("REST outcome %s; want %s", got, failed)
			}
			for _, iam := range []bool{false, true} {
				a := authorizer.New(store, func() authorizer.Config { c := cfg; c.HTTPIAMPolicy = iam; return c }())
				resp, err := a.HandleHTTP(ctx, httpEvent("GET", "/a", map[string]string{"authorization": "Bearer " + f.valid}))
				if err == nil {
					t.Fatalf("HTTP (iam=%v) answered %+v; want an error", iam, resp)
				}
			}
			r := httptest.NewRequest("GET", "/tokens", nil)
			r.Header.Set("Authorization", "Bearer "+f.valid)
			if _, err := a.AuthenticateRequest(r); err == nil || token.ErrorCode(err) != token.EINTERNAL {
				t.Fatalf("local server authentication: %v; want an internal error", err)
			}
		})
	}
	if strings.Contains(f.logs.String(), f.valid) {
		t.Fatal("a failure log shows the token")
	}
}

func TestCacheAndUsageWrites(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, nil)
	ctx := context.Background()
	authorize := func(tok string) authorizer.Outcome {
		d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/a"})
		if err != nil {
			t.Fatal(err)
		}
		return d.Outcome
	}
	for i := range 1000 {
		if authorize(f.valid) != authorizer.Allowed {
			t.Fatalf("authorization %d refused", i)
		}
		if i%100 == 99 {
			f.clock.Advance(5 * time.Second) // 1,000 calls over 50 s: 5 cache windows of 10 s
		}
	}
	a.WaitForWrites()
	if got := f.store.finds.Load(); got != 5 {
		t.Fatalf("1,000 authorizations over 50 s made %d lookups; want 5 (one per 10 s window)", got)
	}
	if got := f.store.uses.Load(); got != 1 {
		t.Fatalf("usage writes in the first minute: %d; want 1", got)
	}
	f.clock.Advance(11 * time.Second) // past the 60 s usage interval
	authorize(f.valid)
	a.WaitForWrites()
	if got := f.store.uses.Load(); got != 2 {
		t.Fatalf("usage writes after the interval: %d; want 2", got)
	}
	self, err := f.svc.Verify(ctx, f.valid)
	if err != nil || self.Token.UsageCount != 1001+1 {
		t.Fatalf("usageCount %d after 1,001 authorizations and one verify (%v); want 1002", self.Token.UsageCount, err)
	}

	// Unknown ids are cached too, so a flood of junk tokens costs one lookup per window.
	f.store.finds.Store(0)
	for range 100 {
		authorize(f.unknown)
	}
	if got := f.store.finds.Load(); got != 1 {
		t.Fatalf("100 unknown-token authorizations made %d lookups; want 1", got)
	}

	// Malformed tokens never reach the store.
	f.store.finds.Store(0)
	authorize("tok_" + strings.Repeat("x", 65))
	if f.store.finds.Load() != 0 {
		t.Fatal("a malformed token reached the store")
	}

	// A revoked token is refused once the cache entry expires.
	p, _ := token.Parse("tok", f.valid)
	if _, err := f.svc.Revoke(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, p.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(authorizer.DefaultCacheTTL)
	if authorize(f.valid) != authorizer.Unauthorized {
		t.Fatal("revoked token still allowed after the cache TTL")
	}
}

func TestCacheDisabledAndBounded(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, func(c *authorizer.Config) { c.CacheTTL = 0; c.UsageInterval = 0 })
	for range 3 {
		if d, err := a.Authorize(context.Background(), authorizer.Request{Token: f.valid, Method: "GET", Route: "/"}); err != nil || d.Outcome != authorizer.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
	}
	a.WaitForWrites()
	if f.store.finds.Load() != 3 || f.store.uses.Load() != 3 {
		t.Fatalf("without cache and throttling: %d lookups, %d writes; want 3 and 3", f.store.finds.Load(), f.store.uses.Load())
	}

	b := f.authorizer(t, func(c *authorizer.Config) { c.CacheSize = 2 })
	for _, tok := range []string{f.valid, f.readOnly, f.expired, f.valid, f.readOnly, f.expired} {
		if _, err := b.Authorize(context.Background(), authorizer.Request{Token: tok, Method: "GET", Route: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.store.finds.Load() - 3; got < 4 {
		t.Fatalf("a cache of 2 entries served 3 cycling tokens with %d lookups; it must have evicted", got)
	}
}

func TestConfigFromEnv(t *testing.T) {
	good := map[string]string{
		authorizer.EnvCacheTTL: "0", authorizer.EnvUsageInterval: "30", authorizer.EnvCacheSize: "50",
		authorizer.EnvRoutes: routes, authorizer.EnvAPIKeyHeader: "x-api-key", authorizer.EnvResponse: "iam",
		authorizer.EnvQuotaLowPercent: "25",
	}
	cfg, err := authorizer.ConfigFromEnv(consumerEnv(good))
	if err != nil || cfg.CacheTTL != 0 || cfg.UsageInterval != 30*time.Second || cfg.CacheSize != 50 || cfg.Routes == nil || !cfg.HTTPIAMPolicy ||
		cfg.Limits.LowPercent != 25 {
		t.Fatalf("%+v %v", cfg, err)
	}
	for name, value := range map[string]string{
		authorizer.EnvCacheTTL:          "-1",
		authorizer.EnvUsageInterval:     "soon",
		authorizer.EnvCacheSize:         "0",
		authorizer.EnvResponse:          "xml",
		authorizer.EnvRoutes:            `{"FETCH /x": ["a"]}`,
		authorizer.EnvAPIName:           "Uploads API",
		authorizer.EnvRequireAPIBinding: "yes",
		authorizer.EnvRole:              "admin",
		authorizer.EnvQuotaLowPercent:   "100",
	} {
		_, err := authorizer.ConfigFromEnv(consumerEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = authorizer.ConfigFromEnv(func(k string) string {
			if k == name {
				return value
			}
			return consumerEnv(nil)(k)
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v; want one naming the variable", name, value, err)
		}
	}

	// The role is required, and the management authorizer's rules cannot be changed by settings
	// meant for consumer APIs.
	if _, err := authorizer.ConfigFromEnv(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), authorizer.EnvRole) {
		t.Errorf("no role: error %v; want one naming %s", err, authorizer.EnvRole)
	}
	for _, name := range []string{authorizer.EnvRoutes, authorizer.EnvResponse, authorizer.EnvAPIName, authorizer.EnvRequireAPIBinding} {
		_, err := authorizer.ConfigFromEnv(func(k string) string {
			switch k {
			case authorizer.EnvRole:
				return authorizer.RoleManagement
			case name:
				return good[name] + "x"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("management with %s: error %v; want one naming it", name, err)
		}
	}
	if _, err := authorizer.ConfigFromEnv(consumerEnv(map[string]string{authorizer.EnvRequireAPIBinding: "true"})); err == nil || !strings.Contains(err.Error(), authorizer.EnvAPIName) {
		t.Errorf("binding required without an API name: error %v; want one naming %s", err, authorizer.EnvAPIName)
	}
	cfg, err = authorizer.ConfigFromEnv(consumerEnv(map[string]string{authorizer.EnvAPIName: "uploads", authorizer.EnvRequireAPIBinding: "true"}))
	if err != nil || cfg.APIName != "uploads" || !cfg.RequireAPIBinding || cfg.DeferLimits || cfg.CacheTTL != authorizer.DefaultCacheTTL {
		t.Errorf("consumer with binding: %+v, %v", cfg, err)
	}
}

func TestParseRouteMap(t *testing.T) {
	for _, bad := range []string{`[]`, `{}`, `{"GET": ["a"]}`, `{"GET x": ["a"]}`, `{"get /x": ["a"]}`, `{"GET /x": [""]}`, `{"GET /x": "a"}`, `{`} {
		if _, err := authorizer.ParseRouteMap(bad); err == nil {
			t.Errorf("ParseRouteMap(%s) accepted a bad map", bad)
		}
	}
	if m, err := authorizer.ParseRouteMap(""); m != nil || err != nil {
		t.Fatalf("empty map: %v %v; want none", m, err)
	}
}

func TestAuthenticateRequest(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, nil)
	for _, tc := range []struct {
		header, code string
	}{
		{"", token.EUNAUTHORIZED},
		{"Bearer " + f.expired, token.EUNAUTHORIZED},
		{"Bearer " + f.valid, ""},
	} {
		r := httptest.NewRequest("GET", "/tokens", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		p, err := a.AuthenticateRequest(r)
		if token.ErrorCode(err) != tc.code {
			t.Fatalf("header %.20q: %v; want code %q", tc.header, err, tc.code)
		}
		if err == nil && (p.Owner != "alice" || p.TokenID == "") {
			t.Fatalf("principal %+v", p)
		}
	}
}

// TestAWSSampleEvents feeds aws-lambda-go's own sample events, with a real token substituted.
func TestAWSSampleEvents(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-lambda-go").Output()
	if err != nil {
		t.Fatalf("locate aws-lambda-go in the module cache: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "events", "testdata")
	f := newFixture(t)
	for _, tc := range []struct {
		file   string
		set    func(m map[string]any, tok string)
		expect func(t *testing.T, resp any, err error, methodArn string)
	}{
		{"apigw-custom-auth-request.json",
			func(m map[string]any, tok string) { m["authorizationToken"] = "Bearer " + tok },
			func(t *testing.T, resp any, err error, methodArn string) {
				if got := restOutcome(t, resp.(events.APIGatewayCustomAuthorizerResponse), err, methodArn); got != allow {
					t.Fatalf("outcome %s; want allow", got)
				}
			}},
		{"apigw-custom-auth-request-type-request.json",
			func(m map[string]any, tok string) { m["headers"].(map[string]any)["Authorization"] = "Bearer " + tok },
			func(t *testing.T, resp any, err error, methodArn string) {
				if got := restOutcome(t, resp.(events.APIGatewayCustomAuthorizerResponse), err, methodArn); got != allow {
					t.Fatalf("outcome %s; want allow", got)
				}
			}},
		{"apigw-v2-custom-authorizer-v2-request.json",
			func(m map[string]any, tok string) { m["headers"].(map[string]any)["authorization"] = "Bearer " + tok },
			func(t *testing.T, resp any, err error, _ string) {
				if err != nil || !resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse).IsAuthorized {
					t.Fatalf("answer %+v %v; want isAuthorized", resp, err)
				}
			}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{f.valid, f.revoked} {
				var m map[string]any
				if err := json.Unmarshal(raw, &m); err != nil {
					t.Fatal(err)
				}
				tc.set(m, tok)
				payload, _ := json.Marshal(m)
				resp, err := f.authorizer(t, nil).Handle(context.Background(), payload)
				methodArn, _ := m["methodArn"].(string)
				if tok == f.valid {
					tc.expect(t, resp, err, methodArn)
					continue
				}
				switch r := resp.(type) {
				case events.APIGatewayCustomAuthorizerResponse:
					if restOutcome(t, r, err, methodArn) != unauthorized {
						t.Fatalf("revoked token: %+v %v; want 401", r, err)
					}
				case events.APIGatewayV2CustomAuthorizerSimpleResponse:
					if r.IsAuthorized || err != nil {
						t.Fatalf("revoked token: %+v %v; want isAuthorized false", r, err)
					}
				default:
					t.Fatalf("revoked token: %T %v", resp, err)
				}
			}
		})
	}
}

func TestHandleRejectsUnknownEvents(t *testing.T) {
	f := newFixture(t)
	for _, payload := range []string{`{}`, `{"type":"WEIRD"}`, `not json`, `{"type":"TOKEN","methodArn":"nope","authorizationToken":"Bearer x"}`} {
		if resp, err := f.authorizer(t, nil).Handle(context.Background(), json.RawMessage(payload)); err == nil || err.Error() == "Unauthorized" {
			t.Errorf("Handle(%s) = %+v, %v; want a failure (500)", payload, resp, err)
		}
	}
}

// TestOurEvents keeps events/authorizer-*.json working: with a real token substituted for the
// placeholder they are allowed, as shipped (placeholder) they are refused.
func TestOurEvents(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"authorizer-rest-token.json", "authorizer-rest-request.json", "authorizer-http-v2.json"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
			if err != nil {
				t.Fatal(err)
			}
			const placeholder = "tok_live_REPLACE_WITH_A_TOKEN"
			if !bytes.Contains(raw, []byte(placeholder)) {
				t.Fatalf("%s lacks the placeholder %s", name, placeholder)
			}
			for _, tc := range []struct {
				token string
				allow bool
			}{{f.valid, true}, {placeholder, false}} {
				resp, err := f.authorizer(t, nil).Handle(context.Background(), bytes.ReplaceAll(raw, []byte(placeholder), []byte(tc.token)))
				var allowed bool
				switch r := resp.(type) {
				case events.APIGatewayCustomAuthorizerResponse:
					var e struct{ MethodArn string }
					_ = json.Unmarshal(raw, &e)
					allowed = restOutcome(t, r, err, e.MethodArn) == allow
				case events.APIGatewayV2CustomAuthorizerSimpleResponse:
					allowed = err == nil && r.IsAuthorized
				case nil:
					allowed = false
					if err == nil || err.Error() != "Unauthorized" {
						t.Fatalf("no answer and error %v", err)
					}
				default:
					t.Fatalf("answer of type %T", resp)
				}
				if allowed != tc.allow {
					t.Fatalf("token %.12s...: allowed %v; want %v", tc.token, allowed, tc.allow)
				}
			}
		})
	}
}

// TestAnyRouteInPolicy: an ANY route stands for each method in a policy; a "*" in the method's
// place would also match across the slash into the path, allowing what the route map refuses.
func TestAnyRouteInPolicy(t *testing.T) {
	f := newFixture(t)
	m, err := authorizer.ParseRouteMap(`{"ANY /files/*": ["upload"], "GET /admin/*": ["admin"]}`)
	if err != nil {
		t.Fatal(err)
	}
	a := f.authorizer(t, func(c *authorizer.Config) { c.Routes = m })
	probes := []struct{ method, path string }{
		{"POST", "/files/x"}, {"DELETE", "/files/a/b"}, {"POST", "/other/files/x"}, {"GET", "/files/admin/x"},
		{"GET", "/admin/x"}, {"PUT", "/other"},
	}
	cached, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
		Type: "TOKEN", AuthorizationToken: "Bearer " + f.valid, MethodArn: arn("GET", "/files/a"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probes {
		d, err := a.Authorize(context.Background(), authorizer.Request{Token: f.valid, Method: p.method, Route: p.path})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := policyAllows(cached.PolicyDocument, arn(p.method, p.path)), d.Outcome == authorizer.Allowed; got != want {
			t.Errorf("%s %s: the policy allows=%v; a fresh decision allows=%v", p.method, p.path, got, want)
		}
	}
}

// TestWildcardNeverGrantsAdmin: "a*" covers "admin" by spelling only; manage and admin count
// only by name, so a manage token cannot mint a token that passes for admin.
func TestWildcardNeverGrantsAdmin(t *testing.T) {
	f := newFixture(t)
	manager := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}
	_, plain, err := f.svc.Create(context.Background(), manager, token.CreateInput{Name: "sly", Permissions: []string{"a*", "m*"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := authorizer.ParseRouteMap(`{"GET /admin/*": ["admin"], "GET /ops/*": ["manage"], "GET /apps/*": ["apps"]}`)
	if err != nil {
		t.Fatal(err)
	}
	a := f.authorizer(t, func(c *authorizer.Config) { c.Routes = m })
	for path, want := range map[string]authorizer.Outcome{"/admin/x": authorizer.Forbidden, "/ops/x": authorizer.Forbidden, "/apps/x": authorizer.Allowed} {
		if d, err := a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: path}); err != nil || d.Outcome != want {
			t.Errorf("GET %s with [a* m*]: %+v %v; want outcome %d", path, d, err, want)
		}
	}
	if v, err := f.svc.Verify(context.Background(), plain, token.PermAdmin); err != nil || v.Code != token.CodeInsufficientPermissions {
		t.Errorf("verify with admin required: %s %v; want INSUFFICIENT_PERMISSIONS", v.Code, err)
	}
}

// TestRotatedSecretIsSeenBeforeTheCacheExpires: a secret that does not match the cached record
// triggers one fresh read (at most one a second per token), so a rotated-in secret works at once.
func TestRotatedSecretIsSeenBeforeTheCacheExpires(t *testing.T) {
	f := newFixture(t)
	a := f.authorizer(t, nil)
	ctx := context.Background()
	authorize := func(tok string) authorizer.Outcome {
		t.Helper()
		d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/"})
		if err != nil {
			t.Fatal(err)
		}
		return d.Outcome
	}
	if authorize(f.valid) != authorizer.Allowed {
		t.Fatal("valid token refused")
	}
	p, _ := token.Parse("tok", f.valid)
	_, rotated, err := f.svc.Rotate(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, p.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	f.store.finds.Store(0)
	if authorize(rotated) != authorizer.Allowed {
		t.Fatal("the rotated-in secret is refused while the old record is cached")
	}
	if authorize(f.valid) != authorizer.Unauthorized {
		t.Fatal("the rotated-out secret still works after the refresh")
	}
	for range 50 { // wrong secrets for a known id: no more reads inside the second
		authorize(token.Format("tok", "", p.ID, token.NewSecret()))
	}
	if got := f.store.finds.Load(); got != 1 {
		t.Fatalf("store reads: %d; want 1", got)
	}
}
