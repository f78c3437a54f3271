package token

import (
	"context"
	"slices"
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
	// DefaultUsageInterval is the least time between two usage writes of one token by one
	// Service (see Config.UsageInterval).
	DefaultUsageInterval = 60 * time.Second
	// usageWriteTimeout bounds each usage write of a Service. A write that times out after
	// DynamoDB applied it is kept and sent again, so its uses count twice: the bound is generous
	// (a Lambda function's own timeout cuts it shorter), so that only a store in real trouble
	// does that, not a slow moment of a loaded machine.
	usageWriteTimeout = 10 * time.Second
	// usageDayLayout is a day as counters name it: 2026-11-22.
	usageDayLayout = "2006-01-02"
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
// oldest first and ending today, one entry per day (a day without uses has zero counts), with
// what this Service counted and has not written yet added to the day of its last outcome.
// Returns EINVALID naming days unless it is 1-MaxUsageDays; ENOTFOUND as Get (also for another
// owner's token); EFORBIDDEN if the caller manages no tokens at all.
func (s *Service) Usage(ctx context.Context, caller Principal, id string, days int) ([]DayUsage, error) {
	if days < 1 || days > MaxUsageDays {
		return nil, Errorf(EINVALID, "days: must be a whole number from 1 to %d", MaxUsageDays)
	}
	if _, err := s.readable(ctx, caller, id); err != nil {
		return nil, err
	}
	out, err := s.store.UsageDays(ctx, id, s.cfg.Now().UTC(), days)
	if err != nil {
		return nil, err
	}
	if h := s.usage.Held(id); !h.IsEmpty() {
		// What this Service counted and has not written lands on the day of its last outcome.
		day := dayStart(h.At)
		for i := range out {
			if out[i].Day.Equal(day) {
				out[i].Valid += h.Valid
				for code, n := range h.Refused {
					out[i].Refused[code] += n
				}
			}
		}
	}
	return out, nil
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
// fell due is applied by the token's next use (Store.LeaseQuota), so until then the stored
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
