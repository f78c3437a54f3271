// Package memstore is the embedded token.Store: everything in memory, safe for concurrent use,
// with the same semantics as the DynamoDB store. It backs `apitokens serve` and fast unit tests.
package memstore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

var _ token.Store = (*Store)(nil)

// Store keeps tokens in maps guarded by one RWMutex.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	tokens  map[string]*token.Token
	byOwner map[string][]string // sort keys of each owner's tokens, ascending
	byMaker map[string][]string // sort keys of the tokens each token created, ascending
	events  []*token.AuditEvent // audit events, ascending by time, then id (their sort keys' order)
	clients map[string]string   // owner + "\x00" + clientId -> id of the token holding it
	windows map[rateKey]*window // rate-limit windows
	quotas  map[string]*quota   // quota counters by token id (token.Store.LeaseQuota)
	usage   map[usageKey]*dayCounts
	claims  map[string]time.Time // expiry reminders claimed (token.Reminder.Key) -> when the claim expires
}

// quota is a token's quota counter, as the DynamoDB store's QUOTA# item.
type quota struct {
	remaining  int64
	refilledAt time.Time
	refill     *token.Refill
}

// newQuota returns a counter holding t's own quota.
func newQuota(t *token.Token) *quota {
	return &quota{remaining: *t.Remaining, refilledAt: t.RefilledAt, refill: copyRefill(t.Refill)}
}

func copyRefill(r *token.Refill) *token.Refill {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// usageKey names the usage counters of one token and UTC day.
type usageKey struct {
	id  string
	day int64 // the UTC day: days since the Unix epoch
}

func dayOf(at time.Time) int64 { return at.Unix() / 86400 }

type dayCounts struct {
	valid   int64
	refused map[string]int64
	expires time.Time // token.UsageExpiry: what DynamoDB's TTL does there, pruneUsage does here
}

type rateKey struct {
	id    string
	start int64 // unix nanoseconds
}

type window struct {
	count int64
	end   time.Time
}

// New returns an empty Store whose reads treat tokens as gone by the clock now (nil: time.Now).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:     now,
		tokens:  make(map[string]*token.Token),
		byOwner: make(map[string][]string),
		byMaker: make(map[string][]string),
		clients: make(map[string]string),
		windows: make(map[rateKey]*window),
		quotas:  make(map[string]*quota),
		usage:   make(map[usageKey]*dayCounts),
		claims:  make(map[string]time.Time),
	}
}

// CreateToken implements token.Store.
func (s *Store) CreateToken(_ context.Context, t *token.Token, ev *token.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[t.ID]; ok {
		return token.Errorf(token.ECONFLICT, "Token id already exists.")
	}
	if err := s.claimClient(t); err != nil {
		return err
	}
	stored := t.Clone()
	stored.ResetQuota = false // a write instruction, not part of the record
	s.tokens[t.ID] = stored
	if t.Remaining != nil {
		s.quotas[t.ID] = newQuota(t)
	}
	insertSorted(s.byOwner, t.Owner, t.SortKey())
	if t.CreatedBy != "" {
		insertSorted(s.byMaker, t.CreatedBy, t.SortKey())
	}
	s.addEvent(ev)
	return nil
}

func insertSorted(m map[string][]string, key, sortKey string) {
	keys := m[key]
	i, _ := slices.BinarySearch(keys, sortKey)
	m[key] = slices.Insert(keys, i, sortKey)
}

// event is a stored audit event with its sort key.
// compareEvents orders events as their sort keys (token.AuditEvent.SortKey) do, without
// building them.
func compareEvents(a *token.AuditEvent, at time.Time, id string) int {
	if c := a.At.Compare(at); c != 0 {
		return c
	}
	return strings.Compare(a.ID, id)
}

// addEvent keeps ev, which the caller hands over with its change and never touches again.
func (s *Store) addEvent(ev *token.AuditEvent) {
	if ev == nil {
		return
	}
	if n := len(s.events); n == 0 || compareEvents(s.events[n-1], ev.At, ev.ID) < 0 {
		s.events = append(s.events, ev) // the usual case: the newest event
		return
	}
	i, _ := slices.BinarySearchFunc(s.events, ev, func(x, e *token.AuditEvent) int { return compareEvents(x, e.At, e.ID) })
	s.events = slices.Insert(s.events, i, ev)
}

// ListAudit implements token.Store.
func (s *Store) ListAudit(_ context.Context, q token.AuditQuery) (token.AuditPage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.Limit < 1 {
		return token.AuditPage{}, token.Errorf(token.EINVALID, "limit: must be at least 1")
	}
	now := s.now()
	var page token.AuditPage
	for i := len(s.events) - 1; i >= 0; i-- {
		e := s.events[i]
		switch {
		case q.After != "" && e.SortKey() >= q.After, !q.Until.IsZero() && !e.At.Before(q.Until):
			continue
		case !q.Since.IsZero() && e.At.Before(q.Since):
			return page, nil
		case !now.Before(e.ExpiresAt), q.Owner != "" && e.TargetOwner != q.Owner, q.TokenID != "" && e.TargetID != q.TokenID:
			continue
		}
		if len(page.Events) == q.Limit {
			page.Next = page.Events[q.Limit-1].SortKey()
			return page, nil
		}
		c := *e
		c.Changes = slices.Clone(e.Changes)
		if e.Report != nil {
			r := *e.Report
			c.Report = &r
		}
		page.Events = append(page.Events, &c)
	}
	return page, nil
}

// FindToken implements token.Store.
func (s *Store) FindToken(_ context.Context, id string) (*token.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[id]
	if !ok || t.Gone(s.now()) {
		return nil, token.NotFound()
	}
	return t.Clone(), nil
}

// FindTokens implements token.Store.
func (s *Store) FindTokens(_ context.Context, ids []string) (map[string]*token.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	out := make(map[string]*token.Token, len(ids))
	for _, id := range ids {
		if t, ok := s.tokens[id]; ok && !t.Gone(now) {
			out[id] = t.Clone()
		}
	}
	return out, nil
}

// ListTokens implements token.Store.
func (s *Store) ListTokens(_ context.Context, q token.ListQuery) (token.TokenPage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if q.Limit < 1 {
		return token.TokenPage{}, token.Errorf(token.EINVALID, "limit: must be at least 1")
	}
	now := s.now()
	keys := s.byOwner[q.Owner]
	if q.CreatedBy != "" {
		keys = s.byMaker[q.CreatedBy]
	}
	end := len(keys)
	if q.After != "" {
		end, _ = slices.BinarySearch(keys, q.After)
	}
	var page token.TokenPage
	for i := end - 1; i >= 0; i-- {
		_, id, _ := strings.Cut(keys[i], "#")
		t := s.tokens[id]
		if t.Gone(now) || !q.Status.Matches(t, now) || q.Owner != "" && t.Owner != q.Owner {
			continue
		}
		if len(page.Tokens) == q.Limit {
			page.Next = page.Tokens[q.Limit-1].SortKey()
			break
		}
		page.Tokens = append(page.Tokens, t.Clone())
	}
	return page, nil
}

// UpdateToken implements token.Store.
func (s *Store) UpdateToken(_ context.Context, t *token.Token, ev *token.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.tokens[t.ID]
	if !ok || old.Owner != t.Owner || old.Gone(s.now()) {
		return token.NotFound()
	}
	if old.Version != t.Version {
		return token.Errorf(token.ECONFLICT, "Token was changed concurrently; read it again and retry.")
	}
	if t.ClientID != "" {
		if t.RevokedAt.IsZero() {
			if err := s.claimClient(t); err != nil {
				return err
			}
		} else if key := clientKey(t); s.clients[key] == t.ID {
			delete(s.clients, key)
		}
	}
	n := t.Clone()
	n.Version++
	n.CreatedAt, n.Env, n.Hint, n.ClientID, n.CreatedBy = old.CreatedAt, old.Env, old.Hint, old.ClientID, old.CreatedBy
	n.LastUsedAt, n.UsageCount = old.LastUsedAt, old.UsageCount
	if !t.ResetQuota {
		n.Remaining, n.RefilledAt = nil, old.RefilledAt
		if old.Remaining != nil {
			r := *old.Remaining
			n.Remaining = &r
		}
	}
	switch {
	case t.ResetQuota && t.Remaining != nil:
		s.quotas[t.ID] = newQuota(t)
	case t.ResetQuota:
		delete(s.quotas, t.ID)
	case t.Remaining != nil && old.Remaining != nil:
		c, ok := s.quotas[t.ID]
		if !ok {
			c = newQuota(t)
			s.quotas[t.ID] = c
		}
		c.refill = copyRefill(t.Refill)
	}
	n.ResetQuota = false
	s.tokens[t.ID] = n
	t.Version = n.Version
	s.addEvent(ev)
	return nil
}

// RecordUse implements token.Store, as the DynamoDB store does: the day's counters whatever the
// token's state, the token's usage fields only for valid uses of a token it holds.
func (s *Store) RecordUse(_ context.Context, id string, u token.Usage) error {
	if err := u.Check(); err != nil {
		return err
	}
	if u.IsEmpty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := usageKey{id: id, day: dayOf(u.At)}
	c, ok := s.usage[key]
	if !ok {
		if len(s.usage) >= maxUsageItems {
			s.pruneUsage()
		}
		c = &dayCounts{refused: make(map[string]int64), expires: token.UsageExpiry(u.At)}
		s.usage[key] = c
	}
	c.valid += u.Valid
	for code, n := range u.Refused {
		if n > 0 {
			c.refused[code] += n
		}
	}
	if u.Valid == 0 {
		return nil
	}
	t, ok := s.tokens[id]
	if !ok {
		return token.NotFound()
	}
	t.LastUsedAt = u.At
	t.UsageCount += u.Valid
	return nil
}

// maxUsageItems is how many token-days of usage counters are kept before expired ones are
// dropped.
const maxUsageItems = 100000

func (s *Store) pruneUsage() {
	now := s.now()
	for k, c := range s.usage {
		if !now.Before(c.expires) {
			delete(s.usage, k)
		}
	}
}

// UsageDays implements token.Store.
func (s *Store) UsageDays(_ context.Context, id string, last time.Time, days int) ([]token.DayUsage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	out := make([]token.DayUsage, 0, days)
	for _, day := range token.UsageDays(last, days) {
		d := token.DayUsage{Day: day, Refused: map[string]int64{}}
		if c, ok := s.usage[usageKey{id: id, day: dayOf(day)}]; ok && now.Before(c.expires) {
			d.Valid = c.valid
			maps.Copy(d.Refused, c.refused)
		}
		out = append(out, d)
	}
	return out, nil
}

// WindowCounts implements token.Store.
func (s *Store) WindowCounts(_ context.Context, windows []token.RateWindow) ([]int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	out := make([]int64, len(windows))
	for i, w := range windows {
		if win, ok := s.windows[rateKey{id: w.TokenID, start: w.Start.UnixNano()}]; ok && now.Before(win.end) {
			out[i] = win.count
		}
	}
	return out, nil
}

// CountRequest implements token.Store.
func (s *Store) CountRequest(_ context.Context, id string, start time.Time, w time.Duration, limit int64) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	win := s.window(id, start, w)
	if win.count >= limit {
		return win.count, false, nil
	}
	win.count++
	return win.count, true, nil
}

// window returns the rate-limit window of token id that starts at start and lasts w, making it
// (and dropping ended ones when there are maxWindows) if there is none. s.mu must be held.
func (s *Store) window(id string, start time.Time, w time.Duration) *window {
	key := rateKey{id: id, start: start.UnixNano()}
	win, ok := s.windows[key]
	if !ok {
		if len(s.windows) >= maxWindows {
			s.pruneWindows()
		}
		win = &window{end: start.Add(w)}
		s.windows[key] = win
	}
	return win
}

// maxWindows bounds the rate-limit windows kept before ended ones are dropped.
const maxWindows = 10000

func (s *Store) pruneWindows() {
	now := s.now()
	for k, w := range s.windows {
		if !now.Before(w.end) {
			delete(s.windows, k)
		}
	}
}

// LeaseRate implements token.Store.
func (s *Store) LeaseRate(_ context.Context, id string, start time.Time, w time.Duration, k int64) (int64, error) {
	if k < 1 {
		return 0, token.Errorf(token.EINVALID, "lease of %d requests", k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	win := s.window(id, start, w)
	win.count += k
	return win.count, nil
}

// LeaseQuota implements token.Store, with the DynamoDB store's conditions.
func (s *Store) LeaseQuota(_ context.Context, id string, refill *token.Refill, refilledAt, now time.Time, k int64) (token.QuotaLease, error) {
	if k < 1 {
		return token.QuotaLease{}, token.Errorf(token.EINVALID, "lease of %d uses", k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.quotas[id]
	if !ok {
		t, ok := s.tokens[id]
		if !ok || t.Gone(s.now()) {
			return token.QuotaLease{}, token.NotFound()
		}
		if t.Remaining == nil {
			return token.QuotaLease{Unlimited: true}, nil
		}
		c = newQuota(t)
		s.quotas[id] = c
	}
	// As the DynamoDB store's condition: the counter's refill is the one the caller read, and its
	// period started at least an interval before the boundary due.
	if refill != nil && c.refill != nil && *c.refill == *refill {
		due := token.LatestRefill(refilledAt, refill.Interval, now)
		if due.After(refilledAt) && !c.refilledAt.After(due.Add(-refill.Interval)) {
			c.remaining, c.refilledAt = refill.Amount, due
		}
	}
	n := max(min(k, c.remaining), 0)
	c.remaining -= n
	return token.QuotaLease{Granted: n, Remaining: c.remaining, Period: c.refilledAt}, nil
}

// ReturnQuota implements token.Store.
func (s *Store) ReturnQuota(_ context.Context, id string, period time.Time, n int64) error {
	if n < 1 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.quotas[id]; ok && c.refilledAt.Equal(period) {
		c.remaining += n
	}
	return nil
}

// QuotaCounters implements token.Store.
func (s *Store) QuotaCounters(_ context.Context, ids []string) (map[string]token.QuotaCounter, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]token.QuotaCounter)
	for _, id := range ids {
		if c, ok := s.quotas[id]; ok {
			out[id] = token.QuotaCounter{Remaining: c.remaining, RefilledAt: c.refilledAt}
		}
	}
	return out, nil
}

// claimClient records that t holds its clientId, unless another live token holds it.
func (s *Store) claimClient(t *token.Token) error {
	if t.ClientID == "" {
		return nil
	}
	key := clientKey(t)
	if holder, ok := s.tokens[s.clients[key]]; ok && holder.ID != t.ID && holder.Live(s.now()) {
		return token.Errorf(token.ECONFLICT, "A live token for clientId %q already exists.", t.ClientID)
	}
	s.clients[key] = t.ID
	return nil
}

func clientKey(t *token.Token) string { return t.Owner + "\x00" + t.ClientID }

// EndGrace implements token.Store.
func (s *Store) EndGrace(_ context.Context, id string, version int64, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.tokens[id]
	if !ok || old.Gone(s.now()) || !old.PrevUntilFirstUse || !now.Before(old.PrevSecretUntil) ||
		old.Version != version {
		return false, nil
	}
	n := old.Clone()
	n.PrevSecretUntil, n.PrevUntilFirstUse, n.UpdatedAt = now, false, now
	n.Version++
	s.tokens[id] = n
	return true, nil
}

// ExpiringTokens implements token.Store. Like the DynamoDB index, it holds the tokens with an
// expiry that are not revoked; it walks all of them (the memory store has no index to keep).
func (s *Store) ExpiringTokens(_ context.Context, from, to time.Time) ([]*token.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	var out []*token.Token
	for _, t := range s.tokens {
		if t.ExpiresAt.IsZero() || !t.RevokedAt.IsZero() || t.Gone(now) || t.ExpiresAt.Before(from) || !t.ExpiresAt.Before(to) {
			continue
		}
		out = append(out, t.Clone())
	}
	slices.SortFunc(out, func(a, b *token.Token) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// maxClaims bounds the reminder claims kept before expired ones are dropped.
const maxClaims = 100000

// ClaimReminder implements token.Store.
func (s *Store) ClaimReminder(_ context.Context, r token.Reminder) (bool, error) {
	return s.claim(r.Key(), r.ClaimExpiry()), nil
}

// ClaimQuotaEvent implements token.Store: a claim of the event's id, kept as long as the DynamoDB
// store keeps its item.
func (s *Store) ClaimQuotaEvent(_ context.Context, e token.Event) (bool, error) {
	return s.claim("quota event "+e.EventID, s.now().Add(token.UsageRetention)), nil
}

// claim records key until until, unless a claim of key that has not expired exists; it reports
// whether it recorded it.
func (s *Store) claim(key string, until time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if until, ok := s.claims[key]; ok && now.Before(until) {
		return false
	}
	if len(s.claims) >= maxClaims {
		for k, until := range s.claims {
			if !now.Before(until) {
				delete(s.claims, k)
			}
		}
	}
	s.claims[key] = until
	return true
}

// ReleaseReminder implements token.Store.
func (s *Store) ReleaseReminder(_ context.Context, r token.Reminder) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, r.Key())
	return nil
}
