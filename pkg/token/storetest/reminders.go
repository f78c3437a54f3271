package storetest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// runReminders: ExpiringTokens finds the live tokens of an expiry range by day bucket, and
// ClaimReminder lets exactly one of concurrent claims of a reminder win.
func runReminders(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	// The real time: claims and purged tokens carry TTLs DynamoDB Local must not act on.
	realNow := func() *Clock { return NewClockAt(time.Now().UTC().Truncate(time.Second)) }

	// expiring returns the ids ExpiringTokens finds in [from, to).
	expiring := func(t *testing.T, s token.Store, from, to time.Time) []string {
		t.Helper()
		tokens, err := s.ExpiringTokens(ctx, from, to)
		if err != nil {
			t.Fatalf("ExpiringTokens: %v", err)
		}
		var ids []string
		for _, tok := range tokens {
			ids = append(ids, tok.ID)
		}
		return ids
	}
	create := func(t *testing.T, s token.Store, now, expiresAt time.Time, set func(*token.Token)) *token.Token {
		t.Helper()
		tok := NewToken("alice", now)
		tok.ExpiresAt = expiresAt
		if set != nil {
			set(tok)
		}
		MustCreate(t, s, tok)
		return tok
	}

	t.Run("ExpiringTokensRange", func(t *testing.T) {
		clock := realNow()
		s := newStore(t, clock.Now)
		now := clock.Now()
		// [from, to) straddles a UTC midnight: two day buckets.
		midnight := now.Truncate(token.Day).Add(20 * token.Day)
		from, to := midnight.Add(-2*time.Hour), midnight.Add(2*time.Hour)
		atFrom := create(t, s, now, from, nil)
		beforeMidnight := create(t, s, now, midnight.Add(-time.Nanosecond), func(tok *token.Token) { tok.Enabled = false })
		atMidnight := create(t, s, now, midnight, func(tok *token.Token) { tok.Env = "" })
		lastInstant := create(t, s, now, to.Add(-time.Millisecond), nil)
		create(t, s, now, to, nil)                                 // the end is excluded
		create(t, s, now, from.Add(-time.Millisecond), nil)        // before the start
		create(t, s, now, from.Add(-token.Day+time.Hour), nil)     // the day before, inside the hours
		create(t, s, now, to.Add(token.Day-time.Hour), nil)        // the day after, inside the hours
		create(t, s, now, time.Time{}, nil)                        // never expires
		revoked := create(t, s, now, midnight.Add(time.Hour), nil) // revoked below
		purged := create(t, s, now, midnight.Add(-time.Hour), func(tok *token.Token) { tok.PurgeAt = now.Add(time.Minute) })
		revoked.RevokedAt, revoked.PurgeAt = now, now.Add(30*token.Day)
		MustUpdate(t, s, revoked)

		want := []string{atFrom.ID, purged.ID, beforeMidnight.ID, atMidnight.ID, lastInstant.ID}
		if got := expiring(t, s, from, to); !slices.Equal(got, want) {
			t.Fatalf("ExpiringTokens = %v, want %v (soonest first; revoked excluded)", got, want)
		}
		clock.Advance(time.Minute) // purged is gone now
		want = slices.DeleteFunc(want, func(id string) bool { return id == purged.ID })
		if got := expiring(t, s, from, to); !slices.Equal(got, want) {
			t.Fatalf("ExpiringTokens after a purge = %v, want %v", got, want)
		}
		if got := expiring(t, s, from, from); len(got) != 0 {
			t.Errorf("an empty range found %v", got)
		}

		// The fields a reminder needs, and never a secret.
		tokens, err := s.ExpiringTokens(ctx, from, midnight)
		if err != nil || len(tokens) != 2 {
			t.Fatalf("ExpiringTokens: %d tokens, %v", len(tokens), err)
		}
		got, want0 := tokens[1], beforeMidnight
		if got.ID != want0.ID || got.Owner != want0.Owner || got.Name != want0.Name || got.Env != want0.Env ||
			!got.ExpiresAt.Equal(want0.ExpiresAt) || got.Enabled || !got.RevokedAt.IsZero() {
			t.Errorf("token %+v; want the id, owner, name, env, expiry and enabled of %+v", got, want0)
		}
	})

	t.Run("ExpiringTokensFollowsChanges", func(t *testing.T) {
		clock := realNow()
		s := newStore(t, clock.Now)
		now := clock.Now()
		day := func(n int) (time.Time, time.Time) {
			start := now.Truncate(token.Day).Add(time.Duration(n) * token.Day)
			return start, start.Add(token.Day)
		}
		d10, d11 := day(10)
		d40, d41 := day(40)
		tok := create(t, s, now, d10.Add(5*time.Hour), nil)
		if got := expiring(t, s, d10, d11); !slices.Equal(got, []string{tok.ID}) {
			t.Fatalf("day 10: %v", got)
		}
		tok.ExpiresAt = d40.Add(3 * time.Hour) // extended: it moves to another bucket
		MustUpdate(t, s, tok)
		if got := expiring(t, s, d10, d11); len(got) != 0 {
			t.Errorf("day 10 after the extension: %v, want none", got)
		}
		if got := expiring(t, s, d40, d41); !slices.Equal(got, []string{tok.ID}) {
			t.Errorf("day 40 after the extension: %v", got)
		}
		tok.ExpiresAt = time.Time{} // never expires: out of every bucket
		MustUpdate(t, s, tok)
		if got := expiring(t, s, d40, d41); len(got) != 0 {
			t.Errorf("day 40 without an expiry: %v, want none", got)
		}
		tok.ExpiresAt = d10.Add(time.Hour)
		MustUpdate(t, s, tok)
		if got := expiring(t, s, d10, d11); !slices.Equal(got, []string{tok.ID}) {
			t.Errorf("day 10 with the expiry back: %v", got)
		}
		tok.RevokedAt, tok.PurgeAt = now, now.Add(30*token.Day)
		MustUpdate(t, s, tok)
		if got := expiring(t, s, d10, d11); len(got) != 0 {
			t.Errorf("day 10 after the revoke: %v, want none", got)
		}
	})

	t.Run("ExpiringTokensManyInOneDay", func(t *testing.T) {
		clock := realNow()
		s := newStore(t, clock.Now)
		now := clock.Now()
		start := now.Truncate(token.Day).Add(15 * token.Day)
		var want []string
		for i := range 25 {
			want = append(want, create(t, s, now, start.Add(time.Duration(i)*time.Minute), nil).ID)
		}
		if got := expiring(t, s, start, start.Add(token.Day)); !slices.Equal(got, want) {
			t.Fatalf("ExpiringTokens = %d tokens %v, want the 25 in order %v", len(got), got, want)
		}
	})

	t.Run("ClaimReminderOnce", func(t *testing.T) {
		clock := realNow()
		s := newStore(t, clock.Now)
		r := token.Reminder{TokenID: token.NewID(), DaysBefore: 7, ExpiresAt: clock.Now().Add(7 * token.Day)}
		var won atomic.Int32
		parallel(8, func(i int) {
			ok, err := s.ClaimReminder(ctx, r)
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
			}
			if ok {
				won.Add(1)
			}
		})
		if won.Load() != 1 {
			t.Fatalf("%d of 8 concurrent claims won, want exactly 1", won.Load())
		}
		claim := func(r token.Reminder) bool {
			t.Helper()
			ok, err := s.ClaimReminder(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if claim(r) {
			t.Fatal("a claimed reminder was claimed again")
		}
		// Another threshold, or another expiry of the same token, is another reminder.
		if !claim(token.Reminder{TokenID: r.TokenID, DaysBefore: 30, ExpiresAt: r.ExpiresAt}) {
			t.Error("the 30-day reminder was refused after the 7-day one")
		}
		if !claim(token.Reminder{TokenID: r.TokenID, DaysBefore: 7, ExpiresAt: r.ExpiresAt.Add(token.Day)}) {
			t.Error("the reminder of a new expiry was refused")
		}
		// A released claim is claimed again, once.
		if err := s.ReleaseReminder(ctx, r); err != nil {
			t.Fatal(err)
		}
		if !claim(r) || claim(r) {
			t.Error("a released reminder was not claimed exactly once again")
		}
		if err := s.ReleaseReminder(ctx, token.Reminder{TokenID: token.NewID(), DaysBefore: 1, ExpiresAt: r.ExpiresAt}); err != nil {
			t.Errorf("releasing an unclaimed reminder: %v", err)
		}
	})
}
