package token_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// delegator creates, as an admin, a token of alice holding manage, the given permissions and
// settings (never expiring unless in says otherwise), and returns the caller that presents it.
func (f *fixture) delegator(tb testing.TB, in token.CreateInput) token.Principal {
	tb.Helper()
	in.Owner, in.Name = "alice", "delegator"
	in.Permissions = append([]string{token.PermManage}, in.Permissions...)
	if in.Lifetime == (token.Lifetime{}) {
		in.Lifetime.Never = true
	}
	t, _ := f.mustCreate(tb, admin, in)
	return t.Principal()
}

// assertDelegation checks that err is nil when ok, else EFORBIDDEN with a message starting with
// field.
func assertDelegation(tb testing.TB, err error, ok bool, field string) {
	tb.Helper()
	if ok {
		if err != nil {
			tb.Fatalf("refused: %v; want allowed", err)
		}
		return
	}
	storetest.AssertCode(tb, err, token.EFORBIDDEN)
	if msg := token.ErrorMessage(err); !strings.HasPrefix(msg, field+": ") {
		tb.Fatalf("message %q does not name %s", msg, field)
	}
}

// TestDelegatedPermissions: a granted permission must be covered by one grant of the caller, as
// HasPermission matches; a wildcard only by a grant that covers everything it could match.
func TestDelegatedPermissions(t *testing.T) {
	for _, tc := range []struct {
		held  []string
		grant string
		ok    bool
	}{
		{[]string{"files:read"}, "files:read", true},
		{[]string{"files:*"}, "files:read", true},
		{[]string{"files:*"}, "files:r*", true},
		{[]string{"files:*"}, "files:*", true},
		{[]string{"f*"}, "files:*", true},
		{[]string{"a*"}, "a*b", true}, // a literal permission, which a* grants
		{[]string{"files:read"}, "files:*", false},
		{[]string{"files:read"}, "files:read*", false},
		{[]string{"files:read", "files:write"}, "files:*", false},
		{[]string{"files:*"}, "files*", false}, // would match "filesystem"
		{[]string{"files:*"}, "f*", false},
		{[]string{"files:r*"}, "files:*", false},
		{[]string{"files:**"}, "files:*", false}, // grants only what starts "files:*", the literal star
		{[]string{"files:*"}, "billing:read", false},
		{[]string{"read"}, "a*", false},
		{nil, token.PermManage, true}, // the delegator holds manage
	} {
		t.Run(fmt.Sprintf("%v grants %s", tc.held, tc.grant), func(t *testing.T) {
			f := newFixture(t, token.Config{})
			caller := f.delegator(t, token.CreateInput{Permissions: tc.held})
			_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Permissions: []string{tc.grant}})
			assertDelegation(t, err, tc.ok, "permissions")
		})
	}
	t.Run("default permissions not held", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"files:*"}})
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child"}) // default ["read"]
		assertDelegation(t, err, false, "permissions")
	})
	t.Run("admin never", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"a*"}})
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Permissions: []string{token.PermAdmin}})
		storetest.AssertCode(t, err, token.EFORBIDDEN)
	})
}

// TestDelegatedAllowlist: each prefix of the child lies inside one of the caller's, of the same
// address family; IPv4-mapped entries count as IPv4; clearing is refused.
func TestDelegatedAllowlist(t *testing.T) {
	held := []string{"192.0.2.0/24", "2001:db8::/32"}
	for _, tc := range []struct {
		child []string
		ok    bool
	}{
		{[]string{"192.0.2.0/24"}, true},
		{[]string{"192.0.2.128/25", "192.0.2.7"}, true},
		{[]string{"::ffff:192.0.2.0/120"}, true}, // 192.0.2.0/24
		{[]string{"2001:db8::/32", "2001:db8:ab::/48", "2001:db8::1"}, true},
		{[]string{"192.0.2.0/23"}, false},
		{[]string{"192.0.2.0/24", "198.51.100.1"}, false},
		{[]string{"2001:db8::/31"}, false},
		{[]string{"2001:db9::/48"}, false},
		{[]string{"::ffff:192.0.2.0/104"}, false}, // 192.0.0.0/8
		{[]string{"::/0"}, false},
		{[]string{"0.0.0.0/0"}, false},
		{[]string{"::c000:200/120"}, false}, // IPv4-compatible, an IPv6 prefix
		{[]string{}, false},                 // no allowlist: every address
	} {
		t.Run(fmt.Sprint(tc.child), func(t *testing.T) {
			f := newFixture(t, token.Config{})
			caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: token.LimitsInput{AllowedCIDRs: &held}})
			_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{AllowedCIDRs: &tc.child}})
			assertDelegation(t, err, tc.ok, "allowedCidrs")
		})
	}
	t.Run("IPv4 only above", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: token.LimitsInput{AllowedCIDRs: &[]string{"0.0.0.0/0"}}})
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{AllowedCIDRs: &[]string{"2001:db8::/32"}}})
		assertDelegation(t, err, false, "allowedCidrs")
	})
}

// TestDelegatedRateLimit: under the caller's 100 per 60 s, a child's limit is refused exactly
// when its windows can admit more than 100 requests within one of the caller's windows.
func TestDelegatedRateLimit(t *testing.T) {
	for _, tc := range []struct {
		limit, window int64
		ok            bool
	}{
		{100, 60, true},
		{10, 60, true},
		{1, 1, true},      // 60 in any minute
		{2, 1, false},     // 120
		{50, 30, true},    // two windows per minute
		{51, 30, false},   //
		{100, 120, true},  // one window spans each of the caller's
		{101, 120, false}, // a burst the caller cannot make
		{200, 120, false}, // the same rate, a larger burst
		{100, 30, false},  // twice the rate
		{50, 45, true},    // windows of 45 s meet at most 2 of 60 s
		{51, 45, false},
		{50, 90, true},   // windows of 90 s meet at most 2 of 60 s
		{100, 90, false}, // 200 across a boundary at 90 s inside one minute
		{10, 7, true},    // at most 10 windows of 7 s meet one minute
		{11, 7, false},
	} {
		t.Run(fmt.Sprintf("%d per %d s", tc.limit, tc.window), func(t *testing.T) {
			f := newFixture(t, token.Config{})
			caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 100, Window: time.Minute}}})
			_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child",
				Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: tc.limit, Window: time.Duration(tc.window) * time.Second}}})
			assertDelegation(t, err, tc.ok, "rateLimit")
			if !tc.ok && !strings.Contains(token.ErrorMessage(err), "(100 per 60 s)") {
				t.Fatalf("message %q does not state the ceiling", token.ErrorMessage(err))
			}
		})
	}
	t.Run("cleared", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 100, Window: time.Minute}}})
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{ClearRateLimit: true}})
		assertDelegation(t, err, false, "rateLimit")
	})
}

// TestDelegatedRateLimitMatchesWindows checks the rate rule against a count of the windows
// themselves: for windows of 1-20 s on both sides, a child's limit is accepted exactly when
// (the most windows of the child that meet one window of the caller) x limit <= the caller's.
func TestDelegatedRateLimitMatchesWindows(t *testing.T) {
	const ceiling = 60
	f := newFixture(t, token.Config{})
	for W := int64(1); W <= 20; W++ {
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"},
			Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: ceiling, Window: time.Duration(W) * time.Second}}})
		for w := int64(1); w <= 20; w++ {
			// Windows start at multiples of their length; those of the caller at k*W, whose
			// offsets into the child's windows repeat with period w.
			most := int64(0)
			for k := range w {
				start, end := k*W, k*W+W
				most = max(most, (end+w-1)/w-start/w)
			}
			for _, limit := range []int64{ceiling / most, ceiling/most + 1} {
				if limit < 1 {
					continue
				}
				_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child",
					Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: limit, Window: time.Duration(w) * time.Second}}})
				if ok := limit*most <= ceiling; (err == nil) != ok {
					t.Errorf("%d per %d s under %d per %d s (%d windows meet one): err %v; want allowed %v", limit, w, ceiling, W, most, err, ok)
				}
			}
		}
	}
}

// TestDelegatedQuota: remaining no more than the caller's uses left now (read fresh, a refill
// due counted), a refill no larger and no faster, and no unlimited child of a metered caller.
func TestDelegatedQuota(t *testing.T) {
	hour := time.Hour
	refill := func(amount int64, interval time.Duration) *token.Refill {
		return &token.Refill{Amount: amount, Interval: interval}
	}
	metered := token.LimitsInput{Remaining: ptr(int64(50)), Refill: refill(50, hour)}
	for _, tc := range []struct {
		name  string
		child token.LimitsInput
		ok    bool
		field string
	}{
		{"equal", token.LimitsInput{Remaining: ptr(int64(50)), Refill: refill(50, hour)}, true, ""},
		{"fewer, slower", token.LimitsInput{Remaining: ptr(int64(1)), Refill: refill(10, 2*hour)}, true, ""},
		{"smaller and as fast", token.LimitsInput{Remaining: ptr(int64(25)), Refill: refill(25, hour/2)}, true, ""},
		{"no refill", token.LimitsInput{Remaining: ptr(int64(50))}, true, ""},
		{"more", token.LimitsInput{Remaining: ptr(int64(51))}, false, "remaining"},
		{"unlimited", token.LimitsInput{ClearRemaining: true}, false, "remaining"},
		{"larger refill", token.LimitsInput{Remaining: ptr(int64(5)), Refill: refill(51, 2*hour)}, false, "refill"},
		{"faster refill", token.LimitsInput{Remaining: ptr(int64(5)), Refill: refill(50, hour-time.Second)}, false, "refill"},
		{"refill of the largest amount", token.LimitsInput{Remaining: ptr(int64(5)), Refill: refill(token.MaxRemaining, token.MaxRefillInterval)}, false, "refill"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, token.Config{})
			caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: metered})
			_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: tc.child})
			assertDelegation(t, err, tc.ok, tc.field)
		})
	}

	t.Run("uses left now", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		m, plain := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage, "read"},
			Limits: token.LimitsInput{Remaining: ptr(int64(3)), Refill: refill(3, hour)}})
		caller := m.Principal()
		f.assertVerdict(t, plain, token.CodeValid)
		f.assertVerdict(t, plain, token.CodeValid) // 1 left
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{Remaining: ptr(int64(2))}})
		if msg := token.ErrorMessage(err); msg != "remaining: must be no more than your own (1)" {
			t.Fatalf("2 uses from a caller with 1 left: %v", err)
		}
		f.clock.Advance(hour) // a refill is due; no use has applied it yet
		child, _ := f.mustCreate(t, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{Remaining: ptr(int64(3))}})
		if *child.Remaining != 3 {
			t.Fatalf("child remaining %d", *child.Remaining)
		}
	})
	t.Run("no refill above", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Limits: token.LimitsInput{Remaining: ptr(int64(50))}})
		_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Limits: token.LimitsInput{Remaining: ptr(int64(1)), Refill: refill(1, token.MaxRefillInterval)}})
		if msg := token.ErrorMessage(err); msg != "refill: must be no looser than your own (none)" {
			t.Fatalf("a refill under a caller without one: %v", err)
		}
	})
}

// TestDelegatedExpiry: no later than the caller; never only under a caller that never expires;
// an omitted expiry is the default, or the caller's when that comes first.
func TestDelegatedExpiry(t *testing.T) {
	f := newFixture(t, token.Config{})
	now := f.clock.Now()
	caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Lifetime: token.Lifetime{Days: ptr(30)}})
	callerExpiry := now.Add(30 * token.Day)
	for _, tc := range []struct {
		name string
		l    token.Lifetime
		want time.Time // zero: refused
	}{
		{"sooner", token.Lifetime{Days: ptr(10)}, now.Add(10 * token.Day)},
		{"as late", token.Lifetime{Days: ptr(30)}, callerExpiry},
		{"at the caller's", token.Lifetime{At: ptr(callerExpiry)}, callerExpiry},
		{"omitted: the caller's, before the default", token.Lifetime{}, callerExpiry},
		{"later", token.Lifetime{Days: ptr(31)}, time.Time{}},
		{"a second later", token.Lifetime{At: ptr(callerExpiry.Add(time.Second))}, time.Time{}},
		{"never", token.Lifetime{Never: true}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			child, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Lifetime: tc.l})
			assertDelegation(t, err, !tc.want.IsZero(), "expiresAt")
			if err == nil && !child.ExpiresAt.Equal(tc.want) {
				t.Fatalf("expiresAt %v; want %v", child.ExpiresAt, tc.want)
			}
		})
	}
	t.Run("omitted: the default, before the caller's", func(t *testing.T) {
		late := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, Lifetime: token.Lifetime{Days: ptr(400)}})
		child, _ := f.mustCreate(t, late, token.CreateInput{})
		if !child.ExpiresAt.Equal(now.Add(365 * token.Day)) {
			t.Fatalf("expiresAt %v; want the default, 365 days", child.ExpiresAt)
		}
	})
	t.Run("never under a caller that never expires", func(t *testing.T) {
		forever := f.delegator(t, token.CreateInput{Permissions: []string{"read"}})
		f.mustCreate(t, forever, token.CreateInput{Lifetime: token.Lifetime{Never: true}})
	})
}

// TestDelegatedAPIs: a bound caller binds its children to a subset of its APIs; omitted (or an
// empty list) inherits its list, so it cannot create an unbound token. An unbound caller binds
// freely.
func TestDelegatedAPIs(t *testing.T) {
	f := newFixture(t, token.Config{})
	bound := f.delegator(t, token.CreateInput{Permissions: []string{"read"}, APIs: []string{"uploads", "media"}})
	for _, tc := range []struct {
		apis []string
		want []string // nil: refused
	}{
		{[]string{"uploads"}, []string{"uploads"}},
		{[]string{"media", "uploads"}, []string{"media", "uploads"}},
		{nil, []string{"uploads", "media"}},
		{[]string{}, []string{"uploads", "media"}},
		{[]string{"uploads", "billing"}, nil},
	} {
		t.Run(fmt.Sprint(tc.apis), func(t *testing.T) {
			child, _, err := f.svc.Create(ctx, bound, token.CreateInput{Name: "child", APIs: tc.apis})
			assertDelegation(t, err, tc.want != nil, "apis")
			if err == nil && !slices.Equal(child.APIs, tc.want) {
				t.Fatalf("apis %v; want %v", child.APIs, tc.want)
			}
		})
	}
	unbound := f.delegator(t, token.CreateInput{Permissions: []string{"read"}})
	if child, _ := f.mustCreate(t, unbound, token.CreateInput{APIs: []string{"billing"}}); !slices.Equal(child.APIs, []string{"billing"}) {
		t.Fatalf("an unbound caller's child: apis %v", child.APIs)
	}
}

// TestDelegationInherits: a create that omits them gets the caller's apis, expiry, allowlist,
// rate limit and quota (uses left now, and the refill).
func TestDelegationInherits(t *testing.T) {
	f := newFixture(t, token.Config{})
	m, plain := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage, "read"},
		APIs: []string{"uploads"}, Lifetime: token.Lifetime{Days: ptr(7)},
		Limits: token.LimitsInput{
			AllowedCIDRs: &[]string{"192.0.2.0/24", "2001:db8::/32"},
			RateLimit:    &token.RateLimit{Limit: 10, Window: time.Minute},
			Remaining:    ptr(int64(100)),
			Refill:       &token.Refill{Amount: 100, Interval: token.Day},
		}})
	if v, err := f.svc.VerifyRequest(ctx, token.VerifyInput{Token: plain, SourceIP: netip.MustParseAddr("192.0.2.1")}); err != nil || !v.Valid() {
		t.Fatalf("verify: %v %v", v.Code, err)
	}
	f.clock.Advance(time.Hour)
	child, _ := f.mustCreate(t, m.Principal(), token.CreateInput{})
	want := m.Clone()
	want.Remaining = ptr(int64(99))
	for _, d := range []struct {
		field     string
		got, want any
	}{
		{"apis", child.APIs, want.APIs},
		{"expiresAt", child.ExpiresAt, want.ExpiresAt},
		{"allowedCidrs", child.AllowedCIDRs, want.AllowedCIDRs},
		{"rateLimit", *child.RateLimit, *want.RateLimit},
		{"remaining", *child.Remaining, *want.Remaining},
		{"refill", *child.Refill, *want.Refill},
		{"permissions", child.Permissions, []string{"read"}},
	} {
		if fmt.Sprint(d.got) != fmt.Sprint(d.want) {
			t.Errorf("%s = %v; want %v", d.field, d.got, d.want)
		}
	}
	if !child.RefilledAt.Equal(f.clock.Now()) {
		t.Errorf("refilledAt %v; want now: the child's refills count from its creation", child.RefilledAt)
	}
	t.Run("a refill is the caller's only with its remaining", func(t *testing.T) {
		c, _ := f.mustCreate(t, m.Principal(), token.CreateInput{Limits: token.LimitsInput{Remaining: ptr(int64(5))}})
		if *c.Remaining != 5 || c.Refill != nil {
			t.Fatalf("remaining %d refill %v; want 5 and none", *c.Remaining, c.Refill)
		}
	})
}

// TestDelegationCaller: the caller's own token is read fresh; gone, revoked, expired or disabled
// by now, the call is EUNAUTHORIZED; no longer holding manage, EFORBIDDEN. An admin, and a caller
// that presented no token, have no ceiling but the owner.
func TestDelegationCaller(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *fixture, caller token.Principal)
		want   string
	}{
		{"revoked", func(f *fixture, c token.Principal) { f.svc.Revoke(ctx, admin, c.TokenID) }, token.EUNAUTHORIZED},
		{"disabled", func(f *fixture, c token.Principal) {
			f.svc.Update(ctx, admin, c.TokenID, token.UpdateInput{Enabled: ptr(false)})
		}, token.EUNAUTHORIZED},
		{"expired", func(f *fixture, c token.Principal) { f.clock.Advance(2 * token.Day) }, token.EUNAUTHORIZED},
		{"manage taken away", func(f *fixture, c token.Principal) {
			f.svc.Update(ctx, admin, c.TokenID, token.UpdateInput{Permissions: &[]string{"billing:*"}})
		}, token.EFORBIDDEN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, token.Config{})
			caller := f.delegator(t, token.CreateInput{Permissions: []string{"billing:*"}, Lifetime: token.Lifetime{Days: ptr(1)}})
			tc.change(f, caller)
			_, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "child", Permissions: []string{"billing:*"}})
			storetest.AssertCode(t, err, tc.want)
			target, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
			_, err = f.svc.Update(ctx, caller, target.ID, token.UpdateInput{Permissions: &[]string{"billing:read"}})
			storetest.AssertCode(t, err, tc.want)
		})
	}
	child := token.CreateInput{Name: "child", Permissions: []string{"billing:*"}, Lifetime: token.Lifetime{Never: true}}
	t.Run("admin", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		root, _ := f.mustCaller(t, "ops", token.PermAdmin, token.PermManage)
		f.mustCreate(t, root, child)
	})
	t.Run("no token presented", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		person := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}
		f.mustCreate(t, person, child)
		_, _, err := f.svc.Create(ctx, person, token.CreateInput{Name: "bob's", Owner: "bob"})
		storetest.AssertCode(t, err, token.EFORBIDDEN)
	})
}

// TestDelegatedUpdate: an update may tighten a token the caller manages, even one looser than
// the caller, and may loosen a setting only up to the caller's ceiling; what it does not set is
// not checked.
func TestDelegatedUpdate(t *testing.T) {
	f := newFixture(t, token.Config{})
	caller := f.delegator(t, token.CreateInput{Permissions: []string{"read", "write"},
		Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 100, Window: time.Minute}}})
	legacy, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Name: "legacy", Permissions: []string{"read", "billing", "deploy"},
		Lifetime: token.Lifetime{Never: true}, Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 1000, Window: time.Minute}}})
	for _, tc := range []struct {
		name  string
		in    token.UpdateInput
		ok    bool
		field string
	}{
		{"rename a looser token", token.UpdateInput{Name: ptr("renamed")}, true, ""},
		{"disable it", token.UpdateInput{Enabled: ptr(false)}, true, ""},
		{"narrow its permissions", token.UpdateInput{Permissions: &[]string{"read", "billing"}}, true, ""},
		{"set permissions the caller holds", token.UpdateInput{Permissions: &[]string{"read", "write"}}, true, ""},
		{"mix both", token.UpdateInput{Permissions: &[]string{"write", "billing"}}, false, "permissions"},
		{"tighten its rate, still above the caller's", token.UpdateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 500, Window: time.Minute}}}, true, ""},
		{"loosen its rate", token.UpdateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 2000, Window: time.Minute}}}, false, "rateLimit"},
		{"clear its rate", token.UpdateInput{Limits: token.LimitsInput{ClearRateLimit: true}}, false, "rateLimit"},
		{"give it an expiry", token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(30)}}, true, ""},
		{"give it an allowlist", token.UpdateInput{Limits: token.LimitsInput{AllowedCIDRs: &[]string{"10.0.0.0/8"}}}, true, ""},
		{"give it a quota", token.UpdateInput{Limits: token.LimitsInput{Remaining: ptr(int64(10))}}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.mustGet(t, legacy.ID)
			_, err := f.svc.Update(ctx, caller, legacy.ID, tc.in)
			assertDelegation(t, err, tc.ok, tc.field)
			if err != nil {
				storetest.AssertEqualTokens(t, f.mustGet(t, legacy.ID), before)
				return
			}
			// Undo, as an admin, for the next case.
			undo := token.UpdateInput{Name: ptr("legacy"), Enabled: ptr(true), Permissions: &legacy.Permissions,
				Lifetime: &token.Lifetime{Never: true}, Limits: token.LimitsInput{RateLimit: legacy.RateLimit, AllowedCIDRs: &[]string{}, ClearRemaining: true}}
			if _, err := f.svc.Update(ctx, admin, legacy.ID, undo); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("itself", func(t *testing.T) {
		for _, tc := range []struct {
			in token.UpdateInput
			ok bool
		}{
			{token.UpdateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 50, Window: time.Minute}}}, true},
			{token.UpdateInput{Limits: token.LimitsInput{RateLimit: &token.RateLimit{Limit: 100, Window: time.Minute}}}, false}, // now above its 50
			{token.UpdateInput{Permissions: &[]string{token.PermManage, "read"}}, true},
			{token.UpdateInput{Permissions: &[]string{token.PermManage, "read", "write"}}, false}, // write was given up
		} {
			_, err := f.svc.Update(ctx, caller, caller.TokenID, tc.in)
			if (err == nil) != tc.ok {
				t.Errorf("Update(self, %+v): %v; want allowed %v", tc.in, err, tc.ok)
			}
		}
	})
}

// TestDelegationStoreCalls: a non-admin's create reads its caller once; an update reads it once
// when it sets a bounded setting of another token, and not at all for its own token or for a
// setting without a ceiling (name, enabled, autoDelete, meta).
func TestDelegationStoreCalls(t *testing.T) {
	var finds int
	f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { return &findCounter{Store: m, finds: &finds} })
	caller := f.delegator(t, token.CreateInput{Permissions: []string{"read"}})
	target, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	for _, tc := range []struct {
		name string
		call func() error
		want int
	}{
		{"create", func() error { _, _, err := f.svc.Create(ctx, caller, token.CreateInput{Name: "c"}); return err }, 1},
		{"create by an admin", func() error { _, _, err := f.svc.Create(ctx, admin, token.CreateInput{Name: "c"}); return err }, 0},
		{"update permissions", func() error {
			_, err := f.svc.Update(ctx, caller, target.ID, token.UpdateInput{Permissions: &[]string{"read"}})
			return err
		}, 2},
		{"update name", func() error {
			_, err := f.svc.Update(ctx, caller, target.ID, token.UpdateInput{Name: ptr("n")})
			return err
		}, 1},
		{"update itself", func() error {
			_, err := f.svc.Update(ctx, caller, caller.TokenID, token.UpdateInput{Permissions: &[]string{token.PermManage, "read"}})
			return err
		}, 1},
	} {
		finds = 0
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if finds != tc.want {
			t.Errorf("%s: %d FindToken calls; want %d", tc.name, finds, tc.want)
		}
	}
}

// findCounter counts FindToken calls.
type findCounter struct {
	token.Store
	finds *int
}

func (s *findCounter) FindToken(ctx context.Context, id string) (*token.Token, error) {
	*s.finds++
	return s.Store.FindToken(ctx, id)
}
