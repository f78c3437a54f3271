package storetest

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// usageClock is a clock at noon UTC today: the counters' TTL (400 days after their day) lies in
// DynamoDB Local's future, which deletes expired items by the real clock, and a day's writes stay
// within the day.
func usageClock() *Clock {
	y, m, d := time.Now().UTC().Date()
	return NewClockAt(time.Date(y, m, d, 12, 0, 0, 0, time.UTC))
}

// MustUsageDays reads a token's usage counters or fails the test.
func MustUsageDays(tb testing.TB, s token.Store, id string, last time.Time, days int) []token.DayUsage {
	tb.Helper()
	got, err := s.UsageDays(context.Background(), id, last, days)
	if err != nil {
		tb.Fatalf("UsageDays(%s, %d): %v", id, days, err)
	}
	if len(got) != days {
		tb.Fatalf("UsageDays(%s, %d) returned %d days", id, days, len(got))
	}
	return got
}

// assertDay checks one day of counters.
func assertDay(tb testing.TB, got token.DayUsage, day time.Time, valid int64, refused map[string]int64) {
	tb.Helper()
	y, m, d := day.UTC().Date()
	if want := time.Date(y, m, d, 0, 0, 0, 0, time.UTC); !got.Day.Equal(want) {
		tb.Errorf("day %v; want %v", got.Day, want)
	}
	if refused == nil {
		refused = map[string]int64{}
	}
	if got.Valid != valid || got.Refused == nil || !maps.Equal(got.Refused, refused) {
		tb.Errorf("%s: valid %d refused %v; want %d %v", token.UsageDay(got.Day), got.Valid, got.Refused, valid, refused)
	}
}

func runUsage(t *testing.T, newStore NewStore) {
	ctx := context.Background()

	t.Run("CountersByDayAndOutcome", func(t *testing.T) {
		clock := usageClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		other := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		MustCreate(t, s, other)
		now := clock.Now()
		for _, u := range []token.Usage{
			{At: now.Add(-token.Day), Valid: 5},
			{At: now.Add(-time.Hour), Valid: 2, Refused: map[string]int64{token.CodeRateLimited: 3}},
			{At: now, Refused: map[string]int64{token.CodeRateLimited: 1, token.CodeRevoked: 1}},
		} {
			if err := s.RecordUse(ctx, tok.ID, u); err != nil {
				t.Fatalf("RecordUse(%+v): %v", u, err)
			}
		}
		MustRecordUse(t, s, other.ID, now, 7)

		days := MustUsageDays(t, s, tok.ID, now, 3)
		assertDay(t, days[0], now.Add(-2*token.Day), 0, nil)
		assertDay(t, days[1], now.Add(-token.Day), 5, nil)
		assertDay(t, days[2], now, 2, map[string]int64{token.CodeRateLimited: 4, token.CodeRevoked: 1})

		// The refusals-only write left lastUsedAt and usageCount as the last valid write set them.
		got := MustFind(t, s, tok.ID)
		if got.UsageCount != 7 || !got.LastUsedAt.Equal(now.Add(-time.Hour)) || got.Version != tok.Version {
			t.Fatalf("token usage %d at %v, version %d; want 7 at %v, version %d", got.UsageCount, got.LastUsedAt, got.Version, now.Add(-time.Hour), tok.Version)
		}
		assertDay(t, MustUsageDays(t, s, other.ID, now, 1)[0], now, 7, nil)
	})

	t.Run("ManyDaysZeroFilled", func(t *testing.T) {
		clock := usageClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		first := clock.Now().Add(-119 * token.Day)
		MustRecordUse(t, s, tok.ID, first, 1)
		MustRecordUse(t, s, tok.ID, clock.Now(), 2)
		days := MustUsageDays(t, s, tok.ID, clock.Now(), 120) // more than one BatchGetItem
		for i, d := range days {
			want := int64(0)
			switch i {
			case 0:
				want = 1
			case 119:
				want = 2
			}
			assertDay(t, d, first.Add(time.Duration(i)*token.Day), want, nil)
		}
	})

	t.Run("EmptyAndInvalidWriteNothing", func(t *testing.T) {
		clock := usageClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		if err := s.RecordUse(ctx, tok.ID, token.Usage{At: clock.Now(), Refused: map[string]int64{token.CodeExpired: 0}}); err != nil {
			t.Fatalf("empty usage: %v", err)
		}
		for _, u := range []token.Usage{
			{At: clock.Now(), Valid: 1, Refused: map[string]int64{token.CodeNotFound: 1}},
			{At: clock.Now(), Valid: 1, Refused: map[string]int64{token.CodeValid: 1}},
			{At: clock.Now(), Valid: 1, Refused: map[string]int64{"#pk": 1}},
			{At: clock.Now(), Valid: 1, Refused: map[string]int64{token.CodeRevoked: -1}},
			{At: clock.Now(), Valid: -1},
		} {
			AssertCode(t, s.RecordUse(ctx, tok.ID, u), token.EINVALID)
		}
		assertDay(t, MustUsageDays(t, s, tok.ID, clock.Now(), 1)[0], clock.Now(), 0, nil)
		if got := MustFind(t, s, tok.ID); got.UsageCount != 0 || !got.LastUsedAt.IsZero() {
			t.Fatalf("refused writes recorded usage %d at %v", got.UsageCount, got.LastUsedAt)
		}
	})

	t.Run("UnknownToken", func(t *testing.T) {
		clock := usageClock()
		s := newStore(t, clock.Now)
		AssertCode(t, s.RecordUse(ctx, token.NewID(), token.Usage{At: clock.Now(), Valid: 1}), token.ENOTFOUND)
		assertDay(t, MustUsageDays(t, s, token.NewID(), clock.Now(), 1)[0], clock.Now(), 0, nil)
	})

	t.Run("ConcurrentCountersAreExact", func(t *testing.T) {
		clock := usageClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		parallel(100, func(i int) {
			u := token.Usage{At: clock.Now(), Valid: 1, Refused: map[string]int64{token.CodeForbiddenIP: 2}}
			if i%2 == 0 {
				u.Valid = 0
			}
			if err := s.RecordUse(ctx, tok.ID, u); err != nil {
				t.Errorf("record use %d: %v", i, err)
			}
		})
		assertDay(t, MustUsageDays(t, s, tok.ID, clock.Now(), 1)[0], clock.Now(), 50, map[string]int64{token.CodeForbiddenIP: 200})
		if got := MustFind(t, s, tok.ID).UsageCount; got != 50 {
			t.Fatalf("usageCount %d; want 50", got)
		}
	})
}

func runWindowCounts(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	// The real time: a window's TTL is its end, which must lie in DynamoDB Local's future.
	clock := NewClockAt(time.Now().UTC().Truncate(time.Second))
	s := newStore(t, clock.Now)
	a, b, c := token.NewID(), token.NewID(), token.NewID()
	start := token.WindowStart(clock.Now(), time.Hour)
	for id, n := range map[string]int{a: 3, b: 1} {
		for i := range n {
			if _, ok, err := s.CountRequest(ctx, id, start, time.Hour, 2); err != nil || ok != (i < 2) {
				t.Fatalf("CountRequest %d of %s: admitted %v, %v", i, id, ok, err)
			}
		}
	}
	w := func(id string, start time.Time) token.RateWindow { return token.RateWindow{TokenID: id, Start: start} }
	windows := []token.RateWindow{w(a, start), w(b, start), w(c, start), w(a, start.Add(-time.Hour)), w(a, start)}
	counts, err := s.WindowCounts(ctx, windows)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, 1, 0, 0, 2}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("WindowCounts %v; want %v (a refused request is not counted)", counts, want)
	}

	var many []token.RateWindow
	for range 150 {
		many = append(many, w(token.NewID(), start))
	}
	many = append(many, w(b, start))
	counts, err = s.WindowCounts(ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 151 || counts[150] != 1 || counts[0] != 0 {
		t.Fatalf("WindowCounts of 151 windows: %d counts, last %v", len(counts), counts[len(counts)-1])
	}

	clock.Advance(time.Hour) // the window has ended, whether or not TTL has deleted it
	if counts, err := s.WindowCounts(ctx, windows[:1]); err != nil || counts[0] != 0 {
		t.Fatalf("an ended window counts %v (%v); want 0", counts, err)
	}
}
