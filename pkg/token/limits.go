package token

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Limits of the limit settings themselves.
const (
	MaxRateLimit      = 1_000_000
	MaxRateWindow     = 24 * time.Hour
	MaxRemaining      = 1_000_000_000_000
	MaxRefillInterval = 366 * Day
	MaxAllowedCIDRs   = 50
)

// RateLimit admits at most Limit requests per fixed window of length Window (windows are aligned
// to the Unix epoch, so every instance of the authorizer counts the same window).
type RateLimit struct {
	Limit  int64
	Window time.Duration
}

// Refill resets a token's remaining uses to Amount every Interval, counted from the last refill.
type Refill struct {
	Amount   int64
	Interval time.Duration
}

// LimitState describes the limit that refused a request, for Retry-After and RateLimit-* headers
// and for the "reset" of a verify answer.
type LimitState struct {
	Limit     int64       // the window's limit, or the refill amount of a quota
	Remaining int64       // requests or uses left (0 when refused)
	Reset     time.Time   // when the window ends or the next refill comes; zero: never
	Lease     *LeaseState // with a refusal: what the refusing instance knew (Limiter)
}

// Verdict codes of the limits, checked in this order after the token itself is valid.
const (
	CodeForbiddenIP   = "FORBIDDEN_IP"
	CodeRateLimited   = "RATE_LIMITED"
	CodeUsageExceeded = "USAGE_EXCEEDED"
)

// HasLimits reports whether using the token costs more than reading it.
func (t *Token) HasLimits() bool {
	return len(t.AllowedCIDRs) > 0 || t.RateLimit != nil || t.Remaining != nil
}

// AllowsIP reports whether ip may use the token: always when it has no allowlist, never when the
// caller's address is unknown (an invalid ip) and it has one. IPv4-mapped IPv6 addresses count as
// their IPv4 address.
func (t *Token) AllowsIP(ip netip.Addr) bool {
	if len(t.AllowedCIDRs) == 0 {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range t.AllowedCIDRs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// WindowStart returns the start of the fixed window of length w that holds now.
func WindowStart(now time.Time, w time.Duration) time.Time {
	return time.Unix(0, now.UnixNano()-now.UnixNano()%int64(w)).UTC()
}

// LatestRefill returns the last refill boundary at or before now: boundaries lie every interval
// from refilledAt, so a refill is due when the result is after refilledAt, and a stale refilledAt
// yields the same boundary as the current one. The next refill comes an interval later.
func LatestRefill(refilledAt time.Time, interval time.Duration, now time.Time) time.Time {
	if !now.After(refilledAt) {
		return refilledAt
	}
	return refilledAt.Add(now.Sub(refilledAt) / interval * interval)
}

// LimitsInput sets a token's limits on create or update; nil fields stay as they are (create:
// none), and the Clear flags remove one.
type LimitsInput struct {
	RateLimit      *RateLimit
	ClearRateLimit bool
	Remaining      *int64
	ClearRemaining bool // unlimited uses; also removes the refill
	Refill         *Refill
	ClearRefill    bool
	AllowedCIDRs   *[]string // nil: unchanged; empty: no allowlist
}

// applyLimits validates in and applies it to t at now. Returns EINVALID naming the field.
func applyLimits(t *Token, in LimitsInput, now time.Time) error {
	if in.RateLimit != nil {
		rl := *in.RateLimit
		if rl.Limit < 1 || rl.Limit > MaxRateLimit {
			return Errorf(EINVALID, "rateLimit.limit: must be 1-%d", MaxRateLimit)
		}
		if rl.Window < time.Second || rl.Window > MaxRateWindow || rl.Window%time.Second != 0 {
			return Errorf(EINVALID, "rateLimit.windowSeconds: must be a whole number from 1 to %d", int(MaxRateWindow/time.Second))
		}
		t.RateLimit = &rl
	} else if in.ClearRateLimit {
		t.RateLimit = nil
	}
	if in.Remaining != nil {
		if *in.Remaining < 0 || *in.Remaining > MaxRemaining {
			return Errorf(EINVALID, "remaining: must be 0-%d, or null for unlimited", int64(MaxRemaining))
		}
		r := *in.Remaining
		t.Remaining = &r
		t.RefilledAt = now
		t.ResetQuota = true
	} else if in.ClearRemaining {
		t.Remaining, t.Refill, t.RefilledAt = nil, nil, time.Time{}
		t.ResetQuota = true
	}
	if in.Refill != nil {
		rf := *in.Refill
		if rf.Amount < 1 || rf.Amount > MaxRemaining {
			return Errorf(EINVALID, "refill.amount: must be 1-%d", int64(MaxRemaining))
		}
		if rf.Interval < time.Second || rf.Interval > MaxRefillInterval || rf.Interval%time.Second != 0 {
			return Errorf(EINVALID, "refill.intervalSeconds: must be a whole number from 1 to %d", int(MaxRefillInterval/time.Second))
		}
		if t.Remaining == nil {
			return Errorf(EINVALID, "refill: needs remaining: a refill tops up a number of uses")
		}
		// Refills count from when the quota was set (RefilledAt); the counters stay as stored,
		// so adding a refill never undoes uses consumed meanwhile.
		t.Refill = &rf
	} else if in.ClearRefill {
		t.Refill = nil
	}
	if in.AllowedCIDRs != nil {
		cidrs, err := parseCIDRs(*in.AllowedCIDRs)
		if err != nil {
			return err
		}
		t.AllowedCIDRs = cidrs
	}
	return nil
}

// parseCIDRs validates an allowlist: IPv4 and IPv6 CIDRs (a bare address counts as a /32 or
// /128), at most 50, normalised to their network address; IPv4-mapped IPv6 prefixes become IPv4.
// Returns EINVALID naming the entry, as allowedCidrs[i].
func parseCIDRs(in []string) ([]netip.Prefix, error) {
	if len(in) > MaxAllowedCIDRs {
		return nil, Errorf(EINVALID, "allowedCidrs: at most %d entries", MaxAllowedCIDRs)
	}
	var out []netip.Prefix
	for i, s := range in {
		p, err := ParseCIDR(s)
		if err != nil {
			reason := "is not an IPv4 or IPv6 CIDR such as 203.0.113.0/24 or 2001:db8::/32"
			if e, ok := errors.AsType[*Error](err); ok {
				reason = e.Message
			}
			return nil, Errorf(EINVALID, "allowedCidrs[%d]: %q %s", i, truncate(s, 60), reason)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// ParseCIDR parses one allowlist entry as parseCIDRs does. Returns EINVALID for an address with
// a zone (fe80::1%eth0: a zone names an interface of one host, so it has no place in an
// allowlist, and dropping it would widen the entry) or an IPv4-mapped prefix shorter than /96;
// netip's error for any other malformed entry.
func ParseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errZone
	}
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, errMappedPrefix
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

var (
	errMappedPrefix = Errorf(EINVALID, "is an IPv4-mapped prefix shorter than /96")
	errZone         = Errorf(EINVALID, "has an IPv6 zone (%%name): zones are not allowed")
)
