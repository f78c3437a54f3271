package token_test

import (
	"context"
	"maps"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

func TestRefusalBuffer(t *testing.T) {
	b := token.NewRefusalBuffer(time.Minute, 2)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	expect := func(step string, got, want map[string]int64) {
		t.Helper()
		if !maps.Equal(got, want) || (got == nil) != (want == nil) {
			t.Fatalf("%s: %v; want %v", step, got, want)
		}
	}
	expect("a token's first refusal is due at once", b.Add("a", token.CodeRevoked, at(0)), map[string]int64{token.CodeRevoked: 1})
	expect("within the interval: buffered", b.Add("a", token.CodeRevoked, at(1)), nil)
	expect("another code: buffered", b.Add("a", token.CodeExpired, at(2)), nil)
	expect("a usage write takes them", b.Take("a", at(3)), map[string]int64{token.CodeRevoked: 1, token.CodeExpired: 1})
	expect("the write restarts the interval", b.Add("a", token.CodeRevoked, at(4)), nil)
	expect("after the interval: due with what waited", b.Add("a", token.CodeRevoked, at(64)), map[string]int64{token.CodeRevoked: 2})
	b.Restore("a", map[string]int64{token.CodeRevoked: 2})
	expect("a failed write's counts come back", b.Take("a", at(65)), map[string]int64{token.CodeRevoked: 2})
	expect("a valid write of a token never refused takes nothing", b.Take("b", at(65)), nil)
	expect("and restarts its interval too", b.Add("b", token.CodeDisabled, at(66)), nil)

	// Full (a and b known, b holding a count): a third token is written at once, not kept.
	expect("full: due at once", b.Add("c", token.CodeExpired, at(67)), map[string]int64{token.CodeExpired: 1})
	expect("still not kept", b.Add("c", token.CodeExpired, at(68)), map[string]int64{token.CodeExpired: 1})
	expect("b is unaffected", b.Take("b", at(69)), map[string]int64{token.CodeDisabled: 1})
	// Once a and b have nothing pending and their interval has passed, room is made.
	expect("room again", b.Add("c", token.CodeExpired, at(200)), map[string]int64{token.CodeExpired: 1})
	expect("and c is buffered now", b.Add("c", token.CodeExpired, at(201)), nil)
}

// usageCountingStore counts the usage writes of a store: valid ones and refusals only.
type usageCountingStore struct {
	token.Store
	valid, refusals atomic.Int32
}

func (s *usageCountingStore) RecordUse(ctx context.Context, id string, u token.Usage) error {
	if u.Valid > 0 {
		s.valid.Add(1)
	} else {
		s.refusals.Add(1)
	}
	return s.Store.RecordUse(ctx, id, u)
}

// TestVerifyCountsOutcomes: verify counts the valid uses and the refusals of tokens the store
// holds by code, day by day; junk (unknown ids, wrong secrets, malformed tokens) counts nowhere
// and writes nothing.
func TestVerifyCountsOutcomes(t *testing.T) {
	counting := &usageCountingStore{}
	f := newFixtureOn(t, token.Config{UsageInterval: -1}, func(m *memstore.Store) token.Store { counting.Store = m; return counting })
	cidrs := []string{"203.0.113.0/24"}
	tok, plain := f.mustCreate(t, admin, token.CreateInput{Permissions: []string{"read"},
		Limits: token.LimitsInput{AllowedCIDRs: &cidrs, RateLimit: &token.RateLimit{Limit: 3, Window: time.Hour}}})
	verify := func(in token.VerifyInput, want string) {
		t.Helper()
		if in.Token == "" {
			in.Token = plain
		}
		if !in.SourceIP.IsValid() {
			in.SourceIP = netip.MustParseAddr("203.0.113.7")
		}
		v, err := f.svc.VerifyRequest(ctx, in)
		if err != nil || v.Code != want {
			t.Fatalf("verify: %s %v; want %s", v.Code, err, want)
		}
	}
	verify(token.VerifyInput{}, token.CodeValid)
	verify(token.VerifyInput{Permissions: []string{"write"}}, token.CodeInsufficientPermissions)
	verify(token.VerifyInput{SourceIP: netip.MustParseAddr("198.51.100.1")}, token.CodeForbiddenIP)
	verify(token.VerifyInput{}, token.CodeValid)
	verify(token.VerifyInput{}, token.CodeValid)
	verify(token.VerifyInput{}, token.CodeRateLimited)
	f.clock.Advance(25 * time.Hour) // the next day
	verify(token.VerifyInput{}, token.CodeValid)

	before := counting.valid.Load() + counting.refusals.Load()
	p, _ := token.Parse(token.DefaultPrefix, plain)
	for _, junk := range []string{
		token.Format(token.DefaultPrefix, "", token.NewID(), token.NewSecret()), // unknown id
		token.Format(token.DefaultPrefix, "", p.ID, token.NewSecret()),          // wrong secret
		plain[:len(plain)-1], // malformed
	} {
		v, err := f.svc.Verify(ctx, junk)
		if err != nil || v.Valid() || v.Token != nil {
			t.Fatalf("junk verify: %+v %v", v, err)
		}
	}
	if after := counting.valid.Load() + counting.refusals.Load(); after != before {
		t.Fatalf("junk tokens made %d usage writes; want none", after-before)
	}

	days, err := f.svc.Usage(ctx, admin, tok.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		valid   int64
		refused map[string]int64
	}{
		{0, map[string]int64{}},
		{3, map[string]int64{token.CodeInsufficientPermissions: 1, token.CodeForbiddenIP: 1, token.CodeRateLimited: 1}},
		{1, map[string]int64{}},
	}
	for i, d := range days {
		if d.Valid != want[i].valid || !maps.Equal(d.Refused, want[i].refused) || !d.Day.Equal(start.Truncate(token.Day).AddDate(0, 0, i-1)) {
			t.Errorf("day %d (%v): %d %v; want %d %v", i, d.Day, d.Valid, d.Refused, want[i].valid, want[i].refused)
		}
	}
}

// TestVerifyBuffersRefusals: with the default interval, a token refused again and again costs one
// write for its first refusal; the others ride on its next valid use's write, or go out once the
// interval has passed.
func TestVerifyBuffersRefusals(t *testing.T) {
	counting := &usageCountingStore{}
	f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { counting.Store = m; return counting })
	tok, plain := f.mustCreate(t, admin, token.CreateInput{Enabled: ptr(false)})
	for range 5 {
		if v, err := f.svc.Verify(ctx, plain); err != nil || v.Code != token.CodeDisabled {
			t.Fatalf("verify: %s %v", v.Code, err)
		}
	}
	if n := counting.refusals.Load(); n != 1 {
		t.Fatalf("5 refusals within the interval made %d writes; want 1", n)
	}
	if _, err := f.svc.Update(ctx, admin, tok.ID, token.UpdateInput{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if v, err := f.svc.Verify(ctx, plain); err != nil || !v.Valid() {
		t.Fatalf("verify: %s %v", v.Code, err)
	}
	if n, v := counting.refusals.Load(), counting.valid.Load(); n != 1 || v != 1 {
		t.Fatalf("%d refusal writes and %d valid ones; want 1 and 1", n, v)
	}
	days, err := f.svc.Usage(ctx, admin, tok.ID, 1)
	if err != nil || days[0].Valid != 1 || days[0].Refused[token.CodeDisabled] != 5 {
		t.Fatalf("counters %+v (%v); want 1 valid, 5 DISABLED", days, err)
	}

	if _, err := f.svc.Update(ctx, admin, tok.ID, token.UpdateInput{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	f.svc.Verify(ctx, plain) // within the interval of the valid write: buffered
	f.clock.Advance(token.DefaultUsageInterval)
	f.svc.Verify(ctx, plain) // the interval has passed: both go out
	if n := counting.refusals.Load(); n != 2 {
		t.Fatalf("%d refusal writes; want 2", n)
	}
	days, err = f.svc.Usage(ctx, admin, tok.ID, 1)
	if err != nil || days[0].Refused[token.CodeDisabled] != 7 {
		t.Fatalf("counters %+v (%v); want 7 DISABLED", days, err)
	}
}

func TestUsageRules(t *testing.T) {
	f := newFixture(t, token.Config{})
	tok, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	alice, _ := f.mustCaller(t, "alice", token.PermManage)
	mallory, _ := f.mustCaller(t, "mallory", token.PermManage)
	reader, _ := f.mustCaller(t, "alice", "read")
	for _, tc := range []struct {
		name   string
		caller token.Principal
		id     string
		days   int
		want   string
	}{
		{"owner", alice, tok.ID, 30, ""},
		{"admin", admin, tok.ID, token.MaxUsageDays, ""},
		{"one day", alice, tok.ID, 1, ""},
		{"no days", alice, tok.ID, 0, token.EINVALID},
		{"too many days", alice, tok.ID, token.MaxUsageDays + 1, token.EINVALID},
		{"another owner's token", mallory, tok.ID, 30, token.ENOTFOUND},
		{"unknown", alice, token.NewID(), 30, token.ENOTFOUND},
		{"not an id", alice, "../" + tok.ID, 30, token.ENOTFOUND},
		{"without manage", reader, tok.ID, 30, token.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			days, err := f.svc.Usage(ctx, tc.caller, tc.id, tc.days)
			if got := token.ErrorCode(err); got != tc.want {
				t.Fatalf("error %q (%v); want %q", got, err, tc.want)
			}
			if err == nil && len(days) != tc.days {
				t.Fatalf("%d days; want %d", len(days), tc.days)
			}
			if tc.want == token.EINVALID && token.ErrorMessage(err)[:5] != "days:" {
				t.Fatalf("message %q does not name days", token.ErrorMessage(err))
			}
		})
	}
}

func TestRateWindowsAndQuotaNow(t *testing.T) {
	f := newFixture(t, token.Config{})
	limited, plain := f.mustCreate(t, admin, token.CreateInput{Limits: token.LimitsInput{
		RateLimit: &token.RateLimit{Limit: 5, Window: time.Hour},
		Remaining: ptr(int64(2)), Refill: &token.Refill{Amount: 10, Interval: token.Day},
	}})
	plainTok, _ := f.mustCreate(t, admin, token.CreateInput{})
	for range 3 {
		f.svc.Verify(ctx, plain)
	}
	tokens := []*token.Token{plainTok, limited}
	states, err := f.svc.RateWindows(ctx, tokens)
	if err != nil {
		t.Fatal(err)
	}
	reset := token.WindowStart(f.clock.Now(), time.Hour).Add(time.Hour)
	if len(states) != 1 || states[limited.ID] != (token.WindowState{Count: 3, Remaining: 2, Reset: reset}) {
		t.Fatalf("states %+v; want only %s with 3 counted, 2 left, reset %v", states, limited.ID, reset)
	}
	if states, err := f.svc.RateWindows(ctx, []*token.Token{plainTok}); err != nil || states != nil {
		t.Fatalf("without rate limits: %v %v; want none, and no read", states, err)
	}

	got, err := f.svc.Get(ctx, admin, limited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if left, next, ok := got.QuotaNow(f.clock.Now()); !ok || left != 0 || !next.Equal(got.RefilledAt.Add(token.Day)) {
		t.Fatalf("quota now: %d left, next refill %v (%v); want 0 and %v", left, next, ok, got.RefilledAt.Add(token.Day))
	}
	f.clock.Advance(token.Day + time.Hour) // a refill fell due; the next use applies it
	if left, next, ok := got.QuotaNow(f.clock.Now()); !ok || left != 10 || !next.Equal(got.RefilledAt.Add(2*token.Day)) {
		t.Fatalf("quota after a due refill: %d left, next refill %v; want 10 and %v", left, next, got.RefilledAt.Add(2*token.Day))
	}
	if _, _, ok := plainTok.QuotaNow(f.clock.Now()); ok {
		t.Fatal("a token without a quota has one")
	}
}
