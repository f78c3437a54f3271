package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// env is one API over a memory store with a settable clock and captured logs.
type env struct {
	t       *testing.T
	clock   *storetest.Clock
	store   token.Store
	svc     *token.Service
	handler http.Handler
	authz   *authorizer.Authorizer // the management authorizer of handler
	logs    *bytes.Buffer
	admin   string // plaintext of an admin token of owner "admin"
	seen    []string
}

func newEnv(t *testing.T, store token.Store) *env {
	t.Helper()
	clock := storetest.NewClock()
	if store == nil {
		store = memstore.New(clock.Now)
	}
	svc, err := token.NewService(store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	authz := authorizer.New(store, authorizer.Config{Now: clock.Now, Logger: logger})
	api := &httpapi.API{Service: svc, Authenticate: authz.AuthenticateRequest, Logger: logger}
	e := &env{t: t, clock: clock, store: store, svc: svc, handler: api.Handler(), authz: authz, logs: logs}
	if _, isMem := store.(*memstore.Store); isMem {
		e.admin = e.mint("admin", token.PermAdmin, token.PermManage)
	}
	return e
}

// authenticator authenticates management calls as the local server does, through the Lambda
// authorizer's code, with its cache and usage throttling off so that every call is seen at once.
func authenticator(store token.Store, now func() time.Time, logger *slog.Logger) httpapi.Authenticator {
	return authorizer.New(store, authorizer.Config{Now: now, Logger: logger}).AuthenticateRequest
}

// mint creates a token directly through the service, as the CLI does.
func (e *env) mint(owner string, perms ...string) string {
	e.t.Helper()
	_, plaintext, err := e.svc.Create(context.Background(), token.Principal{Owner: owner, Permissions: []string{token.PermAdmin}},
		token.CreateInput{Name: "minted", Permissions: perms})
	if err != nil {
		e.t.Fatalf("mint: %v", err)
	}
	return plaintext
}

// snapshot describes every stored token of every owner used in the tests, usage fields aside
// (authenticating a call counts as a use).
func (e *env) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	for _, owner := range []string{"admin", "alice", "bob", "u"} {
		page, err := e.svc.List(context.Background(), token.Principal{Owner: owner, Permissions: []string{token.PermAdmin}},
			token.ListInput{Status: "all", Limit: token.MaxListLimit})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, t := range page.Tokens {
			c := t.Clone()
			c.LastUsedAt, c.UsageCount = time.Time{}, 0
			limits := ""
			if c.RateLimit != nil {
				limits = fmt.Sprint(*c.RateLimit)
			}
			if c.Remaining != nil {
				limits += fmt.Sprint(" remaining ", *c.Remaining)
			}
			if c.Refill != nil {
				limits += fmt.Sprint(" refill ", *c.Refill)
			}
			c.RateLimit, c.Remaining, c.Refill = nil, nil, nil
			fmt.Fprintf(&b, "%+v %s\n", *c, limits)
		}
	}
	return b.String()
}

type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (e *env) do(method, path, bearer, body string) response {
	e.t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		r.Header.Set("Authorization", "Bearer "+bearer)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	record(e.t, r, body, w) // for the OpenAPI contract check (openapi_test.go)
	resp := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	e.seen = append(e.seen, resp.raw)
	if err := json.Unmarshal(w.Body.Bytes(), &resp.body); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, resp.raw)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp
}

// must does a request and fails the test unless it answers want.
func (e *env) must(want int, method, path, bearer, body string) response {
	e.t.Helper()
	resp := e.do(method, path, bearer, body)
	if resp.status != want {
		e.t.Fatalf("%s %s %s: status %d %s; want %d", method, path, body, resp.status, resp.raw, want)
	}
	return resp
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

func (r response) ids() []string {
	var ids []string
	for _, item := range r.body["tokens"].([]any) {
		ids = append(ids, item.(map[string]any)["id"].(string))
	}
	return ids
}

var recordKeys = []string{"id", "name", "hint", "owner", "permissions", "status", "createdAt", "updatedAt",
	"lastUsedAt", "expiresAt", "autoDelete", "enabled", "usageCount", "clientId", "meta"}

func assertRecord(t *testing.T, obj map[string]any) {
	t.Helper()
	for _, k := range recordKeys {
		if _, ok := obj[k]; !ok {
			t.Errorf("record lacks %q (unset values must be null, not omitted): %v", k, obj)
		}
	}
	for _, k := range []string{"secretHash", "hash", "SecretHash", "prevSecretHash"} {
		if _, ok := obj[k]; ok {
			t.Errorf("record exposes %q", k)
		}
	}
}

func TestSeedFlowGenerateListRevoke(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name": "Upload Script"}`)
	assertRecord(t, created.body)
	tok, id := created.str("token"), created.str("id")
	if !strings.HasPrefix(tok, "tok_") || created.header.Get("Location") != "/tokens/"+id {
		t.Fatalf("create answered token %q location %q", tok, created.header.Get("Location"))
	}
	if got := created.body["permissions"].([]any); len(got) != 1 || got[0] != "read" {
		t.Fatalf("default permissions = %v; want [read]", got)
	}
	wantExpiry := e.clock.Now().Add(365 * token.Day).Format(time.RFC3339)
	if created.str("expiresAt") != wantExpiry || created.body["lastUsedAt"] != nil {
		t.Fatalf("expiresAt %v lastUsedAt %v; want %s and null", created.body["expiresAt"], created.body["lastUsedAt"], wantExpiry)
	}

	e.clock.Advance(time.Minute)
	e.must(200, "GET", "/tokens/self", tok, "")
	listed := e.must(200, "GET", "/tokens", e.admin, "")
	var item map[string]any
	for _, it := range listed.body["tokens"].([]any) {
		if it.(map[string]any)["id"] == id {
			item = it.(map[string]any)
		}
	}
	if item == nil {
		t.Fatalf("created token not listed: %s", listed.raw)
	}
	assertRecord(t, item)
	if _, ok := item["token"]; ok {
		t.Fatal("list shows the token value")
	}
	if item["lastUsedAt"] != e.clock.Now().Format(time.RFC3339) || item["usageCount"] != 1.0 {
		t.Fatalf("after one use: lastUsedAt %v usageCount %v", item["lastUsedAt"], item["usageCount"])
	}

	revoked := e.must(200, "DELETE", "/tokens/"+id, e.admin, "")
	if revoked.str("status") != "revoked" {
		t.Fatalf("revoke answered status %q", revoked.str("status"))
	}
	e.must(200, "DELETE", "/tokens/"+id, e.admin, "") // idempotent
	e.must(401, "GET", "/tokens/self", tok, "")
	if v := e.must(200, "POST", "/verify", "", `{"token":"`+tok+`"}`); v.body["valid"] != false || v.str("code") != "REVOKED" {
		t.Fatalf("verify of a revoked token: %s", v.raw)
	}
}

func TestSeedFlowPermissionsOwnerExpiryAutoDelete(t *testing.T) {
	e := newEnv(t, nil)
	// Permissions and owner set by an admin; expiresAt null means never.
	never := e.must(201, "POST", "/tokens", e.admin, `{"name":"Upload Only","permissions":["upload"],"owner":"alice","expiresAt":null,"autoDelete":false}`)
	if never.body["expiresAt"] != nil || never.str("owner") != "alice" {
		t.Fatalf("create: %s", never.raw)
	}
	// Update permissions, expiry and autoDelete.
	exp := e.clock.Now().Add(time.Hour).Format(time.RFC3339)
	updated := e.must(200, "PATCH", "/tokens/"+never.str("id"), e.admin, `{"permissions":["upload","delete"],"expiresAt":"`+exp+`","autoDelete":true}`)
	if fmt.Sprint(updated.body["permissions"]) != "[upload delete]" || updated.str("expiresAt") != exp || updated.body["autoDelete"] != true {
		t.Fatalf("update: %s", updated.raw)
	}
	// A second token that expires without autoDelete stays listed as expired.
	kept := e.must(201, "POST", "/tokens", e.admin, `{"name":"Kept","permissions":["upload"],"owner":"alice","expiresIn":1}`)

	e.clock.Advance(25 * time.Hour)
	v := e.must(200, "POST", "/verify", "", `{"token":"`+kept.str("token")+`"}`)
	if v.raw != `{"valid":false,"code":"EXPIRED","error":"Token expired"}`+"\n" {
		t.Fatalf("verify of an expired token: %s", v.raw)
	}
	// The autoDelete token is gone from every read before any cleanup runs.
	e.must(404, "GET", "/tokens/"+never.str("id"), e.admin, "")
	all := e.must(200, "GET", "/tokens?owner=alice&status=all", e.admin, "")
	if ids := all.ids(); !slices.Equal(ids, []string{kept.str("id")}) {
		t.Fatalf("list status=all: %v; want only %s", ids, kept.str("id"))
	}
	if v := e.must(200, "POST", "/verify", "", `{"token":"`+never.str("token")+`"}`); v.str("code") != "NOT_FOUND" {
		t.Fatalf("verify of a purged token: %s", v.raw)
	}
	expired := e.must(200, "GET", "/tokens?owner=alice&status=expired", e.admin, "")
	if ids := expired.ids(); len(ids) != 1 || expired.body["tokens"].([]any)[0].(map[string]any)["status"] != "expired" {
		t.Fatalf("list status=expired: %s", expired.raw)
	}
	e.must(200, "DELETE", "/tokens/"+kept.str("id"), e.admin, "")
}

func TestSeedFlowClientIDAndPerUserManagement(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.mint("alice", token.PermManage, "submit_score")
	body := `{"name":"Fervidex Token","permissions":["submit_score"],"clientId":"FERVIDEX_OA2_CLIENT_ID"}`
	first := e.must(201, "POST", "/tokens", alice, body)
	if first.str("clientId") != "FERVIDEX_OA2_CLIENT_ID" {
		t.Fatalf("clientId not pinned: %s", first.raw)
	}
	conflict := e.must(409, "POST", "/tokens", alice, body)
	if conflict.str("code") != token.ECONFLICT {
		t.Fatalf("second create: %s", conflict.raw)
	}
	bob := e.mint("bob", token.PermManage, "submit_score")
	e.must(201, "POST", "/tokens", bob, body) // another user's client slot
	e.must(404, "GET", "/tokens/"+first.str("id"), bob, "")
	e.must(200, "DELETE", "/tokens/"+first.str("id"), alice, "")
	e.must(201, "POST", "/tokens", alice, body) // revoke freed the slot
}

func TestSeedFlowExpiresInEnvRotateUsage(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"Production Token","expiresIn":30,"environment":"prod","permissions":["screenshot"]}`)
	if want := e.clock.Now().Add(30 * token.Day).Format(time.RFC3339); created.str("expiresAt") != want {
		t.Fatalf("expiresIn 30: expiresAt %s; want %s", created.str("expiresAt"), want)
	}
	if !strings.HasPrefix(created.str("token"), "tok_prod_") || !strings.HasPrefix(created.str("hint"), "tok_prod_") || !strings.HasSuffix(created.str("hint"), "...") {
		t.Fatalf("environment prefix: token %q hint %q", created.str("token")[:12], created.str("hint"))
	}
	for range 3 {
		e.must(200, "POST", "/verify", "", `{"token":"`+created.str("token")+`","permissions":["screenshot"]}`)
	}
	got := e.must(200, "GET", "/tokens/"+created.str("id"), e.admin, "")
	if got.body["usageCount"] != 3.0 || got.str("lastUsedAt") == "" || got.str("status") != "active" {
		t.Fatalf("usage after 3 verifies: %s", got.raw)
	}
	rotated := e.must(200, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, "")
	if rotated.str("token") == created.str("token") || rotated.str("id") != created.str("id") || rotated.str("expiresAt") != created.str("expiresAt") {
		t.Fatalf("rotate: %s", rotated.raw)
	}
	assertRecord(t, rotated.body)
	if v := e.must(200, "POST", "/verify", "", `{"token":"`+created.str("token")+`"}`); v.body["valid"] != false {
		t.Fatalf("old secret still valid after a rotation without grace: %s", v.raw)
	}
}

func TestRotationGrace(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"svc"}`)
	old := created.str("token")
	rotated := e.must(200, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, `{"gracePeriodSeconds":3600}`)
	verify := func(tok string) string {
		return e.must(200, "POST", "/verify", "", `{"token":"`+tok+`"}`).str("code")
	}
	if verify(old) != "VALID" || verify(rotated.str("token")) != "VALID" {
		t.Fatal("inside the grace period both secrets must work")
	}
	e.clock.Advance(3599 * time.Second)
	if verify(old) != "VALID" {
		t.Fatal("old secret refused before the grace period ended")
	}
	e.clock.Advance(time.Second)
	if verify(old) != "NOT_FOUND" || verify(rotated.str("token")) != "VALID" {
		t.Fatal("after the grace period only the new secret may work")
	}
	e.must(400, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, `{"gracePeriodSeconds":604801}`)
	e.must(400, "POST", "/tokens/"+created.str("id")+"/rotate", e.admin, `{"gracePeriodSeconds":-1}`)
}

func TestStatusPaths(t *testing.T) {
	e := newEnv(t, nil)
	reader := e.mint("admin", "read")
	id := e.must(201, "POST", "/tokens", e.admin, `{"name":"x","clientId":"c1"}`).str("id")
	big := `{"name":"` + strings.Repeat("a", httpapi.MaxBodyBytes) + `"}`
	tests := []struct {
		name, method, path, bearer, body string
		status                           int
		code, message                    string
	}{
		{"malformed JSON", "POST", "/tokens", e.admin, `{"name":`, 400, token.EINVALID, "not valid JSON"},
		{"not an object", "POST", "/tokens", e.admin, `["x"]`, 400, token.EINVALID, "JSON object"},
		{"two objects", "POST", "/tokens", e.admin, `{"name":"a"}{"name":"b"}`, 400, token.EINVALID, "single JSON object"},
		{"empty body", "POST", "/tokens", e.admin, ``, 400, token.EINVALID, "JSON object"},
		{"wrong type", "POST", "/tokens", e.admin, `{"name":5}`, 400, token.EINVALID, "name: must be a string"},
		{"wrong element type", "POST", "/tokens", e.admin, `{"name":"a","permissions":[1]}`, 400, token.EINVALID, "permissions"},
		{"wrong type optional", "POST", "/tokens", e.admin, `{"name":"a","expiresIn":"30"}`, 400, token.EINVALID, "expiresIn: must be a whole number"},
		{"fractional days", "POST", "/tokens", e.admin, `{"name":"a","expiresIn":1.5}`, 400, token.EINVALID, "expiresIn"},
		{"unknown field", "POST", "/tokens", e.admin, `{"name":"a","colour":"red"}`, 400, token.EINVALID, "colour: unknown field"},
		{"bad time", "POST", "/tokens", e.admin, `{"name":"a","expiresAt":"tomorrow"}`, 400, token.EINVALID, "expiresAt: must be an RFC 3339"},
		{"past time", "POST", "/tokens", e.admin, `{"name":"a","expiresAt":"2000-01-01T00:00:00Z"}`, 400, token.EINVALID, "expiresAt: must be in the future"},
		{"both expiries", "POST", "/tokens", e.admin, `{"name":"a","expiresAt":null,"expiresIn":3}`, 400, token.EINVALID, "at most one"},
		{"expiresIn range", "POST", "/tokens", e.admin, `{"name":"a","expiresIn":3651}`, 400, token.EINVALID, "expiresIn"},
		{"expiresAt beyond 3650 days", "POST", "/tokens", e.admin, `{"name":"a","expiresAt":"2600-01-01T00:00:00Z"}`, 400, token.EINVALID, "expiresAt: must be at most 3650 days"},
		{"repeated key", "POST", "/tokens", e.admin, `{"name":"a","expiresAt":null,"expiresAt":"2000-01-01T00:00:00Z"}`, 400, token.EINVALID, "expiresAt: duplicate key"},
		{"meta not UTF-8", "POST", "/tokens", e.admin, "{\"name\":\"a\",\"meta\":{\"k\":\"\xff\"}}", 400, token.EINVALID, "meta"},
		{"empty name", "POST", "/tokens", e.admin, `{"name":""}`, 400, token.EINVALID, "name: must be 1-100"},
		{"long name", "POST", "/tokens", e.admin, `{"name":"` + strings.Repeat("é", 101) + `"}`, 400, token.EINVALID, "name"},
		{"empty permissions", "POST", "/tokens", e.admin, `{"name":"a","permissions":[]}`, 400, token.EINVALID, "permissions"},
		{"bad permission", "POST", "/tokens", e.admin, `{"name":"a","permissions":["Upload"]}`, 400, token.EINVALID, "permissions"},
		{"meta not object", "POST", "/tokens", e.admin, `{"name":"a","meta":[1]}`, 400, token.EINVALID, "meta: must be a JSON object"},
		{"meta too large", "POST", "/tokens", e.admin, `{"name":"a","meta":{"k":"` + strings.Repeat("x", 4096) + `"}}`, 400, token.EINVALID, "meta"},
		{"bad env", "POST", "/tokens", e.admin, `{"name":"a","environment":"Prod!"}`, 400, token.EINVALID, "environment"},
		{"too large", "POST", "/tokens", e.admin, big, 413, token.ETOOLARGE, "64 KiB"},
		{"wrong method", "PUT", "/tokens", e.admin, `{}`, 405, "method_not_allowed", "POST, GET"},
		{"wrong method on id", "POST", "/tokens/" + id, e.admin, `{}`, 405, "method_not_allowed", "PATCH"},
		{"no route", "GET", "/nope", e.admin, ``, 404, token.ENOTFOUND, "No route"},
		{"missing credentials", "GET", "/tokens", "", ``, 401, token.EUNAUTHORIZED, "Missing bearer token"},
		{"malformed token", "GET", "/tokens", "tok_nope", ``, 401, token.EUNAUTHORIZED, "malformed"},
		{"lacks manage", "GET", "/tokens", reader, ``, 403, token.EFORBIDDEN, "manage"},
		{"manage cannot grant admin", "POST", "/tokens", e.mint("u", "manage"), `{"name":"a","permissions":["admin"]}`, 403, token.EFORBIDDEN, "admin"},
		{"conflict", "POST", "/tokens", e.admin, `{"name":"y","clientId":"c1"}`, 409, token.ECONFLICT, "c1"},
		{"unknown id", "GET", "/tokens/" + token.NewID(), e.admin, ``, 404, token.ENOTFOUND, "not found"},
		{"junk id", "GET", "/tokens/..%2f", e.admin, ``, 404, token.ENOTFOUND, ""},
		{"bad limit", "GET", "/tokens?limit=101", e.admin, ``, 400, token.EINVALID, "limit"},
		{"bad limit text", "GET", "/tokens?limit=ten", e.admin, ``, 400, token.EINVALID, "limit"},
		{"bad status", "GET", "/tokens?status=gone", e.admin, ``, 400, token.EINVALID, "status"},
		{"bad cursor", "GET", "/tokens?cursor=abc", e.admin, ``, 400, token.EINVALID, "cursor"},
		{"empty update", "PATCH", "/tokens/" + id, e.admin, `{}`, 400, token.EINVALID, "nothing to update"},
		{"null name", "PATCH", "/tokens/" + id, e.admin, `{"name":null}`, 400, token.EINVALID, "name: must not be null"},
		{"verify without token", "POST", "/verify", "", `{}`, 400, token.EINVALID, "token: required"},
		{"verify unknown field", "POST", "/verify", "", `{"tok":"x"}`, 400, token.EINVALID, "tok: unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			before := e.snapshot()
			resp := e.must(tt.status, tt.method, tt.path, tt.bearer, tt.body)
			if resp.str("code") != tt.code || !strings.Contains(resp.str("message"), tt.message) {
				t.Fatalf("answer %s; want code %q and a message containing %q", resp.raw, tt.code, tt.message)
			}
			if tt.status == 401 && resp.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tt.status == 405 && !strings.Contains(resp.header.Get("Allow"), strings.Fields(strings.ReplaceAll(tt.message, ",", ""))[0]) {
				t.Fatalf("405 Allow header %q", resp.header.Get("Allow"))
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("a rejected request changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestOwnerIsolation(t *testing.T) {
	e := newEnv(t, nil)
	a := e.mint("alice", token.PermManage, "read")
	aPlain := e.mint("alice", "read")
	b := e.mint("bob", token.PermManage, "read")
	bTok := e.must(201, "POST", "/tokens", b, `{"name":"bob's"}`).str("id")
	aTok := e.must(201, "POST", "/tokens", a, `{"name":"alice's"}`).str("id")

	foreign := []struct{ method, path, body string }{
		{"GET", "/tokens/" + bTok, ""},
		{"PATCH", "/tokens/" + bTok, `{"name":"mine now"}`},
		{"DELETE", "/tokens/" + bTok, ""},
		{"POST", "/tokens/" + bTok + "/rotate", ""},
		{"GET", "/tokens/" + bTok + "/usage", ""},
	}
	for _, f := range foreign {
		if resp := e.do(f.method, f.path, a, f.body); resp.status != 404 {
			t.Errorf("alice %s bob's token: %d %s; want 404", f.method, resp.status, resp.raw)
		}
	}
	if resp := e.do("GET", "/tokens?owner=bob", a, ""); resp.status != 403 {
		t.Errorf("alice listing bob: %d; want 403", resp.status)
	}
	if resp := e.do("POST", "/tokens", a, `{"name":"x","owner":"bob"}`); resp.status != 403 {
		t.Errorf("alice creating for bob: %d; want 403", resp.status)
	}
	for _, status := range []string{"active", "all", "revoked", "expired", "disabled"} {
		for _, id := range e.must(200, "GET", "/tokens?status="+status, a, "").ids() {
			if id == bTok {
				t.Errorf("alice's list (status %s) shows bob's token", status)
			}
		}
	}
	if e.must(200, "GET", "/tokens/"+bTok, b, "").str("name") != "bob's" {
		t.Error("bob's token was changed by alice")
	}

	routes := []struct{ method, path, body string }{
		{"POST", "/tokens", `{"name":"x"}`},
		{"GET", "/tokens", ""},
		{"GET", "/tokens/" + aTok, ""},
		{"PATCH", "/tokens/" + aTok, `{"name":"y"}`},
		{"DELETE", "/tokens/" + aTok, ""},
		{"POST", "/tokens/" + aTok + "/rotate", ""},
		{"GET", "/tokens/" + aTok + "/usage", ""},
	}
	for _, rt := range routes {
		if resp := e.do(rt.method, rt.path, aPlain, rt.body); resp.status != 403 {
			t.Errorf("token without manage: %s %s = %d; want 403", rt.method, rt.path, resp.status)
		}
	}
	if e.must(200, "GET", "/tokens/self", aPlain, "").str("owner") != "alice" {
		t.Error("a token without manage may still introspect itself")
	}
}

func TestListPagination(t *testing.T) {
	e := newEnv(t, nil)
	var want []string
	for i := range 7 {
		e.clock.Advance(time.Second)
		id := e.must(201, "POST", "/tokens", e.admin, fmt.Sprintf(`{"name":"t%d","owner":"carol"}`, i)).str("id")
		want = append([]string{id}, want...)
	}
	var got []string
	cursor := ""
	for range 10 {
		page := e.must(200, "GET", "/tokens?owner=carol&limit=3"+cursor, e.admin, "")
		got = append(got, page.ids()...)
		next, _ := page.body["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = "&cursor=" + next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged list %v; want %v", got, want)
	}
	// A cursor of carol's list is refused on another owner's list.
	page := e.must(200, "GET", "/tokens?owner=carol&limit=3", e.admin, "")
	e.must(400, "GET", "/tokens?owner=admin&limit=3&cursor="+page.str("nextCursor"), e.admin, "")
}

func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"leak check","permissions":["read"]}`)
	plain := created.str("token")
	id := created.str("id")
	e.must(200, "POST", "/verify", "", `{"token":"`+plain+`"}`)
	e.must(200, "GET", "/tokens/"+id, e.admin, "")
	e.must(200, "GET", "/tokens?status=all", e.admin, "")
	e.must(200, "PATCH", "/tokens/"+id, e.admin, `{"name":"renamed"}`)
	rotatedResp := e.must(200, "POST", "/tokens/"+id+"/rotate", e.admin, `{"gracePeriodSeconds":60}`)
	rotated := rotatedResp.str("token")
	e.must(200, "GET", "/tokens/self", rotated, "")
	e.must(200, "DELETE", "/tokens/"+id, e.admin, "")
	e.do("POST", "/verify", "", `{"token":"`+rotated+`"}`)

	stored, err := e.svc.Self(context.Background(), token.Principal{TokenID: id})
	if err != nil {
		t.Fatal(err)
	}
	// Each plaintext (and its secret part) may appear in the one answer that issued it.
	issuedBy := map[string]string{
		plain: created.raw, secretPart(plain): created.raw,
		rotated: rotatedResp.raw, secretPart(rotated): rotatedResp.raw,
	}
	for i, body := range e.seen {
		for s, issuer := range issuedBy {
			if strings.Contains(body, s) && body != issuer {
				t.Errorf("response %d shows a secret: %s", i, body)
			}
		}
		for _, enc := range encodings(stored.SecretHash) {
			if strings.Contains(body, enc) {
				t.Errorf("response %d shows a secret hash: %s", i, body)
			}
		}
	}
	secrets := []string{plain, rotated, secretPart(plain), secretPart(rotated)}
	// A token pasted where an id belongs is not logged either.
	e.must(404, "GET", "/tokens/"+plain, e.admin, "")
	logs := e.logs.String()
	if !strings.Contains(logs, `"status":201`) {
		t.Fatal("no access log captured: the leak check would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("logs show a secret: %s", logs)
		}
	}
}

func secretPart(plaintext string) string {
	return plaintext[len(plaintext)-token.SecretLen-6 : len(plaintext)-6]
}

func encodings(h []byte) []string {
	b, _ := json.Marshal(h) // base64, as encoding/json would write a []byte
	return []string{fmt.Sprintf("%x", h), strings.Trim(string(b), `"`)}
}

// failingStore fails every call the way a broken network does.
type failingStore struct{ token.Store }

var errBroken = errors.New("dial tcp 10.0.0.1:8000: connection refused (secret detail)")

func (failingStore) FindToken(context.Context, string) (*token.Token, error) { return nil, errBroken }

func TestInternalErrorsAreHidden(t *testing.T) {
	e := newEnv(t, failingStore{})
	tok := token.Format("tok", "", token.NewID(), token.NewSecret())
	for _, rt := range []struct{ method, path, bearer, body string }{
		{"GET", "/tokens", tok, ""},
		{"POST", "/verify", "", `{"token":"` + tok + `"}`},
	} {
		resp := e.must(500, rt.method, rt.path, rt.bearer, rt.body)
		if resp.raw != `{"code":"internal","message":"Internal error."}`+"\n" {
			t.Fatalf("%s %s: %s", rt.method, rt.path, resp.raw)
		}
	}
	if !strings.Contains(e.logs.String(), "secret detail") {
		t.Fatal("internal error detail was not logged")
	}
}

func TestRouteHandlerServesOneRoute(t *testing.T) {
	e := newEnv(t, nil)
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	api := &httpapi.API{Service: e.svc, Authenticate: authenticator(e.store, e.clock.Now, logger), Logger: logger}
	h, ok := api.RouteHandler("POST /verify")
	if !ok {
		t.Fatal("POST /verify is not in the route table")
	}
	e.handler = h
	e.must(200, "POST", "/verify", "", `{"token":"`+e.admin+`"}`)
	e.must(404, "GET", "/tokens/self", e.admin, "")
	if _, ok := api.RouteHandler("GET /nothing"); ok {
		t.Fatal("RouteHandler accepted a pattern outside the table")
	}
}
