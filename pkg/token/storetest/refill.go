package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// runStaleRefill: a caller that read a token before an admin changed its quota (the authorizer
// caches records for seconds) passes the old refill settings to LeaseQuota. The old refill must
// never apply: not once it was removed or changed, and not early after the quota was reset.
func runStaleRefill(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	hourly := token.Refill{Amount: 3, Interval: time.Hour}

	// quotaToken stores a token with 5 uses refilled to 3 hourly, and returns it as a reader (a
	// cache) sees it.
	quotaToken := func(t *testing.T, s token.Store, clock *Clock) *token.Token {
		t.Helper()
		tok := NewToken("alice", clock.Now())
		tok.Remaining, tok.Refill, tok.RefilledAt, tok.ResetQuota = ptr(int64(5)), &hourly, clock.Now(), true
		MustCreate(t, s, tok)
		return MustFind(t, s, tok.ID)
	}
	// setQuota writes remaining and refill as an admin's update does: a new quota counted from now.
	setQuota := func(t *testing.T, s token.Store, clock *Clock, id string, remaining int64, refill *token.Refill) {
		t.Helper()
		tok := MustFind(t, s, id)
		tok.Remaining, tok.Refill, tok.RefilledAt, tok.ResetQuota = &remaining, refill, clock.Now(), true
		MustUpdate(t, s, tok)
	}
	consume := func(t *testing.T, s token.Store, clock *Clock, read *token.Token, want bool, wantLeft int64) {
		t.Helper()
		lease, err := s.LeaseQuota(ctx, read.ID, read.Refill, read.RefilledAt, clock.Now(), 1)
		if err != nil || (lease.Granted == 1) != want {
			t.Fatalf("LeaseQuota with refill %v from %v at %v: %+v, %v; want granted %v", deref(read.Refill), read.RefilledAt, clock.Now(), lease, err, want)
		}
		if left := MustQuotaLeft(t, s, read.ID); left != wantLeft || lease.Remaining != wantLeft {
			t.Fatalf("remaining %d (lease says %d) after LeaseQuota; want %d", left, lease.Remaining, wantLeft)
		}
	}

	for _, tc := range []struct {
		name   string
		refill *token.Refill // the admin's new refill, with remaining 0
	}{
		{"RefillRemoved", nil},
		{"AmountChanged", &token.Refill{Amount: 1, Interval: time.Hour}},
		{"IntervalChanged", &token.Refill{Amount: 3, Interval: 2 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewClock()
			s := newStore(t, clock.Now)
			stale := quotaToken(t, s, clock)
			clock.Advance(10 * time.Minute)
			setQuota(t, s, clock, stale.ID, 0, tc.refill)

			for _, d := range []time.Duration{55 * time.Minute, time.Hour, 24 * time.Hour} {
				clock.Advance(d) // past one, then several, of the old intervals
				consume(t, s, clock, stale, false, 0)
			}
			if got := MustFind(t, s, stale.ID); deref(got.Refill) != deref(tc.refill) {
				t.Fatalf("refill %v after stale calls; want %v", deref(got.Refill), deref(tc.refill))
			}
			if tc.refill != nil { // the new refill applies for a caller that read it
				fresh := MustFind(t, s, stale.ID)
				clock.Advance(tc.refill.Interval)
				consume(t, s, clock, fresh, true, tc.refill.Amount-1)
			}
		})
	}

	t.Run("ResetNotRefilledEarly", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		stale := quotaToken(t, s, clock)
		clock.Advance(30 * time.Minute)
		setQuota(t, s, clock, stale.ID, 0, &hourly) // same refill, counted from the reset
		fresh := MustFind(t, s, stale.ID)

		clock.Advance(35 * time.Minute) // past the old schedule's boundary, before the new one's
		consume(t, s, clock, stale, false, 0)
		consume(t, s, clock, fresh, false, 0)
		clock.Advance(25 * time.Minute) // an hour after the reset
		consume(t, s, clock, fresh, true, 2)
		consume(t, s, clock, stale, true, 1) // refilled this period already: a plain use
	})
}
