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
// write for its first refusal; the outcomes that follow within the interval, refusals and valid
// uses alike, are held, shown by reads through the same Service, and go out together with the
// first outcome after the interval.
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
	if v, err := f.svc.Verify(ctx, plain); err != nil || !v.Valid() || v.Token.UsageCount != 1 {
		t.Fatalf("verify: %s %v; want VALID showing 1 use", v.Code, err)
	}
	if n, v := counting.refusals.Load(), counting.valid.Load(); n != 1 || v != 0 {
		t.Fatalf("%d refusal writes and %d valid ones; want 1 and 0 (the use is held)", n, v)
	}
	if stored, _ := f.mem.FindToken(ctx, tok.ID); stored.UsageCount != 0 {
		t.Fatalf("stored usageCount %d; want 0 until the interval has passed", stored.UsageCount)
	}
	if got := f.mustGet(t, tok.ID); got.UsageCount != 1 || !got.LastUsedAt.Equal(f.clock.Now()) {
		t.Fatalf("get through the same service: usageCount %d, lastUsedAt %v; want 1 and now", got.UsageCount, got.LastUsedAt)
	}
	days, err := f.svc.Usage(ctx, admin, tok.ID, 1)
	if err != nil || days[0].Valid != 1 || days[0].Refused[token.CodeDisabled] != 5 {
		t.Fatalf("counters through the same service %+v (%v); want 1 valid, 5 DISABLED", days, err)
	}

	f.clock.Advance(token.DefaultUsageInterval)
	if v, err := f.svc.Verify(ctx, plain); err != nil || !v.Valid() || v.Token.UsageCount != 2 {
		t.Fatalf("verify: %s %v; want VALID showing 2 uses", v.Code, err)
	}
	if n, v := counting.refusals.Load(), counting.valid.Load(); n != 1 || v != 1 {
		t.Fatalf("%d refusal writes and %d valid ones; want 1 and 1", n, v)
	}
	stored, err := f.mem.FindToken(ctx, tok.ID)
	if err != nil || stored.UsageCount != 2 || !stored.LastUsedAt.Equal(f.clock.Now()) {
		t.Fatalf("stored %+v (%v); want usageCount 2 and lastUsedAt now", stored, err)
	}
	days, err = f.mem.UsageDays(ctx, tok.ID, f.clock.Now(), 1)
	if err != nil || days[0].Valid != 2 || days[0].Refused[token.CodeDisabled] != 5 {
		t.Fatalf("stored counters %+v (%v); want 2 valid, 5 DISABLED", days, err)
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
