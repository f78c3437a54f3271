package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// restriction is one ceiling of the caller in the escalation matrix. Settings are JSON members
// of a request body: the caller's token (and the target of "update other") holds `holds`, with
// the permissions manage and read unless holds names its own; tighten and equal lie within it,
// each of loosen outside it.
type restriction struct {
	name         string
	field        string // the field a refusal names
	holds        string
	tighten      string
	equal        string
	loosen       []string
	loosenUpdate []string // loosenings an update only: a create that omits apis (or gives none) inherits them
}

var restrictions = []restriction{
	{name: "permission set", field: "permissions", holds: `"permissions":["manage","files:read","files:write"]`,
		tighten: `"permissions":["files:read"]`, equal: `"permissions":["manage","files:read","files:write"]`,
		loosen: []string{`"permissions":["files:read","billing:read"]`, `"permissions":["files:*"]`, `"permissions":["files:read*"]`}},
	{name: "wildcard", field: "permissions", holds: `"permissions":["manage","files:*"]`,
		tighten: `"permissions":["files:r*","files:write"]`, equal: `"permissions":["manage","files:*"]`,
		loosen: []string{`"permissions":["f*"]`, `"permissions":["files*"]`, `"permissions":["files:*","billing:read"]`}},
	{name: "expiry", field: "expiresAt", holds: `"expiresIn":30`,
		tighten: `"expiresIn":10`, equal: `"expiresIn":30`,
		loosen: []string{`"expiresIn":31`, `"expiresAt":null`}},
	{name: "allowlist", field: "allowedCidrs", holds: `"allowedCidrs":["192.0.2.0/24","2001:db8::/32"]`, // requests come from 192.0.2.1
		tighten: `"allowedCidrs":["192.0.2.0/28","2001:db8:1::/48"]`, equal: `"allowedCidrs":["192.0.2.0/24","2001:db8::/32"]`,
		loosen: []string{`"allowedCidrs":["192.0.0.0/16"]`, `"allowedCidrs":["192.0.2.0/24","198.51.100.0/24"]`,
			`"allowedCidrs":["2001:db8::/31"]`, `"allowedCidrs":[]`, `"allowedCidrs":null`}},
	{name: "rate limit", field: "rateLimit", holds: `"rateLimit":{"limit":100,"windowSeconds":60}`,
		tighten: `"rateLimit":{"limit":1,"windowSeconds":1}`, equal: `"rateLimit":{"limit":100,"windowSeconds":60}`,
		loosen: []string{`"rateLimit":{"limit":101,"windowSeconds":60}`, `"rateLimit":{"limit":100,"windowSeconds":30}`,
			`"rateLimit":{"limit":200,"windowSeconds":120}`, `"rateLimit":null`}},
	// The call under test is the caller's first, and takes one of its 50 uses: 49 are left.
	{name: "quota", field: "remaining", holds: `"remaining":50`,
		tighten: `"remaining":10`, equal: `"remaining":49`,
		loosen: []string{`"remaining":51`, `"remaining":null`}},
	{name: "refill", field: "refill", holds: `"remaining":50,"refill":{"amount":50,"intervalSeconds":3600}`,
		tighten: `"refill":{"amount":10,"intervalSeconds":3600}`, equal: `"refill":{"amount":50,"intervalSeconds":3600}`,
		loosen: []string{`"refill":{"amount":51,"intervalSeconds":3600}`, `"refill":{"amount":50,"intervalSeconds":1800}`}},
	{name: "apis", field: "apis", holds: `"apis":["uploads","media"]`,
		tighten: `"apis":["uploads"]`, equal: `"apis":["uploads","media"]`,
		loosen: []string{`"apis":["uploads","billing"]`}, loosenUpdate: []string{`"apis":null`, `"apis":[]`}},
}

// TestEscalationMatrix: for each restriction of the caller x {create child, update other, update
// self} x {tighten, equal, loosen}, the caller presenting its token over HTTP: tighten and equal
// succeed and show the setting; loosen is 403 naming the field and writes nothing. On the memory
// store, and on DynamoDB Local when DYNAMODB_ENDPOINT is set (make test).
func TestEscalationMatrix(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		escalationMatrix(t, func(t *testing.T) *env { return newEnv(t, nil) })
	})
	t.Run("dynamodb", func(t *testing.T) {
		client := dynamotest.MustClient(t)
		escalationMatrix(t, func(t *testing.T) *env {
			var e *env
			e = newEnv(t, dynamo.New(client, dynamotest.MustTable(t, client, dynamo.CreateTable), dynamo.Options{Now: func() time.Time { return e.clock.Now() }}))
			e.admin = e.mint("admin", token.PermAdmin, token.PermManage)
			return e
		})
	})
}

func escalationMatrix(t *testing.T, newEnv func(t *testing.T) *env) {
	for _, r := range restrictions {
		holds := r.holds
		if !strings.Contains(holds, `"permissions"`) {
			holds = `"permissions":["manage","read"],` + holds
		}
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t) // one store per restriction: at most 63 tokens of alice, one page of a list
			for _, op := range []string{"create child", "update other", "update self"} {
				t.Run(op, func(t *testing.T) {
					// setup creates a fresh caller (and target) as the admin and returns the request
					// of op, to be made with a body.
					setup := func(t *testing.T) (method, path, bearer, callerID string) {
						e.t = t
						caller := e.must(201, "POST", "/tokens", e.admin, `{"name":"caller","owner":"alice",`+holds+`}`)
						bearer, callerID = caller.str("token"), caller.str("id")
						switch op {
						case "create child":
							return "POST", "/tokens", bearer, callerID
						case "update other":
							target := e.must(201, "POST", "/tokens", e.admin, `{"name":"target","owner":"alice",`+holds+`}`).str("id")
							return "PATCH", "/tokens/" + target, bearer, callerID
						}
						return "PATCH", "/tokens/" + callerID, bearer, callerID
					}
					body := func(setting string) string {
						if op == "create child" {
							return `{"name":"child",` + setting + `}`
						}
						return `{` + setting + `}`
					}
					want := 200
					if op == "create child" {
						want = 201
					}
					for _, setting := range []string{r.tighten, r.equal} {
						t.Run(setting, func(t *testing.T) {
							method, path, bearer, _ := setup(t)
							resp := e.do(method, path, bearer, body(setting))
							if resp.status != want {
								t.Fatalf("status %d %s; want %d", resp.status, resp.raw, want)
							}
							e.assertShows(resp, setting)
						})
					}
					loosen := r.loosen
					if op != "create child" {
						loosen = append(loosen, r.loosenUpdate...)
					}
					for _, setting := range loosen {
						t.Run(setting, func(t *testing.T) {
							method, path, bearer, callerID := setup(t)
							before := e.stored("", 0)
							resp := e.do(method, path, bearer, body(setting))
							if resp.status != 403 || resp.str("code") != token.EFORBIDDEN {
								t.Fatalf("status %d %s; want 403 forbidden", resp.status, resp.raw)
							}
							if msg := resp.str("message"); !strings.HasPrefix(msg, r.field+": ") || !strings.Contains(msg, "your own (") {
								t.Fatalf("message %q does not name %s and the ceiling", msg, r.field)
							}
							// Authenticating the refused call took one of a metered caller's uses,
							// and nothing else may have changed.
							if after := e.stored(callerID, 1); after != before {
								t.Fatalf("a refused request changed the store:\nbefore %s\nafter  %s", before, after)
							}
						})
					}
				})
			}
		})
	}
}

// stored describes every token of the owners admin and alice as stored, usage fields aside, with
// uses added back to the remaining uses of the token with id callerID (what authenticating calls
// costs a metered caller), and every audit event.
func (e *env) stored(callerID string, uses int64) string {
	e.t.Helper()
	// Leases the instances hold go back first: units leased and not used are not spent.
	e.authz.ReturnLeases(context.Background(), true)
	e.svc.ReturnLeases(context.Background(), true)
	var b strings.Builder
	for _, owner := range []string{"admin", "alice"} {
		page, err := e.svc.List(context.Background(), token.Principal{Owner: owner, Permissions: []string{token.PermAdmin}},
			token.ListInput{Status: "all", Limit: token.MaxListLimit})
		if err != nil {
			e.t.Fatal(err)
		}
		if page.NextCursor != "" {
			e.t.Fatalf("more than %d tokens of %s: the description would be partial", token.MaxListLimit, owner)
		}
		for _, t := range page.Tokens {
			c := t.Clone()
			c.LastUsedAt, c.UsageCount = time.Time{}, 0
			if c.ID == callerID && c.Remaining != nil {
				*c.Remaining += uses
			}
			limits := fmt.Sprintf("rateLimit %v remaining %v refill %v", deref(c.RateLimit), deref(c.Remaining), deref(c.Refill))
			c.RateLimit, c.Remaining, c.Refill = nil, nil, nil
			fmt.Fprintf(&b, "%+v %s\n", *c, limits)
		}
	}
	// And the audit trail: a refused change writes no event either.
	in := token.AuditInput{Limit: token.MaxListLimit}
	for {
		page, err := e.svc.Audit(context.Background(), token.Principal{Permissions: []string{token.PermAdmin}}, in)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range page.Events {
			fmt.Fprintf(&b, "event %s %s %s\n", ev.ID, ev.Action, ev.TargetID)
		}
		if page.NextCursor == "" {
			return b.String()
		}
		in.Cursor = page.NextCursor
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// assertShows checks that the record answered shows each member of setting as given (expiresIn
// as the expiresAt it sets).
func (e *env) assertShows(resp response, setting string) {
	e.t.Helper()
	var want map[string]any
	if err := json.Unmarshal([]byte("{"+setting+"}"), &want); err != nil {
		e.t.Fatal(err)
	}
	for key, v := range want {
		got := resp.body[key]
		if key == "expiresIn" {
			key, got, v = "expiresAt", resp.body["expiresAt"], e.clock.Now().Add(time.Duration(v.(float64))*token.Day).Format(time.RFC3339)
		}
		if set, ok := v.(map[string]any); ok {
			if shown, ok := got.(map[string]any); ok {
				got = maps.Collect(func(yield func(string, any) bool) { // the setting's fields of the record
					for k := range set {
						if !yield(k, shown[k]) {
							return
						}
					}
				})
			}
		}
		if fmtAny(got) != fmtAny(v) {
			e.t.Errorf("%s = %s; want %s", key, fmtAny(got), fmtAny(v))
		}
	}
}

// TestDelegationIssueScenario replays the escalations reported in issue 10: a delegated manage
// token with an allowlist, a quota, a rate limit and a 1-day expiry could create an unrestricted
// child or clear its own restrictions, and a manage+read token could mint any permission. Each is
// now refused and writes nothing; a child that names none of them inherits them all.
func TestDelegationIssueScenario(t *testing.T) {
	e := newEnv(t, nil)
	ci := e.must(201, "POST", "/tokens", e.admin, `{"name":"ci","owner":"alice","permissions":["manage","read"],
		"allowedCidrs":["192.0.2.0/24"],"remaining":20,"rateLimit":{"limit":100,"windowSeconds":60},"expiresIn":1}`)
	tok, id := ci.str("token"), ci.str("id")
	uses := int64(0)
	refused := func(method, path, body, field string) {
		t.Helper()
		before := e.stored("", 0)
		// A second between calls: a quiet caller, whose every use is one lease of one unit
		// (token.Limiter), so that the counter is exact; a burst would lease ahead.
		e.clock.Advance(time.Second)
		resp := e.must(403, method, path, tok, body)
		uses++
		if !strings.HasPrefix(resp.str("message"), field+": ") {
			t.Errorf("%s %s: %q does not name %s", method, body, resp.str("message"), field)
		}
		if after := e.stored(id, 1); after != before {
			t.Fatalf("%s %s changed the store", method, body)
		}
	}
	escape := `"allowedCidrs":[],"remaining":null,"rateLimit":null,"expiresAt":null`
	refused("POST", "/tokens", `{"name":"escape",`+escape+`}`, "expiresAt")
	refused("PATCH", "/tokens/"+id, `{`+escape+`}`, "expiresAt")
	for _, member := range strings.Split(escape, ",") {
		refused("POST", "/tokens", `{"name":"escape",`+member+`}`, strings.Trim(strings.Split(member, ":")[0], `"`))
		refused("PATCH", "/tokens/"+id, `{`+member+`}`, strings.Trim(strings.Split(member, ":")[0], `"`))
	}
	for _, p := range []string{"admin:*", "billing:*", "delete", "a*"} {
		refused("POST", "/tokens", `{"name":"mint","permissions":["`+p+`"]}`, "permissions")
	}

	e.clock.Advance(time.Second)
	child := e.must(201, "POST", "/tokens", tok, `{"name":"child"}`)
	uses++
	want := map[string]any{
		"allowedCidrs": []any{"192.0.2.0/24"},
		"rateLimit":    map[string]any{"limit": 100.0, "windowSeconds": 60.0},
		"remaining":    float64(20 - uses),
		"expiresAt":    ci.body["expiresAt"],
		"permissions":  []any{"read"},
	}
	for key, v := range want {
		if fmtAny(child.body[key]) != fmtAny(v) {
			t.Errorf("inherited %s = %s; want %s", key, fmtAny(child.body[key]), fmtAny(v))
		}
	}

	// The quota is the caller's uses left when the call is checked, after it took its own.
	left := int64(e.must(200, "GET", "/tokens/"+id, e.admin, "").body["remaining"].(float64))
	e.clock.Advance(time.Second)
	resp := e.must(403, "POST", "/tokens", tok, fmt.Sprintf(`{"name":"q","remaining":%d}`, left))
	if want := fmt.Sprintf("remaining: must be no more than your own (%d)", left-1); resp.str("message") != want {
		t.Fatalf("message %q; want %q", resp.str("message"), want)
	}
	e.clock.Advance(time.Second)
	e.must(201, "POST", "/tokens", tok, fmt.Sprintf(`{"name":"q","remaining":%d}`, left-2))
}
