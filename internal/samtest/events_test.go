package samtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// eventCase is one file of events/ with the answer its function must give.
type eventCase struct {
	file     string
	function string // directory under functions/
	status   int
	target   bool              // the path (or ?tokenId) names a token of the caller's owner, which the test creates
	family   bool              // the target has 3 descendants (createdBy), which the test creates
	limited  bool              // the tokens the test creates (the caller, the target, the token in the body) have a rate limit and a quota with refill
	quota    bool              // the target alone has those limits (its caller has none, so it may lift them)
	waiting  bool              // the token in the body was rotated with grace untilFirstUse, and this is its new secret's first use
	contains string            // in the response body
	env      map[string]string // the function's environment beyond its defaults
}

var eventCases = []eventCase{
	{file: "create.json", function: "create", status: http.StatusCreated, limited: true, contains: `"token":"tok_live_`},
	{file: "create-admin-for-owner.json", function: "create", status: http.StatusCreated, contains: `"owner":"alice"`},
	{file: "create-forbidden.json", function: "create", status: http.StatusForbidden, contains: `"code":"forbidden"`},
	{file: "list.json", function: "list", status: http.StatusOK, limited: true, contains: `"rateLimit":{"limit":100,"windowSeconds":60,"count":0,"remaining":100,`},
	{file: "self.json", function: "self", status: http.StatusOK, limited: true, contains: `"id":"Q7mZ2xK9pL4wN8rT"`},
	{file: "get.json", function: "get", status: http.StatusOK, target: true, limited: true, contains: `"id":"4f9Xa1bC2dE3fG4h"`},
	{file: "get-not-found.json", function: "get", status: http.StatusNotFound, contains: `"code":"not_found"`},
	{file: "update.json", function: "update", status: http.StatusOK, target: true, contains: `"status":"disabled"`},
	// A new quota puts the quota counter, a new refill updates it, no quota deletes it.
	{file: "update-quota.json", function: "update", status: http.StatusOK, target: true, quota: true, contains: `"remaining":5,`},
	{file: "update-refill.json", function: "update", status: http.StatusOK, target: true, quota: true, contains: `"refill":{"amount":8,"intervalSeconds":3600,`},
	{file: "update-unlimited.json", function: "update", status: http.StatusOK, target: true, quota: true, contains: `"remaining":null,"refill":null`},
	{file: "revoke.json", function: "revoke", status: http.StatusOK, target: true, limited: true, contains: `"status":"revoked"`},
	{file: "revoke-cascade.json", function: "revoke", status: http.StatusOK, target: true, family: true, contains: `"descendantsRevoked":3`},
	{file: "usage.json", function: "usage", status: http.StatusOK, target: true, limited: true, contains: `{"tokenId":"4f9Xa1bC2dE3fG4h","days":[{"date":"`},
	{file: "rotate.json", function: "rotate", status: http.StatusOK, target: true, limited: true, contains: `"token":"tok_live_4f9Xa1bC2dE3fG4h`},
	{file: "verify.json", function: "verify", status: http.StatusOK, waiting: true, contains: `"valid":true`},
	{file: "verify-limited.json", function: "verify", status: http.StatusOK, limited: true, contains: `"valid":true`},
	{file: "verify-malformed.json", function: "verify", status: http.StatusOK, contains: `"code":"MALFORMED"`},
	{file: "audit.json", function: "audit", status: http.StatusOK, target: true, contains: `"events":[{"id":`},
	{file: "audit-admin.json", function: "audit", status: http.StatusOK, contains: `"action":"create","tokenId":"Q7mZ2xK9pL4wN8rT","owner":"admin"`},
	{file: "openapi.json", function: "openapi", status: http.StatusOK, contains: `{"openapi":"3.1.0",`},
	{file: "me.json", function: "me", status: http.StatusOK, contains: `{"owner":"acme","admin":false,"permissions":["manage","list"],"tokenId":"Q7mZ2xK9pL4wN8rT"}`},
	{file: "dashboard.json", function: "dashboard", status: http.StatusOK, contains: `<script type="module" src="/ui/`},
	{file: "dashboard-asset.json", function: "dashboard", status: http.StatusOK, contains: `import { initTokens, startTokens, stopTokens } from './tokens.js';`},
	// Signed by the key of leakSigningKey, which the tests serve at LEAK_KEYS_URL (leakEnv).
	{file: "leaks.json", function: "leaks", status: http.StatusOK, limited: true, contains: `"label":"true_positive"},{"token_hash":`},
	{file: "leaks.json", function: "leaks", status: http.StatusOK, limited: true, contains: `"label":"true_positive"},{"token_hash":`,
		env: map[string]string{app.EnvLeakAction: "disable"}},
	{file: "revoke-by-token.json", function: "revoke-by-token", status: http.StatusOK, limited: true, contains: `{"status":"received"}`},
	// The scheduled event of the expiry reminders (TestExpiryRemindersBinary); it has no status.
	{file: "expiry-reminders.json", function: "expiry-reminders", contains: `"due":`},
	{file: "quota-events.json", function: "quota-events"},
	{file: "example-whoami.json", function: "example-whoami", status: http.StatusOK, contains: `"permissions":["upload","list"]`},
	{file: "example-whoami-no-context.json", function: "example-whoami", status: http.StatusUnauthorized, contains: `"valid":false`},
}

// authorizerEvents are the authorizer's (events/authorizer-*.json); pkg/authorizer's tests and
// TestAuthorizerBinary feed them.
const authorizerEvents = "authorizer-"

// TestEventsCovered: every file of events/ has its case, and every function has an event.
func TestEventsCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, authorizerEvents) {
			continue
		}
		if !slices.ContainsFunc(eventCases, func(c eventCase) bool { return c.file == name }) {
			t.Errorf("events/%s has no case in eventCases: add its function and expected status", name)
		}
	}
	for _, dir := range functionDirs() {
		has := slices.ContainsFunc(eventCases, func(c eventCase) bool { return c.function == dir })
		if dir == "authorizer" {
			has = slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(filepath.Base(f), authorizerEvents) })
		}
		if !has {
			t.Errorf("functions/%s has no event in events/", dir)
		}
	}
}

// TestRouteEvents feeds every route event to its function's handler, wired exactly as the
// function's main wires it (app.LambdaRouteWithStore, httpadapter.NewV2), on a memory store
// holding the tokens the event names.
func TestRouteEvents(t *testing.T) {
	for _, tc := range eventCases {
		rt, ok := routeOf(tc.function)
		if !ok {
			continue // not a route function: TestOtherFunctionEvents
		}
		t.Run(tc.file, func(t *testing.T) {
			ev := mustEvent(t, tc.file)
			if ev.RouteKey != rt.Pattern || ev.RequestContext.RouteKey != rt.Pattern {
				t.Errorf("routeKey %q / requestContext.routeKey %q, want %q (the route of functions/%s)",
					ev.RouteKey, ev.RequestContext.RouteKey, rt.Pattern, tc.function)
			}
			if (ev.RequestContext.Authorizer != nil) != rt.Auth {
				t.Errorf("requestContext.authorizer present: %v; API Gateway sets it for routes with auth: %v", ev.RequestContext.Authorizer != nil, rt.Auth)
			}
			store := memstore.New(nil)
			seed(t, store, ev, tc, "")
			resp := mustProxy(t, store, rt.Pattern, ev, leakEnv(t, tc))
			checkAnswer(t, tc, resp.StatusCode, resp.Body)
		})
	}
}

func routeOf(function string) (httpapi.Route, bool) {
	i := slices.IndexFunc(httpapi.Routes, func(r httpapi.Route) bool { return r.Function == function })
	if i < 0 {
		return httpapi.Route{}, false
	}
	return httpapi.Routes[i], true
}

func mustEvent(t *testing.T, file string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", file))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("events/%s: %v", file, err)
	}
	if ev.Version != "2.0" {
		t.Fatalf("events/%s: version %q, want HTTP API payload 2.0", file, ev.Version)
	}
	return ev
}

// mustProxy answers ev as the route's function does, with its default configuration but for
// env, and writes the uses it counted, as the function does beside a later invocation or at
// SIGTERM.
func mustProxy(t *testing.T, store token.Store, pattern string, ev events.APIGatewayV2HTTPRequest, env map[string]string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	h, err := app.LambdaRouteWithStore(store, func(k string) string { return env[k] }, pattern)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpadapter.NewV2(h).ProxyWithContext(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	h.FlushUsage(context.Background(), true) // what the function writes at the latest at SIGTERM
	return resp
}

func checkAnswer(t *testing.T, tc eventCase, status int, body string) {
	t.Helper()
	if status != tc.status {
		t.Errorf("events/%s: status %d, want %d; body %s", tc.file, status, tc.status, body)
	}
	if !strings.Contains(body, tc.contains) {
		t.Errorf("events/%s: body lacks %s: %s", tc.file, tc.contains, body)
	}
}

// seed creates the tokens an event names, as they would exist in a deployment, each with the
// audit event of its creation: the caller of its authorizer context, the token its path or its
// ?tokenId names when tc.target is set (of the caller's owner, with clientID), that token's
// descendants when tc.family is set (a child with clientID-child, another child, a grandchild),
// and the tokens a body presents (a verify's, a revoke's, a leak report's; each with a clientId
// derived from clientID, when it is set).
func seed(t *testing.T, store token.Store, ev events.APIGatewayV2HTTPRequest, tc eventCase, clientID string) {
	t.Helper()
	var owner string
	if a := ev.RequestContext.Authorizer; a != nil {
		c := a.Lambda
		owner, _ = c[authorizer.ContextOwner].(string)
		id, _ := c[authorizer.ContextTokenID].(string)
		perms, _ := c[authorizer.ContextPermissions].(string)
		caller := newToken(id, owner, strings.Fields(perms), token.NewSecret())
		if tc.limited {
			limit(caller)
		}
		// The caller is the token the context describes: its expiry is the ceiling of what it
		// creates (token.Service.Create hands on no more than the caller holds).
		expiresAt, _ := c[authorizer.ContextExpiresAt].(string)
		if at, err := time.Parse(time.RFC3339, expiresAt); err == nil {
			caller.ExpiresAt = at
		}
		mustCreate(t, store, caller)
	}
	if tc.target {
		id := ev.PathParameters["id"]
		if id == "" {
			id = ev.QueryStringParameters["tokenId"]
		}
		tok := newToken(id, owner, []string{"upload", "list"}, token.NewSecret())
		tok.ClientID = clientID
		if tc.limited || tc.quota {
			limit(tok)
		}
		mustCreate(t, store, tok)
		if tc.family {
			child, other := newChild(tok), newChild(tok)
			if clientID != "" {
				child.ClientID = clientID + "-child"
			}
			for _, d := range []*token.Token{child, other, newChild(child)} {
				mustCreate(t, store, d)
			}
		}
	}
	var body struct {
		Token string `json:"token"`
	}
	var reported []struct {
		Token string `json:"token"`
	}
	var presented []string
	if json.Unmarshal([]byte(ev.Body), &body) == nil && body.Token != "" {
		presented = append(presented, body.Token)
	} else if json.Unmarshal([]byte(ev.Body), &reported) == nil { // a leak report
		for _, r := range reported {
			presented = append(presented, r.Token)
		}
	}
	for i, plaintext := range presented {
		if p, ok := token.Parse(token.DefaultPrefix, plaintext); ok {
			tok := newToken(p.ID, "acme", []string{"upload", "list"}, p.Secret)
			tok.Env = p.Env
			if clientID != "" {
				tok.ClientID = fmt.Sprintf("%s-presented-%d", clientID, i)
			}
			if tc.limited {
				limit(tok)
			}
			if tc.waiting {
				tok.PrevSecretHash, tok.PrevSecretUntil = token.HashSecret(token.NewSecret()), time.Now().Add(time.Hour)
				tok.PrevUntilFirstUse = true
			}
			mustCreate(t, store, tok)
		}
	}
}

// limit gives tok a rate limit and a quota with refill, 2 of 10 uses left: its first use takes it
// to the low mark (10 %: 1), which records a quota event (QUOTAEVENT#).
func limit(tok *token.Token) {
	left := int64(2)
	tok.RateLimit = &token.RateLimit{Limit: 100, Window: time.Minute}
	tok.Remaining, tok.Refill, tok.RefilledAt = &left, &token.Refill{Amount: 10, Interval: time.Hour}, tok.CreatedAt
}

func newToken(id, owner string, perms []string, secret string) *token.Token {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return &token.Token{
		ID:          id,
		Owner:       owner,
		Name:        "seeded " + id[:4],
		Env:         "live",
		Hint:        token.Hint(token.DefaultPrefix, "live", id),
		Permissions: perms,
		SecretHash:  token.HashSecret(secret),
		CreatedAt:   now,
		UpdatedAt:   now,
		ExpiresAt:   now.Add(30 * token.Day),
		Enabled:     true,
		Version:     1,
	}
}

// newChild is a token created by parent, of parent's owner.
func newChild(parent *token.Token) *token.Token {
	child := newToken(token.NewID(), parent.Owner, []string{"upload"}, token.NewSecret())
	child.CreatedBy = parent.ID
	return child
}

// mustCreate stores tok with the audit event of its creation at the command line.
func mustCreate(t *testing.T, store token.Store, tok *token.Token) {
	t.Helper()
	ev := &token.AuditEvent{
		ID: token.NewID(), At: tok.CreatedAt, Action: token.ActionCreate, TargetID: tok.ID, TargetOwner: tok.Owner,
		RequestID: "cli", ExpiresAt: tok.CreatedAt.Add(token.DefaultAuditRetention),
	}
	if err := store.CreateToken(context.Background(), tok, ev); err != nil {
		t.Fatalf("create token %s: %v", tok.ID, err)
	}
}
