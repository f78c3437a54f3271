package authorizer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// The API of the property test, as API Gateway defines it: its routes (HTTP API route keys, REST
// resources) and the route map its authorizer instance is configured with.
var (
	propertyRoutes = []struct{ method, route string }{
		{"GET", "/files/{id}"}, {"DELETE", "/files/{id}"}, {"POST", "/upload"},
		{"GET", "/admin/{section}"}, {"ANY", "/things/{proxy+}"},
	}
	propertyMap = `{"GET /files/{id}": ["list"], "DELETE /files/{id}": ["delete"], "POST /upload": ["upload"],
		"GET /admin/{section}": ["admin:read"], "ANY /things/{proxy+}": ["things"], "$default": ["misc"]}`
	// Path parameters a client may send: encoded slashes, globs, dot segments, spaces; {id} and
	// {section} take one segment, as API Gateway matches them, {proxy+} any number.
	propertyParams = []string{"abc", "a%2Fb", "*", "..", "x y", "%25", "files", "secret"}
	propertyProxy  = []string{"a/b/c", "../admin/x", "*/*", "files/abc"}
	// Paths an HTTP API routes to $default: no route matches them, though some look like one.
	propertyDefault = []string{"/other/x", "/files/abc/secret", "/files", "/upload/more", "/admin/a/b", "/things"}
	propertyPerms   = []string{"list", "delete", "upload", "admin:read", "things", "misc", "files:*", "admin:*"}
	propertyIPs     = []string{"192.0.2.10", "198.51.100.7", "2001:db8::1"}
)

// propertyRequest is one request to the API, as API Gateway would describe it to the authorizer.
type propertyRequest struct {
	method   string
	routeKey string // "GET /files/{id}", "ANY /things/{proxy+}" or "$default"
	resource string // the REST resource (the routeKey's path; "/{proxy+}" for $default)
	path     string // the actual path, as it appears in the method ARN (stage removed)
	ip       string
}

func randomRequest(r *rand.Rand, ip string, rest bool) propertyRequest {
	param := propertyParams[r.IntN(len(propertyParams))]
	if !rest && r.IntN(5) == 0 {
		method := []string{"GET", "POST", "PUT", "DELETE"}[r.IntN(4)]
		path := propertyDefault[r.IntN(len(propertyDefault))]
		return propertyRequest{method: method, routeKey: authorizer.DefaultRoute, resource: "/{proxy+}", path: path, ip: ip}
	}
	rt := propertyRoutes[r.IntN(len(propertyRoutes))]
	method := rt.method
	if method == "ANY" {
		method = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}[r.IntN(5)]
	}
	path := strings.Replace(strings.Replace(rt.route, "{id}", param, 1), "{section}", param, 1)
	path = strings.Replace(path, "{proxy+}", propertyProxy[r.IntN(len(propertyProxy))], 1)
	return propertyRequest{method: method, routeKey: rt.method + " " + rt.route, resource: rt.route, path: path, ip: ip}
}

// propertyScenario is a token and its limit state, rebuilt identically from a seed so that a
// fresh call can be asked what it decides in the very state a cached answer was made in.
type propertyScenario struct {
	id, secret string
	perms      []string
	allowlist  bool
	quota      int64 // -1: none
	rateUsed   bool  // a rate limit of 1 per hour whose window is already used
	cacheTTL   time.Duration
}

func randomScenario(r *rand.Rand) propertyScenario {
	s := propertyScenario{id: token.NewID(), secret: token.NewSecret(), quota: -1, cacheTTL: time.Duration(r.IntN(3)) * 5 * time.Second}
	for _, p := range propertyPerms {
		if r.IntN(2) == 0 {
			s.perms = append(s.perms, p)
		}
	}
	if len(s.perms) == 0 {
		s.perms = []string{"read"}
	}
	s.allowlist = r.IntN(3) == 0
	switch r.IntN(4) {
	case 0:
		s.quota = 0
	case 1:
		s.quota = 3
	}
	s.rateUsed = r.IntN(4) == 0
	return s
}

// build makes the scenario's store, token and authorizer, the same every time: the token's id
// and secret are the scenario's, so a token presented to one build is the token of every build.
func (s propertyScenario) build(t *testing.T, iam bool) (*authorizer.Authorizer, string) {
	t.Helper()
	clock := storetest.NewClock()
	store := memstore.New(clock.Now)
	tok := storetest.NewToken("alice", clock.Now())
	tok.ID, tok.Env, tok.Hint = s.id, "", token.Hint("tok", "", s.id)
	tok.SecretHash, tok.Permissions = token.HashSecret(s.secret), s.perms
	if s.allowlist {
		tok.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	}
	if s.quota >= 0 {
		q := s.quota
		tok.Remaining, tok.RefilledAt = &q, clock.Now()
	}
	if s.rateUsed {
		tok.RateLimit = &token.RateLimit{Limit: 1, Window: time.Hour}
	}
	storetest.MustCreate(t, store, tok)
	if s.rateUsed {
		if _, ok, err := store.CountRequest(context.Background(), tok.ID, token.WindowStart(clock.Now(), time.Hour), time.Hour, 1); err != nil || !ok {
			t.Fatalf("using the rate window: %v %v", ok, err)
		}
	}
	routes, err := authorizer.ParseRouteMap(propertyMap)
	if err != nil {
		t.Fatal(err)
	}
	return authorizer.New(store, authorizer.Config{
		Routes: routes, CacheTTL: s.cacheTTL, UsageInterval: time.Minute, HTTPIAMPolicy: iam, Now: clock.Now,
	}), token.Format("tok", "", s.id, s.secret)
}

// propertyKind is one way of attaching the authorizer: how a request becomes an event, what API
// Gateway makes of the answer, and what its result cache is keyed on (the identity sources the
// README's attach snippets configure).
type propertyKind struct {
	name string
	iam  bool
	// decide answers a request; answer is what API Gateway caches.
	decide func(t *testing.T, a *authorizer.Authorizer, tok string, req propertyRequest) (answer any, failed bool)
	// allows applies a (possibly cached) answer to a request.
	allows func(answer any, req propertyRequest) bool
	// key is the part of the cache key a request contributes besides the token.
	key func(req propertyRequest) string
	// rest: a REST API, which has no $default route.
	rest bool
}

const propertyBase = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"

var propertyKinds = []propertyKind{
	{
		name: "REST TOKEN", // cache key: the Authorization header alone
		decide: func(t *testing.T, a *authorizer.Authorizer, tok string, req propertyRequest) (any, bool) {
			resp, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
				Type: "TOKEN", AuthorizationToken: "Bearer " + tok, MethodArn: propertyBase + "/" + req.method + req.path,
			})
			return resp.PolicyDocument, err != nil
		},
		allows: restAllows,
		key:    func(propertyRequest) string { return "" },
		rest:   true,
	},
	{
		name: "REST REQUEST", // cache key: header, source IP, method and resource (the README's identity sources)
		decide: func(t *testing.T, a *authorizer.Authorizer, tok string, req propertyRequest) (any, bool) {
			e := events.APIGatewayCustomAuthorizerRequestTypeRequest{
				Type: "REQUEST", MethodArn: propertyBase + "/" + req.method + req.path, HTTPMethod: req.method,
				Resource: req.resource, Path: "/prod" + req.path, Headers: map[string]string{"Authorization": "Bearer " + tok},
			}
			e.RequestContext.Identity.SourceIP = req.ip
			e.RequestContext.Stage = "prod"
			resp, err := a.HandleRequest(context.Background(), e)
			return resp.PolicyDocument, err != nil
		},
		allows: restAllows,
		key:    func(req propertyRequest) string { return req.ip + " " + req.method + " " + req.resource },
		rest:   true,
	},
	{
		name: "HTTP API, IAM policy", iam: true, // cache key: header, source IP and routeKey
		decide: func(t *testing.T, a *authorizer.Authorizer, tok string, req propertyRequest) (any, bool) {
			resp, err := a.HandleHTTP(context.Background(), propertyHTTPEvent(req, tok))
			if err != nil {
				return nil, true
			}
			return resp.(events.APIGatewayV2CustomAuthorizerIAMPolicyResponse).PolicyDocument, false
		},
		allows: restAllows,
		key:    func(req propertyRequest) string { return req.ip + " " + req.routeKey },
	},
	{
		name: "HTTP API, simple response", // a yes/no cannot cover other routes: the key has the routeKey
		decide: func(t *testing.T, a *authorizer.Authorizer, tok string, req propertyRequest) (any, bool) {
			resp, err := a.HandleHTTP(context.Background(), propertyHTTPEvent(req, tok))
			if err != nil {
				return nil, true
			}
			return resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse).IsAuthorized, false
		},
		allows: func(answer any, _ propertyRequest) bool { return answer.(bool) },
		key:    func(req propertyRequest) string { return req.ip + " " + req.routeKey },
	},
}

func restAllows(answer any, req propertyRequest) bool {
	return policyAllows(answer.(events.APIGatewayCustomAuthorizerPolicy), propertyBase+"/"+req.method+req.path)
}

func propertyHTTPEvent(req propertyRequest, tok string) events.APIGatewayV2CustomAuthorizerV2Request {
	e := events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: propertyBase + "/" + req.method + req.path, RouteKey: req.routeKey,
		RawPath: "/prod" + req.path, Headers: map[string]string{"authorization": "Bearer " + tok},
	}
	e.RequestContext.HTTP.Method = req.method
	e.RequestContext.HTTP.Path = "/prod" + req.path
	e.RequestContext.HTTP.SourceIP = req.ip
	e.RequestContext.Stage = "prod"
	return e
}

// TestCachedAnswerDecidesLikeAFreshCall is the property behind "policies are safe to cache": for
// random tokens (permissions, IP allowlist, quota and rate-limit state, memory cache TTL) and
// random sequences of requests (route, method, path parameters, source IP), every answer API
// Gateway would serve from its result cache decides the later request exactly as a fresh call
// in the same state would. A decision that skipped the allowlist or a limit for a route the token
// lacks, and allowed the others, fails here.
func TestCachedAnswerDecidesLikeAFreshCall(t *testing.T) {
	const trials, sequence = 300, 12
	for _, kind := range propertyKinds {
		t.Run(kind.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(len(kind.name))))
			compared, cachedAllows, cachedDenies := 0, 0, 0
			for trial := range trials {
				sc := randomScenario(r)
				a, tok := sc.build(t, kind.iam)
				cache := map[string]any{} // API Gateway's result cache for this token
				for range sequence {
					req := randomRequest(r, propertyIPs[r.IntN(len(propertyIPs))], kind.rest)
					key := kind.key(req)
					if answer, ok := cache[key]; ok {
						// What a fresh call decides in the state the cached answer was made in.
						fresh, _ := sc.build(t, kind.iam)
						want, failed := kind.decide(t, fresh, tok, req)
						wantAllow := !failed && kind.allows(want, req)
						if got := kind.allows(answer, req); got != wantAllow {
							t.Fatalf("trial %d, scenario %+v: the cached answer decides %s %s (%s, %s) allow=%v; a fresh call: %v",
								trial, sc, req.method, req.path, req.routeKey, req.ip, got, wantAllow)
						}
						compared++
						if wantAllow {
							cachedAllows++
						} else {
							cachedDenies++
						}
						continue
					}
					answer, failed := kind.decide(t, a, tok, req)
					if failed {
						t.Fatalf("trial %d: the authorizer failed", trial)
					}
					// The real state moved on (a use counted); the cached answer stays as it was
					// made, and the fresh calls it is compared with start from that state again.
					cache[key] = answer
					a, _ = sc.build(t, kind.iam)
				}
			}
			t.Logf("%d cached answers compared: %d allow, %d deny", compared, cachedAllows, cachedDenies)
			if cachedAllows < 50 || cachedDenies < 50 {
				t.Fatalf("%d allows and %d denies served from the cache: too few of one kind to prove anything", cachedAllows, cachedDenies)
			}
		})
	}
}

// TestForbiddenRouteSkipsNoCheck is the reported hole, as one case: a caller outside the token's
// allowlist (or over its quota) asks for a route the token lacks. The answer, cached per token,
// must allow nothing, or it would open the routes the token has without the allowlist or quota.
func TestForbiddenRouteSkipsNoCheck(t *testing.T) {
	for _, sc := range []propertyScenario{
		{id: token.NewID(), secret: token.NewSecret(), perms: []string{"list"}, allowlist: true, quota: -1},
		{id: token.NewID(), secret: token.NewSecret(), perms: []string{"list"}, quota: 0},
		{id: token.NewID(), secret: token.NewSecret(), perms: []string{"list"}, quota: -1, rateUsed: true},
	} {
		a, tok := sc.build(t, false)
		forbidden := propertyRequest{method: "POST", routeKey: "POST /upload", resource: "/upload", path: "/upload", ip: "198.51.100.7"}
		resp, err := a.HandleToken(context.Background(), events.APIGatewayCustomAuthorizerRequest{
			Type: "TOKEN", AuthorizationToken: "Bearer " + tok, MethodArn: propertyBase + "/POST/upload",
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range resp.PolicyDocument.Statement {
			if st.Effect == "Allow" {
				t.Errorf("scenario %+v: the answer for %s allows %v", sc, forbidden.routeKey, st.Resource)
			}
		}
	}
}

// TestRoutesAsAPIGatewayMatchedThem: decisions follow the route API Gateway matched (routeKey,
// REST resource), never the raw path, so stage names, encoded characters, dot segments and
// trailing slashes in the path change nothing.
func TestRoutesAsAPIGatewayMatchedThem(t *testing.T) {
	sc := propertyScenario{id: token.NewID(), secret: token.NewSecret(), perms: []string{"list", "misc"}, quota: -1}
	for _, stage := range []string{"$default", "prod", "v1-beta"} {
		for _, tc := range []struct {
			routeKey, resource, path, method string
			want                             bool
		}{
			{"GET /files/{id}", "/files/{id}", "/files/abc", "GET", true},
			{"GET /files/{id}", "/files/{id}", "/files/a%2F..%2Fadmin", "GET", true},
			{"GET /files/{id}", "/files/{id}", "/files/*", "GET", true},
			{"GET /files/{id}", "/files/{id}", "/files/abc/", "GET", true},
			{"DELETE /files/{id}", "/files/{id}", "/files/abc", "DELETE", false},
			{"GET /admin/{section}", "/admin/{section}", "/admin/..", "GET", false},
			{"ANY /things/{proxy+}", "/things/{proxy+}", "/things/a/b", "PUT", false},
			{"$default", "/{proxy+}", "/admin/users", "GET", true}, // the $default route needs misc, which it has
			{"POST /upload", "/upload", "/upload", "POST", false},
		} {
			req := propertyRequest{method: tc.method, routeKey: tc.routeKey, resource: tc.resource, path: tc.path, ip: "192.0.2.1"}
			a, tok := sc.build(t, false)
			e := propertyHTTPEvent(req, tok)
			e.RequestContext.Stage = stage
			e.RawPath = "/" + stage + tc.path
			if stage == "$default" {
				e.RawPath = tc.path
			}
			e.RequestContext.HTTP.Path = e.RawPath
			resp, err := a.HandleHTTP(context.Background(), e)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse).IsAuthorized; got != tc.want {
				t.Errorf("HTTP stage %s, %s %s: authorized %v; want %v", stage, tc.routeKey, e.RawPath, got, tc.want)
			}
			if tc.routeKey == authorizer.DefaultRoute {
				continue // a REST API has no $default route
			}
			a, _ = sc.build(t, false)
			re := events.APIGatewayCustomAuthorizerRequestTypeRequest{
				Type: "REQUEST", MethodArn: fmt.Sprintf("arn:aws:execute-api:eu-west-1:1:api/%s/%s%s", stage, tc.method, tc.path),
				HTTPMethod: tc.method, Resource: tc.resource, Path: "/" + stage + tc.path,
				Headers: map[string]string{"Authorization": "Bearer " + tok},
			}
			rest, err := a.HandleRequest(context.Background(), re)
			if got := err == nil && policyAllows(rest.PolicyDocument, re.MethodArn); got != tc.want {
				t.Errorf("REST REQUEST stage %s, %s %s: allowed %v (%v); want %v", stage, tc.method, tc.resource, got, err, tc.want)
			}
		}
	}

	// An event without the route API Gateway matched is not guessed at from its path.
	a, tok := sc.build(t, false)
	e := propertyHTTPEvent(propertyRequest{method: "GET", path: "/files/a", ip: "192.0.2.1"}, tok)
	if _, err := a.HandleHTTP(context.Background(), e); err == nil {
		t.Error("HTTP event without routeKey: authorized; want an error (500)")
	}
	if _, err := a.HandleRequest(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: propertyBase + "/GET/files/a", HTTPMethod: "GET", Headers: map[string]string{"Authorization": "Bearer " + tok},
	}); err == nil {
		t.Error("REQUEST event without resource: authorized; want an error (500)")
	}
}

// TestRefusedRequestIsDeniedByItsOwnPolicy: route-map patterns cannot say all of API Gateway's
// routing ($default takes what no route matches; a resource may be missing from the map), so the
// answer to a refused request denies that request's own ARN, whatever the patterns allow.
func TestRefusedRequestIsDeniedByItsOwnPolicy(t *testing.T) {
	sc := propertyScenario{id: token.NewID(), secret: token.NewSecret(), perms: []string{"list"}, quota: -1}
	a, tok := sc.build(t, true)
	e := propertyHTTPEvent(propertyRequest{method: "GET", routeKey: authorizer.DefaultRoute, path: "/files/abc/secret", ip: "192.0.2.1"}, tok)
	resp, err := a.HandleHTTP(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if policyAllows(resp.(events.APIGatewayV2CustomAuthorizerIAMPolicyResponse).PolicyDocument, e.RouteArn) {
		t.Errorf("$default needs misc, the token has list only, yet its answer allows %s", e.RouteArn)
	}
	rest := events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: propertyBase + "/GET/files/abc/versions", HTTPMethod: "GET",
		Resource: "/files/{id}/versions", Headers: map[string]string{"Authorization": "Bearer " + tok},
	}
	r2, err := a.HandleRequest(context.Background(), rest)
	if err != nil {
		t.Fatal(err)
	}
	if policyAllows(r2.PolicyDocument, rest.MethodArn) {
		t.Errorf("the resource /files/{id}/versions is in no route of the map, yet its answer allows %s", rest.MethodArn)
	}
}
