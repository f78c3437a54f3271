package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestLimitsFields(t *testing.T) {
	e := newEnv(t, nil)
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"metered","rateLimit":{"limit":5,"windowSeconds":60},
		"remaining":100,"refill":{"amount":100,"intervalSeconds":86400},"allowedCidrs":["203.0.113.0/24","2001:db8::1","::ffff:198.51.100.0/120"]}`)
	for key, want := range map[string]string{
		"rateLimit":    `{"limit":5,"windowSeconds":60}`,
		"remaining":    "100",
		"refill":       `{"amount":100,"intervalSeconds":86400,"nextRefillAt":"2026-03-02T12:00:00Z"}`,
		"allowedCidrs": `["203.0.113.0/24","2001:db8::1/128","198.51.100.0/24"]`,
	} {
		if got := fmtAny(created.body[key]); got != want {
			t.Errorf("%s = %s; want %s", key, got, want)
		}
	}
	id := created.str("id")
	cleared := e.must(200, "PATCH", "/tokens/"+id, e.admin, `{"rateLimit":null,"remaining":null,"allowedCidrs":[]}`)
	for _, key := range []string{"rateLimit", "remaining", "refill", "allowedCidrs"} {
		if cleared.body[key] != nil {
			t.Errorf("after clearing, %s = %v; want null", key, cleared.body[key])
		}
	}
	plain := e.must(201, "POST", "/tokens", e.admin, `{"name":"plain"}`)
	for _, key := range []string{"rateLimit", "remaining", "refill", "allowedCidrs"} {
		if v, ok := plain.body[key]; !ok || v != nil {
			t.Errorf("a token without limits shows %s = %v (present %v); want null", key, v, ok)
		}
	}
}

// fmtAny renders a decoded JSON value as compact JSON, keys sorted.
func fmtAny(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestLimitsRejected(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ body, field string }{
		{`{"name":"a","allowedCidrs":["203.0.113.0/33"]}`, "allowedCidrs"},
		{`{"name":"a","allowedCidrs":["not-an-ip"]}`, "allowedCidrs"},
		{`{"name":"a","allowedCidrs":["::ffff:1.2.3.4/64"]}`, "allowedCidrs"},
		{`{"name":"a","allowedCidrs":"10.0.0.0/8"}`, "allowedCidrs"},
		{`{"name":"a","allowedCidrs":[` + strings.Repeat(`"10.0.0.1",`, 50) + `"10.0.0.2"]}`, "allowedCidrs"},
		{`{"name":"a","rateLimit":{"limit":0,"windowSeconds":60}}`, "rateLimit.limit"},
		{`{"name":"a","rateLimit":{"limit":1000001,"windowSeconds":60}}`, "rateLimit.limit"},
		{`{"name":"a","rateLimit":{"limit":5,"windowSeconds":86401}}`, "rateLimit.windowSeconds"},
		{`{"name":"a","rateLimit":{"limit":5,"windowSeconds":99999999999999}}`, "rateLimit.windowSeconds"},
		{`{"name":"a","rateLimit":{"limit":5}}`, "rateLimit.windowSeconds"},
		{`{"name":"a","rateLimit":{"limit":5,"window":60}}`, "window"},
		{`{"name":"a","rateLimit":5}`, "rateLimit"},
		{`{"name":"a","remaining":-1}`, "remaining"},
		{`{"name":"a","remaining":1.5}`, "remaining"},
		{`{"name":"a","refill":{"amount":5,"intervalSeconds":60}}`, "refill: needs remaining"},
		{`{"name":"a","remaining":5,"refill":{"amount":0,"intervalSeconds":60}}`, "refill.amount"},
		{`{"name":"a","remaining":5,"refill":{"amount":5,"intervalSeconds":0}}`, "refill.intervalSeconds"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			e.t = t
			before := e.snapshot()
			resp := e.must(400, "POST", "/tokens", e.admin, tc.body)
			if !strings.Contains(resp.str("message"), tc.field) {
				t.Fatalf("message %q does not name %s", resp.str("message"), tc.field)
			}
			if e.snapshot() != before {
				t.Fatal("a rejected create changed the store")
			}
		})
	}
}

func TestVerifyLimits(t *testing.T) {
	e := newEnv(t, nil)
	verify := func(tok, ip string) response {
		body := `{"token":"` + tok + `"`
		if ip != "" {
			body += `,"ip":"` + ip + `"`
		}
		return e.must(200, "POST", "/verify", "", body+"}")
	}

	pinned := e.must(201, "POST", "/tokens", e.admin, `{"name":"pinned","allowedCidrs":["203.0.113.0/24","2001:db8::/32"]}`).str("token")
	for ip, want := range map[string]string{
		"203.0.113.9": "VALID", "::ffff:203.0.113.9": "VALID", "2001:db8::7": "VALID",
		"198.51.100.1": "FORBIDDEN_IP", "2001:db9::1": "FORBIDDEN_IP", "": "FORBIDDEN_IP",
	} {
		if got := verify(pinned, ip); got.str("code") != want {
			t.Errorf("verify from %q: %s; want %s", ip, got.raw, want)
		}
	}
	e.must(400, "POST", "/verify", "", `{"token":"`+pinned+`","ip":"300.1.1.1"}`)

	limited := e.must(201, "POST", "/tokens", e.admin, `{"name":"limited","rateLimit":{"limit":2,"windowSeconds":60}}`).str("token")
	verify(limited, "")
	verify(limited, "")
	got := verify(limited, "")
	reset := e.clock.Now().Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339)
	if want := `{"valid":false,"code":"RATE_LIMITED","error":"Rate limit exceeded","reset":"` + reset + `"}` + "\n"; got.raw != want {
		t.Fatalf("third verify in a window of 2: %s; want %s", got.raw, want)
	}
	e.clock.Advance(time.Minute)
	if got := verify(limited, ""); got.str("code") != "VALID" {
		t.Fatalf("next window: %s", got.raw)
	}

	metered := e.must(201, "POST", "/tokens", e.admin, `{"name":"metered","remaining":1}`)
	verify(metered.str("token"), "")
	if got := verify(metered.str("token"), ""); got.str("code") != "USAGE_EXCEEDED" || got.str("error") != "Usage limit exceeded" {
		t.Fatalf("second use of a single-use token: %s", got.raw)
	}
	if got := e.must(200, "GET", "/tokens/"+metered.str("id"), e.admin, ""); got.body["remaining"] != 0.0 || got.body["usageCount"] != 1.0 {
		t.Fatalf("after the quota ran out: %s", got.raw)
	}
}

// TestManagementRateLimited: a management token over its rate limit answers 429 with
// Retry-After and RateLimit-* headers, and the call does nothing.
func TestManagementRateLimited(t *testing.T) {
	e := newEnv(t, nil)
	manager := e.must(201, "POST", "/tokens", e.admin, `{"name":"bot","permissions":["manage"],"owner":"admin","rateLimit":{"limit":2,"windowSeconds":60}}`).str("token")
	e.clock.Advance(15 * time.Second) // 45 s left in the window
	e.must(200, "GET", "/tokens", manager, "")
	e.must(200, "GET", "/tokens", manager, "")
	before := e.snapshot()
	resp := e.must(429, "POST", "/tokens", manager, `{"name":"x"}`)
	if resp.str("code") != "rate_limited" {
		t.Fatalf("429 body %s", resp.raw)
	}
	for h, want := range map[string]string{"Retry-After": "45", "RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "45"} {
		if got := resp.header.Get(h); got != want {
			t.Errorf("%s = %q; want %q", h, got, want)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("a rate-limited create changed the store:\n%s\n%s", before, after)
	}
	pinned := e.must(201, "POST", "/tokens", e.admin, `{"name":"pinned","permissions":["manage"],"owner":"admin","allowedCidrs":["10.0.0.0/8"]}`).str("token")
	if resp := e.must(403, "GET", "/tokens", pinned, ""); !strings.Contains(resp.str("message"), "address") {
		t.Fatalf("a pinned token from another address: %s", resp.raw)
	}
}
