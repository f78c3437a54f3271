// Package storetest is the contract every token.Store must meet: one suite, run against the
// memory store and against DynamoDB Local, with the same cases and the same answers.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// NewStore returns an empty store whose reads use the clock now.
type NewStore func(t *testing.T, now func() time.Time) token.Store

// Clock is a settable clock for tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed, whole-second UTC instant.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

// NewClockAt returns a clock at t. Tests whose items carry a TTL that DynamoDB Local must not act
// on (it deletes expired items by the real clock) start from the real time.
func NewClockAt(t time.Time) *Clock {
	return &Clock{now: t}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// NewToken returns a fresh active token of owner created at now, as the Service would build it.
func NewToken(owner string, now time.Time) *token.Token {
	secret := token.NewSecret()
	id := token.NewID()
	return &token.Token{
		ID:          id,
		Owner:       owner,
		Name:        "token " + id[:4],
		Env:         "live",
		Hint:        token.Hint("tok", "live", id),
		Permissions: []string{"read", "files:write"},
		SecretHash:  token.HashSecret(secret),
		CreatedAt:   now,
		UpdatedAt:   now,
		ExpiresAt:   now.Add(30 * token.Day),
		Enabled:     true,
		Meta:        []byte(`{"team":"a"}`),
		Version:     1,
	}
}

// Run runs the contract suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("Audit", func(t *testing.T) { runAudit(t, newStore) })
	t.Run("Family", func(t *testing.T) { runFamily(t, newStore) })
	t.Run("Usage", func(t *testing.T) { runUsage(t, newStore) })
	t.Run("WindowCounts", func(t *testing.T) { runWindowCounts(t, newStore) })
	t.Run("FindTokens", func(t *testing.T) { runFindTokens(t, newStore) })
	t.Run("GraceUntilFirstUse", func(t *testing.T) { runGrace(t, newStore) })
	t.Run("LeaseStore", func(t *testing.T) { runLeaseStore(t, newStore) })
	t.Run("Limiter", func(t *testing.T) { runLimiter(t, newStore) })
	t.Run("Reminders", func(t *testing.T) { runReminders(t, newStore) })

	t.Run("CreateFindRoundTrip", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.ClientID = "client-1"
		tok.APIs = []string{"uploads", "billing"}
		tok.PrevSecretHash = token.HashSecret("old")
		tok.PrevSecretUntil = clock.Now().Add(time.Hour)
		tok.PrevUntilFirstUse = true
		MustCreate(t, s, tok)
		got := MustFind(t, s, tok.ID)
		AssertEqualTokens(t, got, tok)
	})

	t.Run("CreateFindMinimal", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.Env, tok.Meta, tok.ExpiresAt = "", nil, time.Time{}
		tok.Hint = token.Hint("tok", "", tok.ID)
		MustCreate(t, s, tok)
		AssertEqualTokens(t, MustFind(t, s, tok.ID), tok)
	})

	t.Run("CreateDuplicateID", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		dup := NewToken("bob", clock.Now())
		dup.ID = tok.ID
		AssertCode(t, s.CreateToken(ctx, dup, nil), token.ECONFLICT)
		if got := MustFind(t, s, tok.ID); got.Owner != "alice" {
			t.Fatalf("duplicate create overwrote the token: owner %q", got.Owner)
		}
	})

	t.Run("FindUnknown", func(t *testing.T) {
		s := newStore(t, NewClock().Now)
		_, err := s.FindToken(ctx, token.NewID())
		AssertCode(t, err, token.ENOTFOUND)
	})

	t.Run("GoneIsAbsentEverywhere", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.AutoDelete = true
		tok.ExpiresAt = clock.Now().Add(time.Hour)
		tok.PurgeAt = tok.ExpiresAt
		MustCreate(t, s, tok)
		MustFind(t, s, tok.ID)
		clock.Advance(time.Hour)
		_, err := s.FindToken(ctx, tok.ID)
		AssertCode(t, err, token.ENOTFOUND)
		page, err := s.ListTokens(ctx, token.ListQuery{Owner: "alice", Limit: 10})
		if err != nil || len(page.Tokens) != 0 {
			t.Fatalf("list after purge time: %d tokens, err %v; want none", len(page.Tokens), err)
		}
		tok.Name = "changed"
		AssertCode(t, s.UpdateToken(ctx, tok, nil), token.ENOTFOUND)
	})

	t.Run("ClientIDUniqueness", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		first := NewToken("alice", clock.Now())
		first.ClientID = "oauth-app"
		first.ExpiresAt = clock.Now().Add(time.Hour)
		MustCreate(t, s, first)

		second := NewToken("alice", clock.Now())
		second.ClientID = "oauth-app"
		AssertCode(t, s.CreateToken(ctx, second, nil), token.ECONFLICT)
		if _, err := s.FindToken(ctx, second.ID); token.ErrorCode(err) != token.ENOTFOUND {
			t.Fatalf("rejected create left a token behind: err %v", err)
		}

		other := NewToken("bob", clock.Now())
		other.ClientID = "oauth-app"
		MustCreate(t, s, other) // the same clientId under another owner is a different slot

		clock.Advance(time.Hour) // first expires: the slot is free again
		third := NewToken("alice", clock.Now())
		third.ClientID = "oauth-app"
		MustCreate(t, s, third)

		// Reviving the expired first token would give alice two live tokens for one client.
		first.ExpiresAt = clock.Now().Add(24 * time.Hour)
		AssertCode(t, s.UpdateToken(ctx, first, nil), token.ECONFLICT)

		// Revoking releases the slot.
		third.RevokedAt = clock.Now()
		MustUpdate(t, s, third)
		fourth := NewToken("alice", clock.Now())
		fourth.ClientID = "oauth-app"
		MustCreate(t, s, fourth)
	})

	t.Run("UpdateWritesMutableFieldsOnly", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		MustRecordUse(t, s, tok.ID, clock.Now(), 3)

		clock.Advance(time.Minute)
		want := MustFind(t, s, tok.ID)
		want.Name = "renamed"
		want.Permissions = []string{"admin"}
		want.ExpiresAt = time.Time{}
		want.AutoDelete = true
		want.Enabled = false
		want.Meta = nil
		want.SecretHash = token.HashSecret("new")
		want.PrevSecretHash = tok.SecretHash
		want.PrevSecretUntil = clock.Now().Add(time.Hour)
		want.UpdatedAt = clock.Now()
		want.PurgeAt = clock.Now().Add(90 * token.Day)
		sent := want.Clone()
		// Fields outside the update's reach: a store must keep what it has.
		sent.UsageCount, sent.LastUsedAt = 0, time.Time{}
		MustUpdate(t, s, sent)
		if sent.Version != want.Version+1 {
			t.Fatalf("UpdateToken left version %d; want %d", sent.Version, want.Version+1)
		}
		want.Version++
		AssertEqualTokens(t, MustFind(t, s, tok.ID), want)
	})

	t.Run("UpdateVersionAndOwnerChecks", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		stale := tok.Clone()
		tok.Name = "first"
		MustUpdate(t, s, tok)
		stale.Name = "second"
		AssertCode(t, s.UpdateToken(ctx, stale, nil), token.ECONFLICT)
		foreign := tok.Clone()
		foreign.Owner = "mallory"
		AssertCode(t, s.UpdateToken(ctx, foreign, nil), token.ENOTFOUND)
		missing := NewToken("alice", clock.Now())
		AssertCode(t, s.UpdateToken(ctx, missing, nil), token.ENOTFOUND)
		if got := MustFind(t, s, tok.ID); got.Name != "first" || got.Owner != "alice" {
			t.Fatalf("rejected updates changed the token: name %q owner %q", got.Name, got.Owner)
		}
	})

	t.Run("RecordUse", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		MustRecordUse(t, s, tok.ID, clock.Now().Add(time.Second), 1)
		MustRecordUse(t, s, tok.ID, clock.Now().Add(2*time.Second), 41)
		got := MustFind(t, s, tok.ID)
		if got.UsageCount != 42 || !got.LastUsedAt.Equal(clock.Now().Add(2*time.Second)) {
			t.Fatalf("usage = %d at %v; want 42 at %v", got.UsageCount, got.LastUsedAt, clock.Now().Add(2*time.Second))
		}
		if got.Version != tok.Version {
			t.Fatalf("RecordUse changed the version to %d; want %d", got.Version, tok.Version)
		}
		// A use recorded late still counts; lastUsedAt is the last write's (one write, no read).
		MustRecordUse(t, s, tok.ID, clock.Now().Add(time.Second), 8)
		if got := MustFind(t, s, tok.ID); got.UsageCount != 50 || !got.LastUsedAt.Equal(clock.Now().Add(time.Second)) {
			t.Fatalf("after a late use: %d at %v; want 50 at %v", got.UsageCount, got.LastUsedAt, clock.Now().Add(time.Second))
		}
		AssertCode(t, s.RecordUse(ctx, token.NewID(), token.Usage{At: clock.Now(), Valid: 1}), token.ENOTFOUND)
	})

	t.Run("ListNewestFirstWithStatusAndPages", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		statuses := []token.Status{token.StatusActive, token.StatusExpired, token.StatusRevoked, token.StatusDisabled}
		var all []*token.Token
		for i := range 23 {
			clock.Advance(time.Second)
			tok := NewToken("alice", clock.Now())
			switch statuses[i%4] {
			case token.StatusExpired:
				tok.ExpiresAt = clock.Now().Add(time.Minute)
			case token.StatusRevoked:
				tok.RevokedAt = clock.Now()
			case token.StatusDisabled:
				tok.Enabled = false
			}
			MustCreate(t, s, tok)
			all = append(all, tok)
		}
		MustCreate(t, s, NewToken("bob", clock.Now()))
		clock.Advance(time.Hour) // the "expired" ones now are
		slices.Reverse(all)

		for _, status := range append(statuses, "") {
			var want []string
			for _, tok := range all {
				if status.Matches(tok, clock.Now()) {
					want = append(want, tok.ID)
				}
			}
			for _, limit := range []int{1, 2, 5, 100} {
				got := ListAll(t, s, token.ListQuery{Owner: "alice", Status: status, Limit: limit})
				if !slices.Equal(got, want) {
					t.Fatalf("status %q limit %d: listed %v; want %v", status, limit, got, want)
				}
			}
		}
		page, err := s.ListTokens(ctx, token.ListQuery{Owner: "carol", Limit: 10})
		if err != nil || len(page.Tokens) != 0 || page.Next != "" {
			t.Fatalf("unknown owner: %+v, %v; want an empty last page", page, err)
		}
	})

	t.Run("ConcurrentUpdatesOneWins", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		var ok, conflict atomic.Int32
		parallel(50, func(i int) {
			c := tok.Clone()
			c.Name = fmt.Sprintf("writer %d", i)
			switch err := s.UpdateToken(ctx, c, nil); token.ErrorCode(err) {
			case "":
				ok.Add(1)
			case token.ECONFLICT:
				conflict.Add(1)
			default:
				t.Errorf("update %d: %v", i, err)
			}
		})
		if ok.Load() != 1 || conflict.Load() != 49 {
			t.Fatalf("50 updates at one version: %d succeeded, %d conflicted; want 1 and 49", ok.Load(), conflict.Load())
		}
	})

	t.Run("ConcurrentCreatesOneClient", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		var ok atomic.Int32
		parallel(50, func(i int) {
			tok := NewToken("alice", clock.Now())
			tok.ClientID = "shared-client"
			switch err := s.CreateToken(ctx, tok, nil); token.ErrorCode(err) {
			case "":
				ok.Add(1)
			case token.ECONFLICT:
			default:
				t.Errorf("create %d: %v", i, err)
			}
		})
		listed := ListAll(t, s, token.ListQuery{Owner: "alice", Limit: 100})
		if ok.Load() != 1 || len(listed) != 1 {
			t.Fatalf("50 creates with one clientId: %d succeeded, %d listed; want 1 and 1", ok.Load(), len(listed))
		}
	})

	t.Run("LimitsRoundTripAndQuotaCounters", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.RateLimit = &token.RateLimit{Limit: 50, Window: time.Minute}
		left := int64(7)
		tok.Remaining, tok.RefilledAt = &left, clock.Now()
		tok.Refill = &token.Refill{Amount: 10, Interval: time.Hour}
		tok.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}
		tok.ResetQuota = true // as the service creates a token with a quota
		MustCreate(t, s, tok)
		tok.ResetQuota = false
		AssertEqualTokens(t, MustFind(t, s, tok.ID), tok)

		read := MustFind(t, s, tok.ID)
		if read.ResetQuota {
			t.Fatal("a read token asks its next update to reset the quota")
		}
		if lease, err := s.LeaseQuota(ctx, tok.ID, tok.Refill, tok.RefilledAt, clock.Now(), 1); err != nil || lease.Granted != 1 {
			t.Fatalf("LeaseQuota: %+v %v", lease, err)
		}
		// An update that does not reset the quota keeps the store's counter (6), not the 7 it read.
		read.Name = "renamed"
		MustUpdate(t, s, read)
		tok.Version, tok.Name = read.Version, read.Name
		if got := MustFind(t, s, tok.ID); MustQuotaLeft(t, s, tok.ID) != 6 || got.Name != "renamed" {
			t.Fatalf("remaining %d name %q after an update; want 6 and renamed", MustQuotaLeft(t, s, tok.ID), got.Name)
		}
		// A new quota is written.
		fresh := int64(100)
		tok.Remaining, tok.ResetQuota, tok.RateLimit, tok.AllowedCIDRs = &fresh, true, nil, nil
		MustUpdate(t, s, tok)
		tok.ResetQuota = false
		tok.Version = MustFind(t, s, tok.ID).Version
		want := tok.Clone()
		want.Name = "renamed"
		AssertEqualTokens(t, MustFind(t, s, tok.ID), want)
		if left := MustQuotaLeft(t, s, tok.ID); left != 100 {
			t.Fatalf("remaining %d after a new quota of 100", left)
		}
		_, err := s.LeaseQuota(ctx, token.NewID(), nil, time.Time{}, clock.Now(), 1)
		AssertCode(t, err, token.ENOTFOUND)
	})

	t.Run("QuotaIsExactUnderConcurrency", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		svc, plaintext := limitedToken(t, s, clock, token.LimitsInput{Remaining: ptr(int64(100))})
		codes := verifyConcurrently(t, svc, plaintext, 200)
		if codes[token.CodeValid] != 100 || codes[token.CodeUsageExceeded] != 100 {
			t.Fatalf("200 verifies of a token with 100 uses: %v; want 100 VALID and 100 USAGE_EXCEEDED", codes)
		}
		svc.FlushUsage(context.Background(), true) // the uses the service still buffers
		p, _ := token.Parse("tok", plaintext)
		if got := MustFind(t, s, p.ID); MustQuotaLeft(t, s, p.ID) != 0 || got.UsageCount != 100 {
			t.Fatalf("remaining %d usageCount %d; want 0 and 100", MustQuotaLeft(t, s, p.ID), got.UsageCount)
		}
	})

	t.Run("RateLimitIsExactUnderConcurrency", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		svc, plaintext := limitedToken(t, s, clock, token.LimitsInput{RateLimit: &token.RateLimit{Limit: 50, Window: time.Minute}})
		codes := verifyConcurrently(t, svc, plaintext, 300)
		if codes[token.CodeValid] != 50 || codes[token.CodeRateLimited] != 250 {
			t.Fatalf("300 verifies with 50 a minute: %v; want 50 VALID and 250 RATE_LIMITED", codes)
		}
		v, err := svc.Verify(ctx, plaintext)
		if err != nil || v.Code != token.CodeRateLimited || v.Limit == nil || !v.Limit.Reset.Equal(token.WindowStart(clock.Now(), time.Minute).Add(time.Minute)) {
			t.Fatalf("rate-limited verdict %+v %v; want RATE_LIMITED with the window's end as reset", v, err)
		}
		clock.Advance(time.Minute) // the next window
		if codes := verifyConcurrently(t, svc, plaintext, 60); codes[token.CodeValid] != 50 {
			t.Fatalf("next window: %v; want 50 VALID", codes)
		}
	})

	t.Run("QuotaRefill", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		svc, plaintext := limitedToken(t, s, clock, token.LimitsInput{
			Remaining: ptr(int64(2)), Refill: &token.Refill{Amount: 3, Interval: time.Hour},
		})
		expect := func(want ...string) {
			t.Helper()
			for i, w := range want {
				if v, err := svc.Verify(ctx, plaintext); err != nil || v.Code != w {
					t.Fatalf("use %d: %s %v; want %s", i, v.Code, err, w)
				}
			}
		}
		expect(token.CodeValid, token.CodeValid, token.CodeUsageExceeded)
		clock.Advance(59 * time.Minute)
		expect(token.CodeUsageExceeded)
		clock.Advance(time.Minute)
		expect(token.CodeValid, token.CodeValid, token.CodeValid, token.CodeUsageExceeded)
		clock.Advance(3*time.Hour + time.Minute) // refills do not accumulate: 3 uses, not 9
		expect(token.CodeValid, token.CodeValid, token.CodeValid, token.CodeUsageExceeded)
	})

	t.Run("ConcurrentRecordUseIsExact", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		parallel(200, func(i int) {
			if err := s.RecordUse(ctx, tok.ID, token.Usage{At: clock.Now(), Valid: 1}); err != nil {
				t.Errorf("record use %d: %v", i, err)
			}
		})
		if got := MustFind(t, s, tok.ID).UsageCount; got != 200 {
			t.Fatalf("usageCount after 200 concurrent uses = %d; want 200", got)
		}
	})

	t.Run("StaleRefill", func(t *testing.T) { runStaleRefill(t, newStore) })
}

func ptr[T any](v T) *T { return &v }

// limitedToken creates, through a Service on s, a token with the given limits.
func limitedToken(tb testing.TB, s token.Store, clock *Clock, limits token.LimitsInput) (*token.Service, string) {
	tb.Helper()
	svc, err := token.NewService(s, token.Config{Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	_, plaintext, err := svc.Create(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}},
		token.CreateInput{Name: "limited", Limits: limits})
	if err != nil {
		tb.Fatal(err)
	}
	return svc, plaintext
}

// verifyConcurrently verifies plaintext n times at once and counts the verdict codes.
func verifyConcurrently(tb testing.TB, svc *token.Service, plaintext string, n int) map[string]int {
	var mu sync.Mutex
	codes := map[string]int{}
	parallel(n, func(i int) {
		v, err := svc.Verify(context.Background(), plaintext)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			tb.Errorf("verify %d: %v", i, err)
		}
		codes[v.Code]++
	})
	return codes
}

// ListAll follows a list to its end and returns the ids in order.
func ListAll(tb testing.TB, s token.Store, q token.ListQuery) []string {
	tb.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		page, err := s.ListTokens(context.Background(), q)
		if err != nil {
			tb.Fatalf("ListTokens(%+v): %v", q, err)
		}
		if len(page.Tokens) > q.Limit || page.Next != "" && len(page.Tokens) != q.Limit {
			tb.Fatalf("ListTokens(%+v): %d tokens with next %q", q, len(page.Tokens), page.Next)
		}
		for _, tok := range page.Tokens {
			ids = append(ids, tok.ID)
		}
		if page.Next == "" {
			return ids
		}
		if pages > 10000 {
			tb.Fatalf("ListTokens(%+v) does not end", q)
		}
		q.After = page.Next
	}
}

// MustCreate stores tok or fails the test.
func MustCreate(tb testing.TB, s token.Store, tok *token.Token) {
	tb.Helper()
	if err := s.CreateToken(context.Background(), tok, nil); err != nil {
		tb.Fatalf("CreateToken: %v", err)
	}
}

// MustFind loads a token or fails the test.
func MustFind(tb testing.TB, s token.Store, id string) *token.Token {
	tb.Helper()
	tok, err := s.FindToken(context.Background(), id)
	if err != nil {
		tb.Fatalf("FindToken(%s): %v", id, err)
	}
	return tok
}

// MustUpdate updates a token or fails the test.
func MustUpdate(tb testing.TB, s token.Store, tok *token.Token) {
	tb.Helper()
	if err := s.UpdateToken(context.Background(), tok, nil); err != nil {
		tb.Fatalf("UpdateToken: %v", err)
	}
}

// MustQuotaLeft returns the live remaining uses of token id's quota: its counter's, or the
// token's own while it has no counter.
func MustQuotaLeft(tb testing.TB, s token.Store, id string) int64 {
	tb.Helper()
	counters, err := s.QuotaCounters(context.Background(), []string{id})
	if err != nil {
		tb.Fatalf("QuotaCounters: %v", err)
	}
	if c, ok := counters[id]; ok {
		return c.Remaining
	}
	t := MustFind(tb, s, id)
	if t.Remaining == nil {
		tb.Fatalf("token %s has no quota", id)
	}
	return *t.Remaining
}

// MustRecordUse records n valid uses at at or fails the test.
func MustRecordUse(tb testing.TB, s token.Store, id string, at time.Time, n int64) {
	tb.Helper()
	if err := s.RecordUse(context.Background(), id, token.Usage{At: at, Valid: n}); err != nil {
		tb.Fatalf("RecordUse: %v", err)
	}
}

// AssertCode fails the test unless err carries the code want.
func AssertCode(tb testing.TB, err error, want string) {
	tb.Helper()
	if got := token.ErrorCode(err); got != want {
		tb.Fatalf("error code %q (%v); want %q", got, err, want)
	}
}

// AssertEqualTokens compares every field of two tokens, times by instant.
func AssertEqualTokens(tb testing.TB, got, want *token.Token) {
	tb.Helper()
	type field struct {
		name      string
		got, want any
	}
	fields := []field{
		{"ID", got.ID, want.ID}, {"Owner", got.Owner, want.Owner}, {"Name", got.Name, want.Name},
		{"Env", got.Env, want.Env}, {"Hint", got.Hint, want.Hint},
		{"Permissions", fmt.Sprint(got.Permissions), fmt.Sprint(want.Permissions)},
		{"APIs", fmt.Sprint(got.APIs), fmt.Sprint(want.APIs)},
		{"AutoDelete", got.AutoDelete, want.AutoDelete}, {"Enabled", got.Enabled, want.Enabled},
		{"UsageCount", got.UsageCount, want.UsageCount}, {"ClientID", got.ClientID, want.ClientID},
		{"Meta", string(got.Meta), string(want.Meta)}, {"Version", got.Version, want.Version},
		{"SecretHash", bytes.Equal(got.SecretHash, want.SecretHash), true},
		{"RateLimit", fmt.Sprint(deref(got.RateLimit)), fmt.Sprint(deref(want.RateLimit))},
		{"Remaining", fmt.Sprint(deref(got.Remaining)), fmt.Sprint(deref(want.Remaining))},
		{"Refill", fmt.Sprint(deref(got.Refill)), fmt.Sprint(deref(want.Refill))},
		{"AllowedCIDRs", fmt.Sprint(got.AllowedCIDRs), fmt.Sprint(want.AllowedCIDRs)},
		{"PrevSecretHash", bytes.Equal(got.PrevSecretHash, want.PrevSecretHash), true},
		{"PrevUntilFirstUse", got.PrevUntilFirstUse, want.PrevUntilFirstUse},
	}
	times := []field{
		{"PrevSecretUntil", got.PrevSecretUntil, want.PrevSecretUntil},
		{"CreatedAt", got.CreatedAt, want.CreatedAt}, {"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt}, {"RevokedAt", got.RevokedAt, want.RevokedAt},
		{"PurgeAt", got.PurgeAt, want.PurgeAt}, {"LastUsedAt", got.LastUsedAt, want.LastUsedAt},
		{"RefilledAt", got.RefilledAt, want.RefilledAt},
	}
	for _, f := range fields {
		if f.got != f.want {
			tb.Errorf("%s = %v; want %v", f.name, f.got, f.want)
		}
	}
	for _, f := range times {
		if g, w := f.got.(time.Time), f.want.(time.Time); !g.Equal(w) {
			tb.Errorf("%s = %v; want %v", f.name, g, w)
		}
	}
}

// deref shows a pointer's value, or "none".
func deref[T any](p *T) any {
	if p == nil {
		return "none"
	}
	return *p
}

func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}
