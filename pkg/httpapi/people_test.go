package httpapi_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/oidctest"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/oidc"
)

// TestPeople: people signed in with an ID token manage their owner's tokens (an admin group,
// every owner's) through the handlers, with answers the OpenAPI document describes (the
// exchanges are recorded like every other), and their changes audited under their subject.
func TestPeople(t *testing.T) {
	p := oidctest.Start(t, oidctest.Config{
		Clients: []oidctest.Client{{ID: "dashboard"}},
		Users:   []oidctest.User{{Subject: "root-subject", Username: "root", Groups: []string{"apitokens-admin"}, Claims: map[string]any{"team": "ops"}}},
	})
	v, err := oidc.New(oidc.Config{Issuer: p.Issuer(), Audience: "dashboard", AdminClaim: "groups", AdminValue: "apitokens-admin"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	logger := slog.New(slog.NewJSONHandler(e.logs, nil))
	authz := authorizer.New(e.store, authorizer.Config{Now: e.clock.Now, Logger: logger, People: v})
	e.handler = (&httpapi.API{Service: e.svc, Authenticate: authz.AuthenticateRequest, Logger: logger}).Handler()

	alice := p.IDToken(t, "dashboard", "alice")
	root := p.IDToken(t, "dashboard", "root-subject")
	expired := p.IDToken(t, "dashboard", "alice", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() })

	created := e.must(201, "POST", "/tokens", alice, `{"name":"deploy","permissions":["deploy","manage"]}`)
	if created.str("owner") != "alice" || created.body["createdBy"] != nil {
		t.Errorf("a person's token: owner %v, createdBy %v; want alice and null", created.body["owner"], created.body["createdBy"])
	}
	id := created.str("id")
	e.must(200, "PATCH", "/tokens/"+id, alice, `{"name":"deploy (renamed)"}`)
	e.must(200, "POST", "/tokens/"+id+"/rotate", alice, `{"gracePeriodSeconds":60}`)
	events := e.must(200, "GET", "/audit?tokenId="+id, alice, "").body["events"].([]any)
	for _, ev := range events {
		ev := ev.(map[string]any)
		if ev["actorSubject"] != "alice" || ev["actorTokenId"] != nil || ev["actorOwner"] != "alice" {
			t.Errorf("audit event %v: want actorSubject alice, actorTokenId null, actorOwner alice", ev)
		}
	}
	if len(events) != 3 {
		t.Errorf("%d audit events, want create, update and rotate", len(events))
	}
	self := e.must(404, "GET", "/tokens/self", alice, "")
	if !strings.Contains(self.str("message"), "signed in as a person") {
		t.Errorf("GET /tokens/self for a person: %s", self.raw)
	}

	bob := e.must(201, "POST", "/tokens", e.admin, `{"name":"bob's","owner":"bob"}`).str("id")
	e.must(404, "GET", "/tokens/"+bob, alice, "")
	e.must(403, "GET", "/tokens?owner=bob", alice, "")
	e.must(403, "POST", "/tokens", alice, `{"name":"x","permissions":["admin"]}`)
	if got := e.must(200, "GET", "/tokens?owner=bob", root, "").ids(); len(got) != 1 || got[0] != bob {
		t.Errorf("an admin by group lists bob's tokens: %v", got)
	}
	e.clock.Advance(time.Second) // events list newest first
	e.must(200, "DELETE", "/tokens/"+id, root, "")
	if ev := e.must(200, "GET", "/audit?tokenId="+id+"&limit=1", root, "").body["events"].([]any)[0].(map[string]any); ev["actorSubject"] != "root-subject" || ev["actorOwner"] != "root-subject" {
		t.Errorf("the revoke's audit event: %v", ev)
	}

	refused := e.must(401, "GET", "/tokens", expired, "")
	if refused.str("code") != "unauthorized" || !strings.Contains(refused.str("message"), "expired") || refused.header.Get("WWW-Authenticate") == "" {
		t.Errorf("an expired ID token: %s %v", refused.raw, refused.header)
	}
	for _, jwt := range []string{alice, root, expired} {
		if strings.Contains(e.logs.String(), jwt[strings.LastIndex(jwt, ".")+1:]) {
			t.Fatalf("the log shows an ID token:\n%s", e.logs)
		}
	}
}
