package httpapi_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// auditEvents lists GET /audit as caller (query: "?owner=..." or ""), every page.
func (e *env) auditEvents(caller, query string) []map[string]any {
	e.t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		sep := "?"
		if query != "" {
			sep = "&"
		}
		path := "/audit" + query
		if cursor != "" {
			path += sep + "cursor=" + cursor
		}
		resp := e.must(200, "GET", path, caller, "")
		var body struct {
			Events     []map[string]any `json:"events"`
			NextCursor *string          `json:"nextCursor"`
		}
		if err := json.Unmarshal([]byte(resp.raw), &body); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, body.Events...)
		if body.NextCursor == nil {
			return out
		}
		cursor = *body.NextCursor
	}
}

func fields(ev map[string]any) []string {
	var out []string
	for _, c := range ev["changes"].([]any) {
		out = append(out, c.(map[string]any)["field"].(string))
	}
	return out
}

// TestAuditTrail: each create, update, rotate and revoke writes exactly one event with the right
// diff, actor, address and request id; refused changes (400, 403, 404, 409) write none; owners
// see only their own events, admins everyone's; no event ever holds a secret or a hash.
func TestAuditTrail(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.mint("alice", "manage", "read", "files:*")
	aliceID := e.must(200, "GET", "/tokens/self", alice, "").str("id")
	bob := e.mint("bob", "manage", "read")
	secrets := []string{alice, bob, e.admin}

	created := e.must(201, "POST", "/tokens", alice, `{"name":"ci","permissions":["read"],"clientId":"ci-1","meta":{"team":"a"}}`)
	id := created.str("id")
	secrets = append(secrets, created.str("token"))
	if created.str("createdBy") != aliceID {
		t.Fatalf("createdBy %q; want the creating token %q", created.str("createdBy"), aliceID)
	}
	e.clock.Advance(time.Second) // events sort by time: one change a second
	e.must(200, "PATCH", "/tokens/"+id, alice, `{"name":"ci renamed","enabled":false}`)
	e.clock.Advance(time.Second)
	rotated := e.must(200, "POST", "/tokens/"+id+"/rotate", alice, `{"gracePeriodSeconds":60}`)
	e.clock.Advance(time.Second)
	secrets = append(secrets, rotated.str("token"))

	// Refused changes: none of these writes an event.
	refused := []struct {
		status       int
		method, path string
		body         string
	}{
		{400, "PATCH", "/tokens/" + id, `{"name":""}`},
		{400, "POST", "/tokens", `{"name":"x","permissions":["Bad Perm"]}`},
		{403, "POST", "/tokens", `{"name":"x","permissions":["billing"]}`},
		{409, "POST", "/tokens", `{"name":"dup","permissions":["read"],"clientId":"ci-1"}`},
		{404, "PATCH", "/tokens/" + e.must(200, "GET", "/tokens/self", bob, "").str("id"), `{"name":"stolen"}`},
	}
	for _, r := range refused {
		e.must(r.status, r.method, r.path, alice, r.body)
	}
	e.must(200, "DELETE", "/tokens/"+id, alice, "")
	e.must(409, "PATCH", "/tokens/"+id, alice, `{"name":"after revoke"}`)
	e.must(200, "DELETE", "/tokens/"+id, alice, "") // revoking again changes nothing: no event

	events := e.auditEvents(alice, "?tokenId="+id)
	var actions []string
	for _, ev := range events {
		actions = append(actions, ev["action"].(string))
		if ev["actorTokenId"] != aliceID || ev["actorOwner"] != "alice" || ev["owner"] != "alice" || ev["tokenId"] != id {
			t.Errorf("event %v: want actor %s of alice on %s", ev, aliceID, id)
		}
		if ev["sourceIp"] != "192.0.2.1" || ev["requestId"] == nil || ev["at"] == nil {
			t.Errorf("event %v: want the source address, a request id and a time", ev)
		}
	}
	if want := []string{"revoke", "rotate", "update", "create"}; !slices.Equal(actions, want) {
		t.Fatalf("actions %v; want %v (newest first, one per change)", actions, want)
	}
	for i, want := range [][]string{
		{"revokedAt", "previousSecretValidUntil"}, // a revoke ends the old secret's grace too
		{"secret", "previousSecretValidUntil"},
		{"name", "enabled"},
	} {
		if got := fields(events[i]); !slices.Equal(got, want) {
			t.Errorf("%s changed %v; want %v", actions[i], got, want)
		}
	}
	if got := fields(events[3]); !slices.Contains(got, "name") || !slices.Contains(got, "permissions") || !slices.Contains(got, "expiresAt") || !slices.Contains(got, "meta") {
		t.Errorf("create lists %v; want its settings", got)
	}
	rename := events[2]["changes"].([]any)[0].(map[string]any)
	if rename["old"] != "ci" || rename["new"] != "ci renamed" {
		t.Errorf("rename change %v; want ci -> ci renamed", rename)
	}

	// Owners see only their own events; admins see every owner's.
	for _, ev := range e.auditEvents(bob, "") {
		if ev["owner"] != "bob" {
			t.Errorf("bob sees %v", ev)
		}
	}
	e.must(403, "GET", "/audit?owner=alice", bob, "")
	if got := e.auditEvents(bob, "?tokenId="+id); len(got) != 0 {
		t.Errorf("bob sees %d events of alice's token", len(got))
	}
	all := e.auditEvents(e.admin, "")
	if len(all) < 4 || len(e.auditEvents(e.admin, "?owner=alice")) != len(e.auditEvents(alice, "")) {
		t.Errorf("admin: %d events in all", len(all))
	}

	// No secret, and no hash of one, in any event.
	for _, secret := range secrets {
		p, _ := token.Parse("tok", secret)
		sum := token.HashSecret(p.Secret)
		for _, s := range []string{p.Secret, hex.EncodeToString(sum), base64.StdEncoding.EncodeToString(sum), base64.RawURLEncoding.EncodeToString(sum)} {
			for _, ev := range all {
				if b, _ := json.Marshal(ev); strings.Contains(string(b), s) {
					t.Fatalf("an audit event holds a secret or hash: %s", b)
				}
			}
		}
	}
}

// TestTokenFamily: GET /tokens?createdBy lists a token's children; DELETE ?cascade=true revokes
// the token and every descendant, each with its own audit event, and nothing else.
func TestTokenFamily(t *testing.T) {
	e := newEnv(t, nil)
	root := e.mint("alice", "manage", "read")
	rootID := e.must(200, "GET", "/tokens/self", root, "").str("id")
	bystander := e.must(201, "POST", "/tokens", e.admin, `{"name":"bystander","owner":"alice","permissions":["read"]}`).str("id")
	var children, grandchildren []string
	for i := range 3 {
		c := e.must(201, "POST", "/tokens", root, fmt.Sprintf(`{"name":"child %d","permissions":["manage","read"]}`, i))
		children = append(children, c.str("id"))
		for j := range 2 {
			g := e.must(201, "POST", "/tokens", c.str("token"), fmt.Sprintf(`{"name":"grandchild %d.%d","permissions":["read"]}`, i, j))
			grandchildren = append(grandchildren, g.str("id"))
		}
	}
	listed := e.must(200, "GET", "/tokens?createdBy="+rootID+"&limit=2", root, "")
	if got := len(listed.ids()); got != 2 || listed.str("nextCursor") == "" {
		t.Fatalf("first page of children: %d, next %q", got, listed.str("nextCursor"))
	}
	e.must(400, "GET", "/tokens?createdBy=not-an-id", root, "")

	resp := e.must(200, "DELETE", "/tokens/"+children[0]+"?cascade=true", root, "")
	if resp.body["descendantsRevoked"] != float64(2) || resp.str("status") != "revoked" {
		t.Fatalf("cascade from a child: %s", resp.raw)
	}
	e.must(400, "DELETE", "/tokens/"+rootID+"?cascade=maybe", root, "")
	resp = e.must(200, "DELETE", "/tokens/"+rootID+"?cascade=true", e.admin, "")
	if resp.body["descendantsRevoked"] != float64(6) { // 2 children and 4 grandchildren were still live
		t.Fatalf("cascade from the root: %s", resp.raw)
	}
	for _, id := range append(append([]string{rootID}, children...), grandchildren...) {
		if got := e.must(200, "GET", "/tokens/"+id, e.admin, "").str("status"); got != "revoked" {
			t.Errorf("descendant %s: %s", id, got)
		}
	}
	if got := e.must(200, "GET", "/tokens/"+bystander, e.admin, "").str("status"); got != "active" {
		t.Fatalf("a token outside the family is %s", got)
	}
	cascaded := 0
	for _, ev := range e.auditEvents(e.admin, "?owner=alice") {
		if ev["action"] == "revoke" && ev["cascade"] != nil {
			cascaded++
		}
	}
	if cascaded != 8 {
		t.Fatalf("%d revoke events name a cascade; want 8 (2 from the child's, 6 from the root's)", cascaded)
	}
}

// TestRotateIsAttenuated: rotating hands over a new secret, so a caller that is not an admin may
// rotate only tokens it could have created; its own, always.
func TestRotateIsAttenuated(t *testing.T) {
	e := newEnv(t, nil)
	limited := e.must(201, "POST", "/tokens", e.admin, `{"name":"limited","owner":"alice","permissions":["manage","read"],"remaining":50}`).str("token")
	loose := e.must(201, "POST", "/tokens", e.admin, `{"name":"loose","owner":"alice","permissions":["read","billing"]}`).str("id")
	before := e.must(200, "GET", "/tokens/"+loose, e.admin, "").raw
	if got := e.must(403, "POST", "/tokens/"+loose+"/rotate", limited, "").str("message"); !strings.Contains(got, "permissions") && !strings.Contains(got, "remaining") {
		t.Fatalf("refusal %q names no field", got)
	}
	if after := e.must(200, "GET", "/tokens/"+loose, e.admin, "").raw; after != before {
		t.Fatalf("a refused rotate changed the token:\n%s\nwas\n%s", after, before)
	}
	self := e.must(200, "GET", "/tokens/self", limited, "").str("id")
	e.must(200, "POST", "/tokens/"+self+"/rotate", limited, "")
}

// TestReactivationIsAttenuated: re-enabling a disabled token, or moving an expiry that has
// passed, puts a token back into use: a caller that is not an admin may do it only for a token
// within its own ceiling; the refusal changes nothing.
func TestReactivationIsAttenuated(t *testing.T) {
	e := newEnv(t, nil)
	narrow := e.must(201, "POST", "/tokens", e.admin, `{"name":"narrow","owner":"alice","permissions":["manage","read"],"expiresIn":1}`).str("token")
	broad := e.must(201, "POST", "/tokens", e.admin, `{"name":"deploy","owner":"alice","permissions":["deploy:*"],"expiresAt":null}`).str("id")
	e.must(200, "PATCH", "/tokens/"+broad, e.admin, `{"enabled":false}`)
	before := e.must(200, "GET", "/tokens/"+broad, e.admin, "").raw
	e.must(403, "PATCH", "/tokens/"+broad, narrow, `{"enabled":true}`)
	if after := e.must(200, "GET", "/tokens/"+broad, e.admin, "").raw; after != before {
		t.Fatalf("a refused re-enable changed the token:\n%s\nwas\n%s", after, before)
	}
	short := e.must(201, "POST", "/tokens", e.admin, fmt.Sprintf(`{"name":"old","owner":"alice","permissions":["deploy:*"],"expiresAt":%q}`,
		e.clock.Now().Add(time.Hour).Format(time.RFC3339))).str("id")
	e.clock.Advance(2 * time.Hour)
	e.must(403, "PATCH", "/tokens/"+short, narrow, fmt.Sprintf(`{"expiresAt":%q}`, e.clock.Now().Add(time.Hour).Format(time.RFC3339)))

	// Within the ceiling it is the caller's to do.
	mine := e.must(201, "POST", "/tokens", narrow, `{"name":"mine","permissions":["read"]}`).str("id")
	e.must(200, "PATCH", "/tokens/"+mine, narrow, `{"enabled":false}`)
	e.must(200, "PATCH", "/tokens/"+mine, narrow, `{"enabled":true}`)
}
