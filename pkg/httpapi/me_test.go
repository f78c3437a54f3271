package httpapi_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestMe: GET /me answers the caller the authenticator established, for any valid token, and
// nothing else: no query names someone else, and a token that stopped working is refused.
func TestMe(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.mint("alice", token.PermManage, "read")
	reader := e.mint("alice", "read")
	adminID := e.must(200, "GET", "/tokens/self", e.admin, "").str("id")
	aliceID := e.must(200, "GET", "/tokens/self", alice, "").str("id")

	for _, tc := range []struct {
		name, bearer, path string
		owner              string
		admin              bool
		perms              []any
		tokenID            string
	}{
		{"admin", e.admin, "/me", "admin", true, []any{"admin", "manage"}, adminID},
		{"manage", alice, "/me", "alice", false, []any{"manage", "read"}, aliceID},
		{"read only", reader, "/me", "alice", false, []any{"read"}, ""},
		// Query parameters name no one: the answer is the caller's.
		{"query ignored", alice, "/me?owner=admin&tokenId=" + adminID, "alice", false, []any{"manage", "read"}, aliceID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.must(200, "GET", tc.path, tc.bearer, "")
			if resp.str("owner") != tc.owner || resp.body["admin"] != tc.admin || !reflect.DeepEqual(resp.body["permissions"], tc.perms) {
				t.Errorf("GET /me = %s; want owner %s, admin %v, permissions %v", resp.raw, tc.owner, tc.admin, tc.perms)
			}
			if tc.tokenID != "" && resp.str("tokenId") != tc.tokenID {
				t.Errorf("tokenId = %v; want %s", resp.body["tokenId"], tc.tokenID)
			}
			if len(resp.body) != 4 {
				t.Errorf("GET /me has %d fields, want owner, admin, permissions, tokenId: %s", len(resp.body), resp.raw)
			}
			if cc := resp.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q: a shared cache could answer one caller with another's identity", cc)
			}
			if strings.Contains(resp.raw, tc.bearer) || strings.Contains(resp.raw, secretPart(tc.bearer)) {
				t.Error("GET /me shows the presented secret")
			}
		})
	}

	e.must(401, "GET", "/me", "", "")
	e.must(401, "GET", "/me", "tok_not-a-token", "")
	if _, err := e.svc.Revoke(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, aliceID); err != nil {
		t.Fatal(err)
	}
	e.must(401, "GET", "/me", alice, "")
	e.must(405, "POST", "/me", alice, "")
}

// TestMeViewOfAPerson: a caller without a token of this API (a person signed in with the
// identity provider) shows tokenId null and an empty list of permissions, never null.
func TestMeViewOfAPerson(t *testing.T) {
	got := httpapi.MeView(token.Principal{Owner: "alice@example.com"})
	if got.TokenID != nil || got.Permissions == nil || got.Admin || got.Owner != "alice@example.com" {
		t.Errorf("MeView = %+v", got)
	}
}
