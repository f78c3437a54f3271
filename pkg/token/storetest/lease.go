package storetest

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// quotaTokenOf stores a token with a quota of remaining uses (and refill, when not nil), as the
// service creates one.
func quotaTokenOf(t *testing.T, s token.Store, clock *Clock, remaining int64, refill *token.Refill) *token.Token {
	t.Helper()
	tok := NewToken("alice", clock.Now())
	tok.Remaining, tok.Refill, tok.RefilledAt, tok.ResetQuota = ptr(remaining), refill, clock.Now(), true
	MustCreate(t, s, tok)
	return MustFind(t, s, tok.ID)
}

// runLeaseStore: the store's lease calls, one at a time and concurrently.
func runLeaseStore(t *testing.T, newStore NewStore) {
	ctx := context.Background()

	t.Run("LeaseRateAddsAndReturnsTheCount", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		id := token.NewID()
		start := token.WindowStart(clock.Now(), time.Minute)
		for i, want := range []int64{3, 6, 7} {
			k := []int64{3, 3, 1}[i]
			if got, err := s.LeaseRate(ctx, id, start, time.Minute, k); err != nil || got != want {
				t.Fatalf("LeaseRate(k=%d) = %d, %v; want %d", k, got, err, want)
			}
		}
		if got, err := s.LeaseRate(ctx, id, start.Add(time.Minute), time.Minute, 2); err != nil || got != 2 {
			t.Fatalf("LeaseRate of the next window = %d, %v; want 2 (a window of its own)", got, err)
		}
		if counts, err := s.WindowCounts(ctx, []token.RateWindow{{TokenID: id, Start: start}}); err != nil || counts[0] != 7 {
			t.Fatalf("WindowCounts %v, %v; want 7", counts, err)
		}
		_, err := s.LeaseRate(ctx, id, start, time.Minute, 0)
		AssertCode(t, err, token.EINVALID)
	})

	t.Run("LeaseQuotaTakesKThenWhatRemains", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := quotaTokenOf(t, s, clock, 10, nil)
		for _, c := range []struct{ k, granted, left int64 }{{4, 4, 6}, {4, 4, 2}, {4, 2, 0}, {1, 0, 0}, {5, 0, 0}} {
			lease, err := s.LeaseQuota(ctx, tok.ID, nil, tok.RefilledAt, clock.Now(), c.k)
			if err != nil || lease.Granted != c.granted || lease.Remaining != c.left || !lease.Period.Equal(tok.RefilledAt) || lease.Unlimited {
				t.Fatalf("LeaseQuota(k=%d) = %+v, %v; want %d granted, %d left, period %v", c.k, lease, err, c.granted, c.left, tok.RefilledAt)
			}
			if got := MustQuotaLeft(t, s, tok.ID); got != c.left {
				t.Fatalf("counter %d after LeaseQuota(k=%d); want %d", got, c.k, c.left)
			}
		}
		// The token item is not the counter: it still says what the quota was set to.
		if got := MustFind(t, s, tok.ID); *got.Remaining != 10 || got.Version != tok.Version {
			t.Fatalf("token item remaining %d version %d after leases; want 10 and %d (untouched)", *got.Remaining, got.Version, tok.Version)
		}
		_, err := s.LeaseQuota(ctx, tok.ID, nil, tok.RefilledAt, clock.Now(), 0)
		AssertCode(t, err, token.EINVALID)
		_, err = s.LeaseQuota(ctx, token.NewID(), nil, time.Time{}, clock.Now(), 1)
		AssertCode(t, err, token.ENOTFOUND)
	})

	t.Run("ReturnQuotaOnlyIntoItsPeriod", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		hourly := &token.Refill{Amount: 5, Interval: time.Hour}
		tok := quotaTokenOf(t, s, clock, 5, hourly)
		lease, err := s.LeaseQuota(ctx, tok.ID, hourly, tok.RefilledAt, clock.Now(), 4)
		if err != nil || lease.Granted != 4 {
			t.Fatalf("LeaseQuota: %+v %v", lease, err)
		}
		if err := s.ReturnQuota(ctx, tok.ID, lease.Period, 3); err != nil || MustQuotaLeft(t, s, tok.ID) != 4 {
			t.Fatalf("ReturnQuota of 3 into its period: %v, left %d; want 4", err, MustQuotaLeft(t, s, tok.ID))
		}
		// Wrong period: nothing returned, no error.
		if err := s.ReturnQuota(ctx, tok.ID, lease.Period.Add(-time.Hour), 3); err != nil || MustQuotaLeft(t, s, tok.ID) != 4 {
			t.Fatalf("ReturnQuota into another period: %v, left %d; want 4", err, MustQuotaLeft(t, s, tok.ID))
		}
		// A refill starts a new period: the old lease's units never return into it.
		old, _ := s.LeaseQuota(ctx, tok.ID, hourly, tok.RefilledAt, clock.Now(), 4)
		clock.Advance(time.Hour)
		refilled, err := s.LeaseQuota(ctx, tok.ID, hourly, tok.RefilledAt, clock.Now(), 9)
		if err != nil || refilled.Granted != 5 || refilled.Remaining != 0 || !refilled.Period.Equal(tok.RefilledAt.Add(time.Hour)) {
			t.Fatalf("lease of 9 after a refill of 5: %+v %v; want 5 granted (the refill amount), 0 left, the new period", refilled, err)
		}
		if err := s.ReturnQuota(ctx, tok.ID, old.Period, old.Granted); err != nil || MustQuotaLeft(t, s, tok.ID) != 0 {
			t.Fatalf("a return from before the refill: %v, left %d; want 0", err, MustQuotaLeft(t, s, tok.ID))
		}
		// A reset (an admin's new quota) too.
		fresh := MustFind(t, s, tok.ID)
		clock.Advance(time.Minute)
		fresh.Remaining, fresh.RefilledAt, fresh.ResetQuota = ptr(int64(2)), clock.Now(), true
		MustUpdate(t, s, fresh)
		if err := s.ReturnQuota(ctx, tok.ID, refilled.Period, 5); err != nil || MustQuotaLeft(t, s, tok.ID) != 2 {
			t.Fatalf("a return from before a reset: %v, left %d; want 2", err, MustQuotaLeft(t, s, tok.ID))
		}
	})

	t.Run("QuotaRemovedLeasesUnlimited", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := quotaTokenOf(t, s, clock, 1, nil)
		read := MustFind(t, s, tok.ID)
		read.Remaining, read.Refill, read.RefilledAt, read.ResetQuota = nil, nil, time.Time{}, true
		MustUpdate(t, s, read)
		lease, err := s.LeaseQuota(ctx, tok.ID, nil, tok.RefilledAt, clock.Now(), 3)
		if err != nil || !lease.Unlimited || lease.Granted != 0 {
			t.Fatalf("lease of a token whose quota was removed: %+v %v; want Unlimited", lease, err)
		}
		if counters, err := s.QuotaCounters(ctx, []string{tok.ID, token.NewID()}); err != nil || len(counters) != 0 {
			t.Fatalf("QuotaCounters %v %v; want none", counters, err)
		}
	})

	t.Run("ConcurrentLeasesNeverExceedTheQuota", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := quotaTokenOf(t, s, clock, 100, nil)
		var mu sync.Mutex
		var granted int64
		parallel(20, func(i int) {
			for range 3 {
				lease, err := s.LeaseQuota(ctx, tok.ID, nil, tok.RefilledAt, clock.Now(), 7)
				if err != nil {
					t.Errorf("LeaseQuota: %v", err)
					return
				}
				mu.Lock()
				granted += lease.Granted
				mu.Unlock()
			}
		})
		if granted != 100 || MustQuotaLeft(t, s, tok.ID) != 0 {
			t.Fatalf("60 leases of 7 from 100 uses granted %d, left %d; want 100 and 0", granted, MustQuotaLeft(t, s, tok.ID))
		}
	})
}

// runLimiter: leased allowances across a fleet of instances (Fleet) on one store.
func runLimiter(t *testing.T, newStore NewStore) {
	t.Run("HotRateLimit", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		res := HotRateLimit(t, s, clock, nil)
		t.Log(res)
	})
	t.Run("HotQuota", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		t.Log(HotQuota(t, s, clock, nil))
	})
	t.Run("SlowTokenAsBefore", func(t *testing.T) { runSlowToken(t, newStore) })
	t.Run("CrashLosesAtMostItsLease", func(t *testing.T) { runCrash(t, newStore) })
	t.Run("StaleRefillKeepsItsLease", func(t *testing.T) { runStaleRefillLease(t, newStore) })
	t.Run("QuotaEvents", func(t *testing.T) { runQuotaEvents(t, newStore) })
}

// Hot scenario figures (issue: 20 instances, a window of 5,000 or a quota of 10,000, 10,000
// requests a second).
const (
	hotInstances = 20
	hotRate      = 10_000
	hotLimit     = 5_000
	hotQuota     = 10_000
	// maxWritesPerSecond is the bound of the lease writes to one item.
	maxWritesPerSecond = token.DefaultLeaseWritesPerSecond
	// minAdmittedPerWindow is the least a spent window may admit: at most 100 units lapse.
	minAdmittedPerWindow = hotLimit - 100
)

// HotRateLimit sends 20,000 requests within 2 one-second windows to a token limited to 5,000
// per window from 20 instances, and checks that each window admitted at most 5,000 and at least
// 4,900, and that the window items took at most 200 lease writes per second. onTick, when not
// nil, is told each tick's simulated time.
func HotRateLimit(t *testing.T, s token.Store, clock *Clock, onTick func(time.Time)) HotResult {
	t.Helper()
	tok := NewToken("alice", clock.Now())
	tok.RateLimit = &token.RateLimit{Limit: hotLimit, Window: time.Second}
	MustCreate(t, s, tok)
	start := token.WindowStart(clock.Now(), time.Second).Add(time.Second)
	res := NewFleet(s, hotInstances).Run(t, tok, Hot{Instances: hotInstances, Requests: 2 * 2 * hotLimit, Rate: hotRate, Start: start, OnTick: onTick})
	if len(res.PerWindow) != 2 {
		t.Fatalf("admitted in %d windows; want 2: %v", len(res.PerWindow), res)
	}
	for w, n := range res.PerWindow {
		if n > hotLimit || n < minAdmittedPerWindow {
			t.Errorf("window %d admitted %d; want %d-%d", w, n, minAdmittedPerWindow, hotLimit)
		}
	}
	if item, sec, n := res.MaxWritesPerSecond(); n > maxWritesPerSecond {
		t.Errorf("%s took %d lease writes in second %d; want at most %d", item, n, sec, maxWritesPerSecond)
	}
	if res.Refused[token.CodeRateLimited] != int64(2*2*hotLimit)-res.Admitted {
		t.Errorf("refusals %v; want every request not admitted RATE_LIMITED", res.Refused)
	}
	return res
}

// HotQuota spends a quota of 10,000 at 10,000 requests a second from 20 instances: the counter
// never goes below 0 and nothing beyond the quota is admitted; the leases left when the burst
// ends go back once idle (ReturnIdle), and the uses they held are then admitted, 10,000 in all.
func HotQuota(t *testing.T, s token.Store, clock *Clock, onTick func(time.Time)) HotResult {
	t.Helper()
	tok := quotaTokenOf(t, s, clock, hotQuota, nil)
	fleet := NewFleet(s, hotInstances)
	start := clock.Now().Add(time.Second)
	res := fleet.Run(t, tok, Hot{Requests: hotQuota, Rate: hotRate, Start: start, OnTick: onTick})
	left := MustQuotaLeft(t, s, tok.ID)
	if left < 0 || res.Admitted+left > hotQuota {
		t.Fatalf("after the burst: admitted %d, counter %d; want admitted + counter <= %d and counter >= 0", res.Admitted, left, hotQuota)
	}
	if item, sec, n := res.MaxWritesPerSecond(); n > maxWritesPerSecond {
		t.Errorf("%s took %d lease writes in second %d; want at most %d", item, n, sec, maxWritesPerSecond)
	}
	held := hotQuota - res.Admitted - left // leased, not used: still in the instances' memory
	returnAt := res.End.Add(token.DefaultLeaseIdleReturn)
	if onTick != nil {
		onTick(returnAt)
	}
	returned := fleet.ReturnIdle(t, returnAt, false)
	if returned != held {
		t.Fatalf("idle leases returned %d; the instances held %d", returned, held)
	}
	// What was returned is admitted again: one instance spends it, then refuses.
	more := fleet.Run(t, tok, Hot{Requests: int(returned + left + 10), Rate: 1000, Start: res.End.Add(2 * token.DefaultLeaseIdleReturn), Only: []int{0}, OnTick: onTick})
	if total := res.Admitted + more.Admitted; total != hotQuota || MustQuotaLeft(t, s, tok.ID) != 0 {
		t.Fatalf("admitted %d in all (%d in the burst, %d after the returns), counter %d; want %d and 0",
			total, res.Admitted, more.Admitted, MustQuotaLeft(t, s, tok.ID), hotQuota)
	}
	res.Admitted += more.Admitted
	return res
}

// runSlowToken: a token used once a second (by 3 instances in turn) costs one write per limit
// per request, counts exactly, and leaves no lease outstanding.
func runSlowToken(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clock := NewClock()
	s := newStore(t, clock.Now)
	tok := NewToken("alice", clock.Now())
	tok.RateLimit = &token.RateLimit{Limit: 100, Window: time.Hour}
	tok.Remaining, tok.RefilledAt, tok.ResetQuota = ptr(int64(1000)), clock.Now(), true
	MustCreate(t, s, tok)
	tok = MustFind(t, s, tok.ID)
	fleet := NewFleet(s, 3)
	start := clock.Now().Add(time.Second)
	res := fleet.Run(t, tok, Hot{Requests: 30, Rate: 1, Start: start})
	if res.Admitted != 30 {
		t.Fatalf("admitted %d of 30", res.Admitted)
	}
	var writes int64
	for _, secs := range res.Writes {
		for _, n := range secs {
			writes += n
		}
	}
	if writes != 60 {
		t.Fatalf("%d lease writes for 30 requests of a token with a rate limit and a quota; want 60 (one per limit per request)", writes)
	}
	counts, err := s.WindowCounts(ctx, []token.RateWindow{{TokenID: tok.ID, Start: token.WindowStart(start, time.Hour)}})
	if err != nil || counts[0] != 30 || MustQuotaLeft(t, s, tok.ID) != 970 {
		t.Fatalf("window count %v %v, quota left %d; want 30 and 970 (exact)", counts, err, MustQuotaLeft(t, s, tok.ID))
	}
	if n := fleet.ReturnIdle(t, res.End, true); n != 0 {
		t.Fatalf("a slow token's instances held %d units; want none", n)
	}
}

// runCrash: an instance that dies holding a quota lease loses at most that lease; the others'
// leases come back and are spent.
func runCrash(t *testing.T, newStore NewStore) {
	clock := NewClock()
	s := newStore(t, clock.Now)
	tok := quotaTokenOf(t, s, clock, hotQuota, nil)
	fleet := NewFleet(s, hotInstances)
	start := clock.Now().Add(time.Second)
	res := fleet.Run(t, tok, Hot{Requests: hotQuota / 2, Rate: hotRate, Start: start})
	// The instance that dies is one holding a lease mid-burst (which ones do depends on how the
	// goroutines interleaved).
	dead := slices.IndexFunc(fleet.Limiters, func(l *token.Limiter) bool { held, _ := l.QuotaLease(tok.ID); return held > 0 })
	if dead < 0 {
		t.Fatal("no instance holds a lease mid-burst; the test needs one")
	}
	lost, size := fleet.Limiters[dead].QuotaLease(tok.ID)
	if lost > size {
		t.Fatalf("instance %d holds %d units, more than its last lease of %d", dead, lost, size)
	}
	var alive []int
	for i := range hotInstances {
		if i != dead {
			alive = append(alive, i)
		}
	}
	fleet.Limiters[dead] = nil // dies: never returns its lease
	live := &Fleet{counter: fleet.counter}
	for _, i := range alive {
		live.Limiters = append(live.Limiters, fleet.Limiters[i])
	}
	live.ReturnIdle(t, res.End.Add(token.DefaultLeaseIdleReturn), false)
	more := live.Run(t, tok, Hot{Requests: hotQuota, Rate: hotRate, Start: res.End.Add(2 * token.DefaultLeaseIdleReturn)})
	live.ReturnIdle(t, res.End.Add(time.Minute), true)
	more2 := live.Run(t, tok, Hot{Requests: 1000, Rate: 100, Start: res.End.Add(2 * time.Minute), Only: []int{0}})
	if total := res.Admitted + more.Admitted + more2.Admitted; total != hotQuota-lost {
		t.Fatalf("admitted %d in all; want %d: the quota less the dead instance's lease of %d", total, hotQuota-lost, lost)
	}
	t.Logf("the dead instance held %d units (its last lease): the quota admitted %d of %d", lost, hotQuota-lost, hotQuota)
}

// runStaleRefillLease: an instance whose cached token still holds a refill an admin has changed
// (the counter holds the new one) finds a refill "due" that the store refuses; it must neither
// drop what it holds at each request nor lose uses: 200 requests take 200 uses, and the counter
// and what the instance holds account for every other one.
func runStaleRefillLease(t *testing.T, newStore NewStore) {
	clock := NewClock()
	s := newStore(t, clock.Now)
	tok := quotaTokenOf(t, s, clock, 1000, &token.Refill{Amount: 1000, Interval: time.Hour})
	stale := tok.Clone()
	changed := MustFind(t, s, tok.ID)
	changed.Refill = &token.Refill{Amount: 1000, Interval: 2 * time.Hour}
	MustUpdate(t, s, changed)
	clock.Advance(time.Hour + time.Minute) // the stale refill is due; the counter's is not
	l := token.NewLimiter(s, token.LimiterConfig{})
	for i := range 200 {
		v, err := l.Enforce(context.Background(), stale, netip.Addr{}, clock.Now())
		if err != nil || !v.Valid() {
			t.Fatalf("request %d with a stale refill: %s %v", i+1, v.Code, err)
		}
	}
	held, _ := l.QuotaLease(tok.ID)
	if left := MustQuotaLeft(t, s, tok.ID); left+held != 800 {
		t.Fatalf("counter %d + held %d after 200 uses of 1,000; want 800: leases were dropped", left, held)
	}
}

// runQuotaEvents: the limiter records token.quota_low when a lease takes a quota to its low mark
// (10 % of its size) and token.quota_exhausted when it empties it, each once per quota period,
// however many instances cross the mark and however often returned uses are taken again; a refill
// starts a period whose crossings count again. Concurrent claims of one event: exactly one wins.
func runQuotaEvents(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	clock := NewClock()
	s := newStore(t, clock.Now)
	tok := quotaTokenOf(t, s, clock, 10, &token.Refill{Amount: 10, Interval: time.Hour})
	var published []token.Event
	publish := func(_ context.Context, evs []token.Event) error {
		published = append(published, evs...)
		return nil
	}
	one := token.NewLimiter(s, token.LimiterConfig{Publish: publish})
	two := token.NewLimiter(s, token.LimiterConfig{Publish: publish})
	use := func(l *token.Limiter, want string) {
		t.Helper()
		clock.Advance(time.Second) // a quiet token: one unit a lease
		if v, err := l.Enforce(ctx, tok, netip.Addr{}, clock.Now()); err != nil || v.Code != want {
			t.Fatalf("use: %s %v; want %s", v.Code, err, want)
		}
	}
	for i := range 10 {
		use([]*token.Limiter{one, two}[i%2], token.CodeValid)
	}
	use(one, token.CodeUsageExceeded)
	types := func() []string {
		var out []string
		for _, e := range published {
			out = append(out, e.Type)
		}
		return out
	}
	if got := types(); !slices.Equal(got, []string{token.EventQuotaLow, token.EventQuotaSpent}) {
		t.Fatalf("events %v; want quota_low then quota_exhausted", got)
	}
	low := published[0]
	if low.TokenID != tok.ID || low.Owner != tok.Owner || low.Quota == nil || low.Quota.Remaining != 1 || low.Quota.Size != 10 ||
		low.Quota.LowPercent != token.DefaultQuotaLowPercent || !low.Quota.PeriodStart.Equal(tok.RefilledAt) || low.Quota.NextRefillAt == nil {
		t.Fatalf("quota_low %+v (quota %+v)", low, low.Quota)
	}
	// A use returned and taken again crosses the mark again: no second event this period.
	if err := s.ReturnQuota(ctx, tok.ID, tok.RefilledAt, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second) // past the spent instance's recheck
	use(two, token.CodeValid)
	if len(published) != 2 {
		t.Fatalf("events %v after a returned use was taken again; want no more", types())
	}
	// The next period crosses again.
	clock.Advance(time.Hour)
	for range 10 {
		use(one, token.CodeValid)
	}
	if got := types(); len(got) != 4 || got[2] != token.EventQuotaLow || got[3] != token.EventQuotaSpent || published[2].EventID == low.EventID {
		t.Fatalf("events %v after a refill's 10 uses; want a new quota_low and quota_exhausted", got)
	}

	e := published[0]
	e.EventID = "quota-low-concurrent"
	var wins atomic.Int32
	parallel(8, func(int) {
		if ok, err := s.ClaimQuotaEvent(ctx, e); err != nil {
			t.Errorf("ClaimQuotaEvent: %v", err)
		} else if ok {
			wins.Add(1)
		}
	})
	if wins.Load() != 1 {
		t.Fatalf("%d of 8 concurrent claims of one event won; want 1", wins.Load())
	}
}
