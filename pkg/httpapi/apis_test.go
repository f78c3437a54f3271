package httpapi_test

import (
	"fmt"
	"testing"
)

// TestAPIBinding: a token created for some APIs says so in every record, verifies only for those
// APIs (FORBIDDEN_API for another), and can be unbound; bad names are a 400 naming the entry and
// change nothing.
func TestAPIBinding(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"uploader","permissions":["upload"],"apis":["uploads","uploads","media"]}`)
	id, plain := created.str("id"), created.str("token")
	if got := fmt.Sprint(created.body["apis"]); got != "[uploads media]" {
		t.Fatalf("created apis %s; want [uploads media] (duplicates dropped)", got)
	}
	if got := fmt.Sprint(e.must(200, "GET", "/tokens/"+id, e.admin, "").body["apis"]); got != "[uploads media]" {
		t.Fatalf("get apis %s", got)
	}
	verify := func(api string) string {
		t.Helper()
		body := fmt.Sprintf(`{"token":%q,"api":%q}`, plain, api)
		if api == "" {
			body = fmt.Sprintf(`{"token":%q}`, plain)
		}
		return e.must(200, "POST", "/verify", "", body).str("code")
	}
	for api, want := range map[string]string{"uploads": "VALID", "media": "VALID", "billing": "FORBIDDEN_API", "": "VALID"} {
		if got := verify(api); got != want {
			t.Errorf("verify for api %q: %s; want %s", api, got, want)
		}
	}

	before := e.snapshot()
	for body, msg := range map[string]string{
		`{"apis":["uploads","Billing"]}`: "apis[1]: must match [a-z0-9][a-z0-9._-]{0,63}",
		`{"apis":["uploads",""]}`:        "apis[1]: must match [a-z0-9][a-z0-9._-]{0,63}",
		`{"apis":["a/b"]}`:               "apis[0]: must match [a-z0-9][a-z0-9._-]{0,63}",
		`{"apis":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`: "apis: must list at most 20 APIs",
	} {
		if got := e.must(400, "PATCH", "/tokens/"+id, e.admin, body).str("message"); got != msg {
			t.Errorf("PATCH %s: %q; want %q", body, got, msg)
		}
	}
	if got := e.must(400, "POST", "/verify", "", fmt.Sprintf(`{"token":%q,"api":"Not An API"}`, plain)).str("message"); got == "" {
		t.Error("verify with a malformed api name: no message")
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("rejected requests changed tokens:\n%s\nwant\n%s", after, before)
	}

	if got := e.must(200, "PATCH", "/tokens/"+id, e.admin, `{"apis":null}`).body["apis"]; got != nil {
		t.Fatalf("apis after unbinding: %v; want null", got)
	}
	if got := verify("billing"); got != "VALID" {
		t.Fatalf("unbound token for billing: %s", got)
	}
	e.must(200, "PATCH", "/tokens/"+id, e.admin, `{"apis":["billing"]}`)
	if got := verify("uploads"); got != "FORBIDDEN_API" {
		t.Fatalf("rebound token for uploads: %s", got)
	}
}
