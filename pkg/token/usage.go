package token

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// Usage counters: per token and UTC day, the uses admitted and the refusals by code, for the
// usage chart (GET /tokens/{id}/usage). They ride on the usage writes that already record
// lastUsedAt and usageCount, so they cost no round trip of their own.
const (
	// UsageRetention is how long a day's counters are kept after the day ends (DynamoDB's TTL
	// removes them after).
	UsageRetention = 400 * Day
	// MaxUsageDays is the most days one usage read returns: one BatchGetItem on DynamoDB.
	MaxUsageDays = 90
	// DefaultUsageDays is the days a usage read returns when the caller names none.
	DefaultUsageDays = 30
	// DefaultUsageInterval is the least time between two writes of one token's refusal counts
	// by one Service (see Config.UsageInterval).
	DefaultUsageInterval = 60 * time.Second
	// usageDayLayout is a day as counters name it: 2026-11-22.
	usageDayLayout = "2006-01-02"
	// maxBufferedTokens bounds the tokens whose refusals a Service buffers.
	maxBufferedTokens = 10000
)

// RefusalCodes are the verdict codes counted as refusals of a token: each says that the token
// was found (its secret matched) and refused. A wrong secret or an unknown id (NOT_FOUND) and a
// malformed token are never counted against a token: they prove nothing about who holds it, and
// anyone who knows an id could otherwise inflate its counters.
var RefusalCodes = []string{
	CodeExpired, CodeRevoked, CodeDisabled, CodeForbiddenAPI, CodeInsufficientPermissions,
	CodeForbiddenIP, CodeRateLimited, CodeUsageExceeded,
}

// IsRefusalCode reports whether code is one of RefusalCodes.
func IsRefusalCode(code string) bool { return slices.Contains(RefusalCodes, code) }

// Usage is one usage write of a token (Store.RecordUse): uses admitted and refusals by code, at
// At. The day counters are those of At's UTC day, so counts buffered across midnight land on the
// day of their write.
type Usage struct {
	At      time.Time
	Valid   int64            // uses admitted: usageCount grows by Valid, lastUsedAt becomes At (when > 0)
	Refused map[string]int64 // refusals by code, each one of RefusalCodes
}

// IsEmpty reports whether u counts nothing, so that a store writes nothing for it.
func (u Usage) IsEmpty() bool {
	if u.Valid > 0 {
		return false
	}
	for _, n := range u.Refused {
		if n > 0 {
			return false
		}
	}
	return true
}

// Check returns EINVALID when u cannot be written: a negative count, or a refusal code that is
// not one of RefusalCodes (a store names an attribute after it).
func (u Usage) Check() error {
	if u.Valid < 0 {
		return Errorf(EINVALID, "usage: negative count of valid uses")
	}
	for code, n := range u.Refused {
		if !IsRefusalCode(code) {
			return Errorf(EINVALID, "usage: %q is not a refusal code", truncate(code, 40))
		}
		if n < 0 {
			return Errorf(EINVALID, "usage: negative count of %s", code)
		}
	}
	return nil
}

// DayUsage is one UTC day of a token's usage counters.
type DayUsage struct {
	Day     time.Time        // midnight UTC
	Valid   int64            // uses admitted
	Refused map[string]int64 // refusals by code; only codes with a count, never nil
}

// UsageDay returns the UTC day that holds at, as counters name it (2026-11-22).
func UsageDay(at time.Time) string { return at.UTC().Format(usageDayLayout) }

// UsageExpiry returns when the counters of the UTC day holding at expire: UsageRetention after
// the day ends.
func UsageExpiry(at time.Time) time.Time {
	return dayStart(at).Add(Day + UsageRetention)
}

// UsageDays returns the UTC days of a usage read: days of them, oldest first, ending with the day
// that holds last.
func UsageDays(last time.Time, days int) []time.Time {
	end := dayStart(last)
	out := make([]time.Time, days)
	for i := range days {
		out[i] = end.AddDate(0, 0, i-days+1)
	}
	return out
}

func dayStart(at time.Time) time.Time {
	y, m, d := at.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Usage returns the usage counters of a token the caller may manage for the last days UTC days,
// oldest first and ending today, one entry per day (a day without uses has zero counts).
// Returns EINVALID naming days unless it is 1-MaxUsageDays; ENOTFOUND as Get (also for another
// owner's token); EFORBIDDEN if the caller manages no tokens at all.
func (s *Service) Usage(ctx context.Context, caller Principal, id string, days int) ([]DayUsage, error) {
	if days < 1 || days > MaxUsageDays {
		return nil, Errorf(EINVALID, "days: must be a whole number from 1 to %d", MaxUsageDays)
	}
	if _, err := s.Get(ctx, caller, id); err != nil {
		return nil, err
	}
	return s.store.UsageDays(ctx, id, s.cfg.Now().UTC(), days)
}

// WindowState is the live state of a token's rate limit: the current window's count of requests,
// what is left of its limit, and when it ends.
type WindowState struct {
	Count     int64
	Remaining int64
	Reset     time.Time
}

// RateWindows returns the live state of the rate limits of tokens at the service's now, by token
// id; tokens without a rate limit have none. It costs one store read (Store.WindowCounts: one
// BatchGetItem on DynamoDB for up to 100 tokens), and none when no token has a rate limit. The
// caller has read tokens already, and may show them: no permission is checked here.
func (s *Service) RateWindows(ctx context.Context, tokens []*Token) (map[string]WindowState, error) {
	now := s.cfg.Now().UTC()
	var windows []RateWindow
	for _, t := range tokens {
		if rl := t.RateLimit; rl != nil {
			windows = append(windows, RateWindow{TokenID: t.ID, Start: WindowStart(now, rl.Window)})
		}
	}
	if len(windows) == 0 {
		return nil, nil
	}
	counts, err := s.store.WindowCounts(ctx, windows)
	if err != nil {
		return nil, err
	}
	out := make(map[string]WindowState, len(windows))
	i := 0
	for _, t := range tokens {
		rl := t.RateLimit
		if rl == nil {
			continue
		}
		n := min(counts[i], rl.Limit)
		out[t.ID] = WindowState{Count: n, Remaining: rl.Limit - n, Reset: windows[i].Start.Add(rl.Window)}
		i++
	}
	return out, nil
}

// RateWindow names one rate-limit window of a token: the one that starts at Start.
type RateWindow struct {
	TokenID string
	Start   time.Time
}

// QuotaNow returns what t's quota holds at now, and when its next refill comes: a refill that
// fell due is applied by the token's next use (Store.ConsumeQuota), so until then the stored
// Remaining is stale and the refill amount is what the next use finds. ok is false for a token
// without a quota; next is zero for a quota without a refill.
func (t *Token) QuotaNow(now time.Time) (remaining int64, next time.Time, ok bool) {
	if t.Remaining == nil {
		return 0, time.Time{}, false
	}
	remaining = *t.Remaining
	rf := t.Refill
	if rf == nil || rf.Interval <= 0 || t.RefilledAt.IsZero() {
		return remaining, time.Time{}, true
	}
	latest := LatestRefill(t.RefilledAt, rf.Interval, now)
	if latest.After(t.RefilledAt) {
		remaining = rf.Amount
	}
	return remaining, latest.Add(rf.Interval), true
}

// RefusalBuffer counts the refusals of tokens between usage writes, so that a token refused
// again and again costs at most one write of its own per interval: its counts ride on the
// token's next usage write (Take), or, once the interval since its last write has passed, go out
// on their own (Add says when). It keeps at most size tokens: with every one of them holding
// counts, a refusal of another token is due at once rather than buffered, so memory stays
// bounded (only counts whose write failed while it was full are dropped). Safe for concurrent
// use.
type RefusalBuffer struct {
	interval time.Duration
	size     int

	mu     sync.Mutex
	tokens map[string]*refusals
}

type refusals struct {
	counts    map[string]int64 // not yet written
	lastWrite time.Time        // zero: never written through this buffer
}

// NewRefusalBuffer returns a buffer writing each token's refusals at most once per interval
// (0: at every refusal) and keeping at most size tokens (at least 1).
func NewRefusalBuffer(interval time.Duration, size int) *RefusalBuffer {
	return &RefusalBuffer{interval: interval, size: max(size, 1), tokens: make(map[string]*refusals)}
}

// Add counts one refusal of token id for code at now. When the token's refusals are due (never
// written, or not for an interval) it returns them all, this one included, for the caller to
// write (and to Restore if the write fails); otherwise nil.
func (b *RefusalBuffer) Add(id, code string, now time.Time) map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.entry(id, now)
	if r == nil {
		return map[string]int64{code: 1}
	}
	if r.counts == nil {
		r.counts = make(map[string]int64)
	}
	r.counts[code]++
	if !r.lastWrite.IsZero() && now.Sub(r.lastWrite) < b.interval {
		return nil
	}
	counts := r.counts
	r.counts, r.lastWrite = nil, now
	return counts
}

// Take returns the refusals of token id not yet written, for a usage write at now that carries
// them (nil when there are none), and counts that write as the token's last: refusals that follow
// it wait for the token's next write, or for the interval.
func (b *RefusalBuffer) Take(id string, now time.Time) map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.entry(id, now)
	if r == nil {
		return nil
	}
	counts := r.counts
	r.counts, r.lastWrite = nil, now
	return counts
}

// entry returns token id's entry, making one (after pruning a full buffer) when it has none;
// nil when the buffer is full all the same. b.mu must be held.
func (b *RefusalBuffer) entry(id string, now time.Time) *refusals {
	if r, ok := b.tokens[id]; ok {
		return r
	}
	if len(b.tokens) >= b.size {
		b.prune(now)
	}
	if len(b.tokens) >= b.size {
		return nil
	}
	r := &refusals{}
	b.tokens[id] = r
	return r
}

// Restore puts back counts that Add or Take returned and whose write failed, so that the next
// write carries them.
func (b *RefusalBuffer) Restore(id string, counts map[string]int64) {
	if len(counts) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.tokens[id]
	if !ok {
		if len(b.tokens) >= b.size {
			return // full: the counts are lost rather than memory unbounded
		}
		r = &refusals{}
		b.tokens[id] = r
	}
	if r.counts == nil {
		r.counts = maps.Clone(counts)
		return
	}
	for code, n := range counts {
		r.counts[code] += n
	}
}

// prune forgets tokens with nothing pending whose interval has passed. b.mu must be held.
func (b *RefusalBuffer) prune(now time.Time) {
	for id, r := range b.tokens {
		if len(r.counts) == 0 && now.Sub(r.lastWrite) >= b.interval {
			delete(b.tokens, id)
		}
	}
}
