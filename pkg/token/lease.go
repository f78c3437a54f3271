package token

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Leased allowances.
//
// A DynamoDB item takes about 1,000 writes a second at most. Counting every request of a hot
// token on its rate-limit window or its quota would put one write per request on one item, and
// a token used 5,000 times a second would be throttled exactly when it is busiest. So an
// enforcement point (an authorizer instance, a verify function instance, the local server) takes
// a lease of k units of a window's or a quota's budget in one write, admits up to k requests from
// memory, and takes the next lease when they are spent.
//
// k adapts to the rate at which the whole fleet spends the budget, which every lease observes for
// free: the count (or the remaining uses) a lease write returns has moved by what every instance
// took since this instance's previous lease. With R that fleet-wide rate and W the target writes
// per second of one item (LimiterConfig.WritesPerSecond, 200), k = ceil(R/W) would make an instance
// spending r of R write r/k <= r*W/R times a second, and all instances together at most W, whatever
// their number. (Leases are sized for a quarter of W, see size.) A quiet token (R <= W/4) has k = 1: one write per request, exactly as without
// leases, and nothing held in memory after the request.
//
// Guarantees (also in the README):
//   - Never more admitted than the limit or the quota, across any number of instances: leases
//     are granted by serialised writes on one item, each from what the item still holds.
//   - Under-admission is bounded: the units of a window an instance holds when the window ends
//     lapse, at most k per instance (k <= RateLeaseMax of the limit); unused quota units are
//     returned once an instance's lease is idle for LimiterConfig.IdleReturn (ReturnIdle), only
//     into the quota period they came from (never over-returning, never into a refill), so a
//     quota loses units only when an instance dies holding a lease: at most that lease's k.
//   - A token with no limits costs no write; a limited token whose fleet-wide rate is at most W
//     costs one write per request, as before.
//
// Rate windows use an unconditional ADD of k rather than a conditional one (count + k <= limit):
// the count after the addition tells each writer which units are its own (the additions are
// serialised), so the grant is min(k, limit - count before) in one round trip, also when fewer
// than k remain, where a conditional write would need a second one. The count may exceed the
// limit by what the last leases asked for; reads clamp it (Service.RateWindows). Once a window is
// spent, an instance admits nothing more from it and writes nothing more to it, so a refused
// request costs no write (before leases, every refusal was a failed conditional write).

// Defaults of LimiterConfig.
const (
	DefaultLeaseWritesPerSecond = 200
	DefaultLeaseIdleReturn      = 3 * time.Second
	// quotaRecheck is how long an instance that found a quota spent answers USAGE_EXCEEDED from
	// memory before asking the store again: other instances may return unused units meanwhile.
	quotaRecheck = time.Second
	// maxQuotaLease bounds a quota lease, whatever the rate.
	maxQuotaLease = 10_000
	// forgetAfter is how long a limiter keeps the state of a token it no longer sees.
	forgetAfter = time.Minute
	// returnEvery is how often ReturnIdle looks for idle leases unless forced.
	returnEvery = time.Second
)

// RateLeaseMax returns the largest lease of a window of limit requests: a twentieth of the
// window's budget (at least 1), so that what a handful of instances can let lapse stays small.
func RateLeaseMax(limit int64) int64 { return max(1, limit/20) }

// LimiterConfig tunes a Limiter; zero values take the defaults.
type LimiterConfig struct {
	WritesPerSecond float64       // target bound of the lease writes to one item, all instances together
	IdleReturn      time.Duration // a quota lease unused this long is returned by ReturnIdle
	// LowPercent is the low mark of a quota, in percent of its size (DefaultQuotaLowPercent); a
	// lease that takes the counter to it or below records token.quota_low, one that empties it
	// token.quota_exhausted (Store.ClaimQuotaEvent, once per quota period).
	LowPercent int
	// Publish, when set, publishes the quota events this limiter recorded (the local server);
	// on AWS the table's stream hands them to the function that publishes them.
	Publish func(context.Context, []Event) error
	Logger  *slog.Logger // for quota events that could not be recorded or published; nil: slog.Default()
}

// DefaultQuotaLowPercent is LimiterConfig.LowPercent's default.
const DefaultQuotaLowPercent = 10

// Limiter enforces the limits of tokens for one enforcement point with leased allowances. Safe
// for concurrent use; one per instance, shared by every request it serves.
type Limiter struct {
	store Store
	cfg   LimiterConfig

	mu         sync.Mutex
	rates      map[string]*rateLease
	quotas     map[string]*quotaLease
	lastReturn time.Time // the last ReturnIdle that looked
}

// NewLimiter returns a limiter writing to store.
func NewLimiter(store Store, cfg LimiterConfig) *Limiter {
	if cfg.WritesPerSecond <= 0 {
		cfg.WritesPerSecond = DefaultLeaseWritesPerSecond
	}
	if cfg.IdleReturn <= 0 {
		cfg.IdleReturn = DefaultLeaseIdleReturn
	}
	if cfg.LowPercent <= 0 {
		cfg.LowPercent = DefaultQuotaLowPercent
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Limiter{store: store, cfg: cfg,
		rates: make(map[string]*rateLease), quotas: make(map[string]*quotaLease)}
}

// LeaseState is what an instance knew of a limit when it refused a request, so that operators
// can tell a spent limit from a lapsed lease (logged by the authorizer, and in its context).
type LeaseState struct {
	Kind      string    // "rate" or "quota"
	Size      int64     // the size k of this instance's last lease
	StoreLeft int64     // what the store said was left at CheckedAt (window: limit - count)
	CheckedAt time.Time // when this instance last wrote the item
	FromStore bool      // the refusal came from a write just now, not from memory
}

// Source says where the refusal came from: "store" (a lease write just now) or "memory".
func (l *LeaseState) Source() string {
	if l.FromStore {
		return "store"
	}
	return "memory"
}

// LogValue logs the state as a group (slog.LogValuer).
func (l *LeaseState) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", l.Kind), slog.String("source", l.Source()), slog.Int64("size", l.Size),
		slog.Int64("storeLeft", l.StoreLeft), slog.Time("checkedAt", l.CheckedAt))
}

// rateLease is one instance's lease of a token's current rate-limit window.
type rateLease struct {
	mu        sync.Mutex // held across the lease write: one write per token in flight per instance
	limit     int64
	window    time.Duration
	start     time.Time // the window the held units belong to
	held      int64
	spent     bool  // the window's budget is gone: refuse from memory until it ends
	count     int64 // the window's count after this instance's last lease
	checkedAt time.Time
	est       estimate
}

// quotaLease is one instance's lease of a token's quota.
type quotaLease struct {
	mu        sync.Mutex
	gen       time.Time // Token.RefilledAt as set on the token: a reset starts a new lease
	period    time.Time // the quota period the held units belong to (the counter's refilledAt)
	lapseAt   time.Time // the refill boundary after the last lease: held units lapse then (zero: no refill)
	held      int64
	lastUse   time.Time
	spent     bool // the counter was empty at checkedAt
	left      int64
	checkedAt time.Time
	est       estimate
	gone      bool // the token has no quota any more (removed since it was read)
}

// estimate tracks the fleet-wide rate at which a budget is spent: what the other instances took
// between this instance's leases (the level a lease write returns, less what it was before this
// instance's previous write returned) plus what this instance used, over a span of at least
// estimateSpan. Its own leases do not count, only its uses: a large lease must not inflate the
// estimate that sized it.
type estimate struct {
	spanAt    time.Time
	others    int64   // units other instances took since spanAt
	used      int64   // units this instance used since spanAt
	lastAfter int64   // the level after this instance's last write (restart sets the first)
	rate      float64 // 0: not known yet
	k         int64   // the last lease size asked for
}

const (
	// estimateSpan is the shortest span a rate is measured over.
	estimateSpan = 20 * time.Millisecond
	// slowStartUses is how many uses within estimateSpan (150 a second from this instance
	// alone) start growing leases before a rate is measured: fewer stay a quiet token's burst.
	slowStartUses = 3
	// estimateStale is how long a rate is trusted after its last observation: a token hot a
	// while ago and quiet now leases one unit again.
	estimateStale = 5 * time.Second
)

// observe records a lease write at now that found the budget's level (units spent) at before
// and left it at after.
func (e *estimate) observe(now time.Time, before, after int64) {
	if !e.spanAt.IsZero() && now.Sub(e.spanAt) > estimateStale {
		e.spanAt, e.rate = time.Time{}, 0
	}
	if before >= e.lastAfter {
		e.others += before - e.lastAfter
	}
	e.lastAfter = after
	switch {
	case e.spanAt.IsZero() || now.Before(e.spanAt):
		e.spanAt, e.others, e.used = now, 0, 0 // a new span; the rate stays until it is measured
	case now.Sub(e.spanAt) >= estimateSpan:
		// Smoothed: the others' takes arrive in lumps of their lease sizes, and a lump read as a
		// rate would grow this instance's leases, and with them the others' estimates.
		r := float64(e.others+e.used) / now.Sub(e.spanAt).Seconds()
		if e.rate > 0 {
			r = (3*e.rate + r) / 4
		}
		e.rate = r
		e.spanAt, e.others, e.used = now, 0, 0
	}
}

// restart begins a new budget (a window, a quota period) whose level was level at at.
func (e *estimate) restart(at time.Time, level int64, now time.Time) {
	if !e.spanAt.IsZero() && now.Sub(e.spanAt) > estimateStale {
		e.rate = 0
	}
	e.spanAt, e.others, e.used, e.lastAfter = at, 0, 0, level
}

// size returns the next lease size at now, between 1 and most. Leases are sized for a quarter
// of the write budget, k = ceil(4R/W), which leaves the rest for what the estimate cannot see: the
// leases of instances still measuring (slow start), and the last leases of each instance when a
// window or quota runs out (and their second write when fewer than k remain). floor is a lower bound of the rate known otherwise (a window's
// average so far). While this instance alone uses slowStartUses units faster than a rate can be measured, k grows
// fourfold a lease (slow start); a measured rate may grow it sixteenfold a lease at most.
func (l *Limiter) size(e *estimate, now time.Time, floor float64, most int64) int64 {
	rate := floor
	fresh := !e.spanAt.IsZero() && now.Sub(e.spanAt) <= estimateStale
	if fresh {
		rate = max(rate, e.rate)
	}
	slow := false
	if dt := now.Sub(e.spanAt); fresh && e.rate == 0 && dt < estimateSpan && (e.others > 0 || e.used >= slowStartUses) {
		// No rate measured yet, but the fleet (others' takes) or this instance is busy: a
		// provisional rate over the span so far, 10 ms at least.
		rate = max(rate, float64(e.others+e.used)/max(dt, 10*time.Millisecond).Seconds())
		slow = e.used >= slowStartUses
	}
	k := int64(math.Ceil(4 * rate / l.cfg.WritesPerSecond))
	if slow && e.k > 0 {
		k = max(k, 4*e.k)
	}
	if e.k > 0 {
		k = min(k, 16*e.k) // grows at most sixteenfold a lease
	}
	k = min(max(k, 1), max(most, 1))
	return k
}

// Enforce applies a valid token's limits, in order: IP allowlist, rate limit, quota. ip is the
// caller's address, or the zero Addr when unknown (a REST TOKEN authorizer has none): a token
// with an allowlist then answers FORBIDDEN_IP. A token with no limits costs no store call; a
// limited one costs at most one lease write per limit, and none while this instance holds
// units. The error is non-nil only when the store failed: callers must deny.
func (l *Limiter) Enforce(ctx context.Context, t *Token, ip netip.Addr, now time.Time) (Verdict, error) {
	if !t.AllowsIP(ip) {
		return Verdict{Code: CodeForbiddenIP, Token: t}, nil
	}
	v := Verdict{Code: CodeValid, Token: t}
	if rl := t.RateLimit; rl != nil {
		st, err := l.takeRate(ctx, t.ID, *rl, now)
		if err != nil {
			return Verdict{}, err
		}
		v.Limit = st
		if st.Lease != nil {
			v.Code = CodeRateLimited
			return v, nil
		}
	}
	if t.Remaining != nil {
		st, err := l.takeQuota(ctx, t, now)
		if err != nil {
			return Verdict{}, err
		}
		if st != nil {
			v.Code, v.Limit = CodeUsageExceeded, st
		}
	}
	return v, nil
}

// takeRate takes one request of token id's current window. It returns the window's state; its
// Lease is set when the request is refused.
func (l *Limiter) takeRate(ctx context.Context, id string, rl RateLimit, now time.Time) (*LimitState, error) {
	l.mu.Lock()
	r, ok := l.rates[id]
	if !ok || r.limit != rl.Limit || r.window != rl.Window {
		r = &rateLease{limit: rl.Limit, window: rl.Window}
		l.rates[id] = r
	}
	l.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	start := WindowStart(now, rl.Window)
	if !r.start.Equal(start) {
		// Units of a past window lapse with it; its count is the next one's level 0.
		r.start, r.held, r.spent, r.count = start, 0, false, 0
		r.est.restart(start, 0, now) // the count was 0 when the window started
	}
	fromStore := false
	if r.held == 0 && !r.spent {
		// The window's average so far bounds the rate from below: right after a window opens,
		// it is what tells a hot token from a quiet one (measured over 10 ms at least).
		avg := float64(r.count) / max(now.Sub(start), 10*time.Millisecond).Seconds()
		k := l.size(&r.est, now, avg, RateLeaseMax(rl.Limit))
		r.est.k = k
		count, err := l.store.LeaseRate(ctx, id, start, rl.Window, k)
		if err != nil {
			return nil, err
		}
		r.count, r.checkedAt, fromStore = count, now, true
		r.est.observe(now, count-k, count)
		r.held = min(k, max(rl.Limit-(count-k), 0))
		r.spent = r.held < k // the window's budget is gone once these are used
	}
	st := &LimitState{Limit: rl.Limit, Reset: start.Add(rl.Window)}
	if r.held == 0 {
		st.Lease = &LeaseState{Kind: "rate", Size: r.est.k, StoreLeft: max(rl.Limit-r.count, 0), CheckedAt: r.checkedAt, FromStore: fromStore}
		return st, nil
	}
	r.held--
	r.est.used++
	// What the window has left, counting what this instance holds as left (the others' leases
	// are spent as far as it can tell).
	st.Remaining = max(rl.Limit-r.count, 0) + r.held
	return st, nil
}

// takeQuota takes one use of t's quota: nil when it was taken, the refusal's state otherwise.
func (l *Limiter) takeQuota(ctx context.Context, t *Token, now time.Time) (*LimitState, error) {
	l.mu.Lock()
	q, ok := l.quotas[t.ID]
	if !ok || !q.gen.Equal(t.RefilledAt) {
		// A reset sets the quota anew: what an old lease held belongs to the old quota, and
		// lapses (ReturnQuota's period check would refuse it anyway).
		q = &quotaLease{gen: t.RefilledAt}
		l.quotas[t.ID] = q
	}
	l.mu.Unlock()

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return nil, nil // the quota was removed; the cached token will follow
	}
	// The period the caller can tell from its token and what this lease saw.
	known := q.period
	if t.RefilledAt.After(known) {
		known = t.RefilledAt
	}
	rf := t.Refill
	if !q.lapseAt.IsZero() && !now.Before(q.lapseAt) {
		// A refill boundary has passed since the last lease: the held units' period is over, and
		// they lapse with it; the next lease refills. Measured from the lease, not from the
		// token's refill settings, which a cached token may hold out of date: those would find a
		// refill due at every request, and drop a lease at each.
		q.held, q.spent, q.lapseAt = 0, false, time.Time{}
	}
	fromStore := false
	if q.held == 0 && (!q.spent || now.Sub(q.checkedAt) >= quotaRecheck) {
		k := l.size(&q.est, now, 0, maxQuotaLease)
		q.est.k = k
		lease, err := l.store.LeaseQuota(ctx, t.ID, rf, known, now, k)
		if err != nil {
			return nil, err
		}
		if lease.Unlimited {
			q.gone, q.checkedAt = true, now // kept until the cached token follows (forgetAfter)
			return nil, nil
		}
		if !lease.Period.Equal(q.period) {
			// A new period: its level starts again, from what the lease found.
			q.est.restart(now, -(lease.Remaining + lease.Granted), now)
		}
		q.period, q.left, q.checkedAt, fromStore = lease.Period, lease.Remaining, now, true
		q.est.observe(now, -(lease.Remaining + lease.Granted), -lease.Remaining) // spent grows as remaining shrinks
		q.held, q.spent = lease.Granted, lease.Granted == 0
		if rf != nil {
			q.lapseAt = LatestRefill(lease.Period, rf.Interval, now).Add(rf.Interval)
		}
		l.recordQuotaEvents(ctx, quotaEvents(t, lease, l.cfg.LowPercent, now))
	}
	if q.held == 0 {
		st := &LimitState{Lease: &LeaseState{Kind: "quota", Size: q.est.k, StoreLeft: q.left, CheckedAt: q.checkedAt, FromStore: fromStore}}
		if rf != nil {
			st.Limit = rf.Amount
			st.Reset = LatestRefill(known, rf.Interval, now).Add(rf.Interval)
		}
		return st, nil
	}
	q.held--
	q.lastUse = now
	q.est.used++
	return nil, nil
}

// quotaEvents returns the events of a lease of t's quota: token.quota_low when it took the
// counter from above the low mark (lowPercent of the quota's size: its refill amount, or the
// quota as set) to it or below, token.quota_exhausted when it emptied it. A lease of many units
// may cross both. Each event's id names the token, the type and the quota period, so each is
// recorded once per period (Store.ClaimQuotaEvent) however often uses are returned and taken.
func quotaEvents(t *Token, lease QuotaLease, lowPercent int, now time.Time) []Event {
	before, after := lease.Remaining+lease.Granted, lease.Remaining
	size := int64(0)
	var next *time.Time
	if rf := t.Refill; rf != nil {
		size = rf.Amount
		at := lease.Period.Add(rf.Interval)
		next = &at
	} else if t.Remaining != nil {
		size = *t.Remaining // the token item's remaining: the quota as set
	}
	low := size * int64(lowPercent) / 100
	var kinds []string
	if low > 0 && before > low && after <= low {
		kinds = append(kinds, EventQuotaLow)
	}
	if before > 0 && after <= 0 {
		kinds = append(kinds, EventQuotaSpent)
	}
	var out []Event
	for _, kind := range kinds {
		e := Event{
			Type: kind, Version: EventVersion, Time: now,
			EventID: "quota-" + strings.TrimPrefix(kind, "token.quota_") + "-" + t.ID + "-" + strconv.FormatInt(lease.Period.UnixNano(), 10),
			TokenID: t.ID, Owner: t.Owner, Name: t.Name, Env: t.Env,
			Quota: &EventQuota{Remaining: after, Size: size, LowPercent: lowPercent, PeriodStart: lease.Period, NextRefillAt: next},
		}
		if !t.ExpiresAt.IsZero() {
			at := t.ExpiresAt
			e.ExpiresAt = &at
		}
		out = append(out, e)
	}
	return out
}

// recordQuotaEvents records each event once (Store.ClaimQuotaEvent) and, with
// LimiterConfig.Publish, publishes those this call recorded. Failures are logged: an event is
// bookkeeping, never a reason to refuse or admit a request.
func (l *Limiter) recordQuotaEvents(ctx context.Context, events []Event) {
	var claimed []Event
	for _, e := range events {
		ok, err := l.store.ClaimQuotaEvent(ctx, e)
		if err != nil {
			l.cfg.Logger.WarnContext(ctx, "quota event not recorded", "type", e.Type, "tokenId", e.TokenID, "error", err)
		} else if ok {
			claimed = append(claimed, e)
		}
	}
	if len(claimed) == 0 || l.cfg.Publish == nil {
		return
	}
	if err := l.cfg.Publish(ctx, claimed); err != nil {
		l.cfg.Logger.WarnContext(ctx, "quota events not published", "events", len(claimed), "error", err)
	}
}

// QuotaLease returns what this instance holds of token id's quota (leased, not yet used) and
// the size of its last lease of it; zeros for a token it has not leased.
func (l *Limiter) QuotaLease(id string) (held, size int64) {
	l.mu.Lock()
	q, ok := l.quotas[id]
	l.mu.Unlock()
	if !ok {
		return 0, 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held, q.est.k
}

// ReturnIdle gives back the unused units of the quota leases idle for LimiterConfig.IdleReturn
// at now (all of them when force is set, e.g. at shutdown), best effort: a failed return keeps
// nothing (the units are lost to the quota, as a crashed instance's would be). It also forgets
// the leases of windows that have ended. It returns the number of units returned.
func (l *Limiter) ReturnIdle(ctx context.Context, now time.Time, force bool) int64 {
	type back struct {
		id     string
		period time.Time
		n      int64
	}
	var due []back
	l.mu.Lock()
	if !force && now.Sub(l.lastReturn) < returnEvery {
		l.mu.Unlock()
		return 0 // Lambda's flush calls it with every invocation: look at most once a second
	}
	l.lastReturn = now
	quotas := make(map[string]*quotaLease, len(l.quotas))
	for id, q := range l.quotas {
		quotas[id] = q
	}
	for id, r := range l.rates {
		// A window that ended a while ago holds nothing; its rate estimate is stale too.
		if r.mu.TryLock() {
			if now.Sub(r.start.Add(r.window)) > forgetAfter {
				delete(l.rates, id)
			}
			r.mu.Unlock()
		}
	}
	l.mu.Unlock()
	for id, q := range quotas {
		q.mu.Lock()
		if q.held > 0 && (force || now.Sub(q.lastUse) >= l.cfg.IdleReturn) {
			due = append(due, back{id, q.period, q.held})
			q.held = 0
		}
		forget := q.held == 0 && now.Sub(q.lastUse) > forgetAfter && now.Sub(q.checkedAt) > forgetAfter
		q.mu.Unlock()
		if forget {
			l.mu.Lock()
			if l.quotas[id] == q {
				delete(l.quotas, id)
			}
			l.mu.Unlock()
		}
	}
	var returned int64
	for _, b := range due {
		if err := l.store.ReturnQuota(ctx, b.id, b.period, b.n); err == nil {
			returned += b.n
		}
	}
	return returned
}
