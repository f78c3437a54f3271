package authorizer_test

import (
	"context"
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// mustToken creates a token of alice with perms and limits, and returns its id and plaintext.
func (f *fixture) mustToken(t *testing.T, perms []string, limits token.LimitsInput) (string, string) {
	t.Helper()
	tok, plain, err := f.svc.Create(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}},
		token.CreateInput{Name: "counted", Permissions: perms, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID, plain
}

// assertCounters checks a token's usage counters of the fixture's day.
func (f *fixture) assertCounters(t *testing.T, id string, valid int64, refused map[string]int64) {
	t.Helper()
	days, err := f.store.UsageDays(context.Background(), id, f.clock.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := days[0]; d.Valid != valid || !maps.Equal(d.Refused, refused) {
		t.Fatalf("counters of %s: %d valid, refused %v; want %d, %v", id, d.Valid, d.Refused, valid, refused)
	}
}

// TestOutcomesRideOnUsageWrites: an authorizer counts valid uses and refusals by code in the
// token's usage counters without a write of their own: within the usage interval a token costs
// one usage write whatever its outcomes, and the refusals go out with its next valid use. A
// token refused again and again costs one write per interval. Junk never writes, and never
// creates counters.
func TestOutcomesRideOnUsageWrites(t *testing.T) {
	f := newFixture(t)
	// A cache that outlives the test: the decisions read the store once per token, and the usage
	// writes are the authorizer's throttled ones.
	a := f.authorizer(t, func(c *authorizer.Config) { withRoutes(t)(c); c.CacheTTL = 2 * time.Hour })
	ctx := context.Background()
	id, plain := f.mustToken(t, []string{"list"}, token.LimitsInput{RateLimit: &token.RateLimit{Limit: 4, Window: time.Hour}})
	authorize := func(tok, method, route string, want authorizer.Outcome, code string) {
		t.Helper()
		d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: method, Route: route})
		a.WaitForWrites()
		if err != nil || d.Outcome != want || d.Code != code {
			t.Fatalf("%s %s: %+v %v; want outcome %d, %s", method, route, d, err, want, code)
		}
	}
	authorize(plain, "GET", "/a", authorizer.Allowed, token.CodeValid)
	authorize(plain, "POST", "/upload", authorizer.Forbidden, token.CodeInsufficientPermissions) // counted in the window too
	for range 2 {
		authorize(plain, "GET", "/a", authorizer.Allowed, token.CodeValid)
	}
	authorize(plain, "GET", "/a", authorizer.Limited, token.CodeRateLimited)
	if uses, refusals := f.store.uses.Load(), f.store.refusals.Load(); uses != 1 || refusals != 0 {
		t.Fatalf("within the interval: %d usage writes and %d of refusals; want the one usage write only", uses, refusals)
	}
	f.assertCounters(t, id, 1, map[string]int64{})

	// Junk: an unknown id, a wrong secret for a known id, a malformed token.
	p, _ := token.Parse("tok", plain)
	for _, junk := range []string{f.unknown, token.Format("tok", "", p.ID, token.NewSecret()), f.badChecksum} {
		authorize(junk, "GET", "/a", authorizer.Unauthorized, map[bool]string{true: token.CodeMalformed, false: token.CodeNotFound}[junk == f.badChecksum])
	}
	if uses, refusals := f.store.uses.Load(), f.store.refusals.Load(); uses != 1 || refusals != 0 {
		t.Fatalf("junk tokens made usage writes: %d and %d", uses, refusals)
	}
	up, _ := token.Parse("tok", f.unknown)
	f.assertCounters(t, up.ID, 0, map[string]int64{})

	// A revoked token: its first refusal is written, the next ones wait for the interval.
	rp, _ := token.Parse("tok", f.revoked)
	for range 5 {
		authorize(f.revoked, "GET", "/a", authorizer.Unauthorized, token.CodeRevoked)
	}
	if refusals := f.store.refusals.Load(); refusals != 1 {
		t.Fatalf("5 refusals of a revoked token made %d writes; want 1", refusals)
	}
	f.assertCounters(t, rp.ID, 0, map[string]int64{token.CodeRevoked: 1})

	// The next window, after the interval: the valid use writes the buffered uses and refusals.
	f.clock.Advance(time.Hour)
	authorize(plain, "GET", "/a", authorizer.Allowed, token.CodeValid)
	if uses, refusals := f.store.uses.Load(), f.store.refusals.Load(); uses != 2 || refusals != 1 {
		t.Fatalf("after the interval: %d usage writes and %d of refusals; want 2 and 1", uses, refusals)
	}
	f.assertCounters(t, id, 4, map[string]int64{token.CodeInsufficientPermissions: 1, token.CodeRateLimited: 1})
	authorize(f.revoked, "GET", "/a", authorizer.Unauthorized, token.CodeRevoked)
	f.assertCounters(t, rp.ID, 0, map[string]int64{token.CodeRevoked: 6})
}

// TestOutcomesOfEveryRefusal: each refusal of a token the store holds is counted under its code,
// on every surface of the authorizer, the local server's management calls included (their limit
// refusals pass to the functions, which answer 429, and are counted all the same).
func TestOutcomesOfEveryRefusal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cidrs := []string{"203.0.113.0/24"}
	_, pinned := f.mustToken(t, []string{"list"}, token.LimitsInput{AllowedCIDRs: &cidrs})
	quotaID, quota := f.mustToken(t, []string{"list"}, token.LimitsInput{Remaining: ptr(int64(0))})
	_, bound, err := f.svc.Create(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}},
		token.CreateInput{Name: "billing", Permissions: []string{"list"}, APIs: []string{"billing"}})
	if err != nil {
		t.Fatal(err)
	}
	a := f.authorizer(t, func(c *authorizer.Config) { withRoutes(t)(c); c.APIName = "uploads"; c.UsageInterval = 0 })
	for _, tc := range []struct {
		tok  string
		code string
	}{
		{f.expired, token.CodeExpired},
		{f.revoked, token.CodeRevoked},
		{f.disabled, token.CodeDisabled},
		{bound, token.CodeForbiddenAPI},
		{pinned, token.CodeForbiddenIP},
		{quota, token.CodeUsageExceeded},
	} {
		d, err := a.Authorize(ctx, authorizer.Request{Token: tc.tok, Method: "GET", Route: "/a"})
		a.WaitForWrites()
		if err != nil || d.Code != tc.code {
			t.Fatalf("%+v %v; want %s", d, err, tc.code)
		}
		p, _ := token.Parse("tok", tc.tok)
		f.assertCounters(t, p.ID, 0, map[string]int64{tc.code: 1})
	}

	// The management authorizer of the local server: a quota refusal passes to the function.
	m := f.authorizer(t, func(c *authorizer.Config) { c.DeferLimits = true; c.CacheTTL = 0 })
	r := httptest.NewRequest("GET", "/tokens", nil)
	r.Header.Set("Authorization", "Bearer "+quota)
	if _, err := m.AuthenticateRequest(r); token.ErrorCode(err) != token.ERATELIMITED {
		t.Fatalf("management call over its quota: %v; want rate_limited", err)
	}
	f.assertCounters(t, quotaID, 0, map[string]int64{token.CodeUsageExceeded: 2})
}

// TestFlushCarriesRefusals: on Lambda (Config.BufferUses) refusals wait in the same
// buffer as valid uses and go out with the flush after a response: a refusal-only write leaves
// usageCount and lastUsedAt alone and counts the refusal on the token's day.
func TestFlushCarriesRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := f.authorizer(t, func(c *authorizer.Config) { c.BufferUses = true })
	p, _ := token.Parse("tok", f.disabled)
	before, err := f.store.Store.FindToken(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if d, _ := a.Authorize(ctx, authorizer.Request{Token: f.disabled, Method: "GET", Route: "/a"}); d.Code != token.CodeDisabled {
			t.Fatalf("%+v", d)
		}
	}
	f.assertCounters(t, p.ID, 0, map[string]int64{})
	a.FlushUsage(ctx, true)
	f.assertCounters(t, p.ID, 0, map[string]int64{token.CodeDisabled: 3})
	after, err := f.store.Store.FindToken(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.UsageCount != before.UsageCount || !after.LastUsedAt.Equal(before.LastUsedAt) {
		t.Fatalf("a refusal-only flush moved usage: %d at %v -> %d at %v", before.UsageCount, before.LastUsedAt, after.UsageCount, after.LastUsedAt)
	}
}
