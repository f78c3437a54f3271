package token

import (
	"context"
	"strconv"
	"time"
)

// Store persists tokens. Implementations: pkg/memstore (embedded) and pkg/dynamo (DynamoDB).
// Every implementation passes the contract suite in pkg/token/storetest: same cases, same answers.
//
// A store treats a token whose PurgeAt has passed (Token.Gone) as absent on every read, whether
// or not it has deleted it yet, and so needs a clock; Service keeps PurgeAt up to date.
type Store interface {
	// CreateToken stores t, and ev when it is not nil, in one atomic write: both or neither. The
	// store may keep ev itself: the caller does not change it afterwards.
	// Returns ECONFLICT if a token with t.ID exists, or if t.ClientID is set and another live
	// token (Token.Live) of t.Owner holds the same ClientID.
	CreateToken(ctx context.Context, t *Token, ev *AuditEvent) error

	// FindToken returns the token with the given id. Returns ENOTFOUND if there is none or it is
	// gone. The read is strongly consistent: a revoke is seen by the next FindToken.
	FindToken(ctx context.Context, id string) (*Token, error)

	// FindTokens returns the tokens with the given ids, by id: an id that is absent or gone is
	// missing from the map, and a repeated id is read once. The reads are strongly consistent, as
	// FindToken's. It serves batches (leak reports): on DynamoDB, one BatchGetItem per 100
	// distinct ids, plus retries of the keys DynamoDB leaves unprocessed.
	FindTokens(ctx context.Context, ids []string) (map[string]*Token, error)

	// ListTokens returns up to q.Limit tokens of q.Owner matching q.Status, newest first, starting
	// after the sort key q.After, and the sort key to continue from ("" when the list is done);
	// with q.CreatedBy, the tokens that token created (of q.Owner only, when it is set). Gone
	// tokens are never returned.
	ListTokens(ctx context.Context, q ListQuery) (TokenPage, error)

	// UpdateToken writes the mutable fields of t (name, permissions, secrets, expiry, enabled,
	// revokedAt, purgeAt, meta, limits, updatedAt) if the stored token has t.Owner and t.Version,
	// and then increments t.Version. Usage fields are left as stored, and so are the quota
	// counters (Remaining, RefilledAt, on the token and its counter) unless t.ResetQuota is set,
	// which sets both anew (or removes them with the quota). Otherwise a token with a quota gets
	// its counter's refill settings written, and a counter from t.Remaining and t.RefilledAt if it
	// has none yet, in the same atomic write.
	// When t is revoked, its clientId is released in the same atomic write; ev, when it is not
	// nil, is written in it too: both or neither. Returns ENOTFOUND if the token is absent or
	// gone, ECONFLICT if the version differs or the clientId is held by another live token.
	UpdateToken(ctx context.Context, t *Token, ev *AuditEvent) error

	// EndGrace ends the grace of token id's previous secret at now, because the current secret of
	// the token's version version was used: it sets PrevSecretUntil and UpdatedAt to now, clears
	// PrevUntilFirstUse and increments the version, in one conditional write, only if the stored
	// token is not gone, has PrevUntilFirstUse, a PrevSecretUntil after now and the
	// version version. It reports whether it wrote: of concurrent calls for one rotation exactly
	// one does, and a call made for an earlier version (a later rotation, or any change, since)
	// never writes. Not writing is not an error. The condition names the version, not the secret
	// hash, so that the authorizer's IAM policy never lets it touch a hash.
	EndGrace(ctx context.Context, id string, version int64, now time.Time) (bool, error)

	// ListAudit returns up to q.Limit audit events matching q, newest first, and the sort key to
	// continue from ("" at the end). Events past their ExpiresAt are never returned.
	ListAudit(ctx context.Context, q AuditQuery) (AuditPage, error)

	// CountRequest counts one request in the rate-limit window of key id (a token id, or the key
	// of another counter, such as revoke-ip:<address> for POST /revoke) that starts at start
	// and lasts window, unless the window already holds limit requests. The window expires
	// natively (DynamoDB TTL) after it ends. Returns the count after the call and whether the
	// request was admitted; concurrent calls admit exactly limit requests per window.
	CountRequest(ctx context.Context, id string, start time.Time, window time.Duration, limit int64) (int64, bool, error)

	// LeaseRate adds k (>= 1) requests to the count of the rate-limit window of token id that
	// starts at start and lasts window, creating the window's item, which expires natively
	// (DynamoDB TTL) after the window ends, and returns the count after the addition. It does not
	// judge the limit: the additions are serialised, so the caller whose addition took the count
	// from c-k to c owns the requests numbered c-k+1..c, and admits those within the limit
	// (Limiter): concurrent callers never admit more than the limit in all. One write.
	LeaseRate(ctx context.Context, id string, start time.Time, window time.Duration, k int64) (int64, error)

	// LeaseQuota takes up to k (>= 1) of the remaining uses of token id's quota, in one atomic
	// conditional write on the quota's counter (an item of its own, so the token's item never
	// takes the writes), never read-modify-write: k when at least k remain, otherwise what
	// remains (a second write), 0 when none do. refill and refilledAt are the caller's view of the
	// quota's refill and of the start of its current period (from its token, perhaps cached, or
	// its last lease). When a refill boundary (every refill.Interval from refilledAt) has passed,
	// the first caller of the period resets the counter to the refill amount and takes its uses
	// from it, but only while the counter's refill equals refill (amount and interval) and its
	// period started at least an interval before that boundary: a stale caller can neither apply
	// a refill that was removed or changed meanwhile, nor refill early after the quota was reset.
	// A token whose counter does not exist yet (made before counters had items of their own, or
	// never leased) gets one, conditionally, from the token's own remaining and refilledAt, read
	// once. Returns ENOTFOUND if the token is absent or gone and has no counter; a lease with
	// Unlimited set if the token has no quota any more.
	LeaseQuota(ctx context.Context, id string, refill *Refill, refilledAt, now time.Time, k int64) (QuotaLease, error)

	// ReturnQuota gives n unused uses of a lease back to token id's quota counter, only while the
	// counter is still in the period period (QuotaLease.Period): uses never return into a later
	// period (a refill, or a reset), so a return never lets more than the quota be admitted. Not
	// returning (the period has passed, the counter is gone) is not an error.
	ReturnQuota(ctx context.Context, id string, period time.Time, n int64) error

	// QuotaCounters returns the counters of the quotas of tokens ids, by id, for reads that show
	// a quota (the live Remaining and RefilledAt); a token whose counter does not exist yet is
	// missing from the map (its own Remaining and RefilledAt are live). Uses leased to instances
	// and not returned count as spent. On DynamoDB one BatchGetItem per 100 ids.
	QuotaCounters(ctx context.Context, ids []string) (map[string]QuotaCounter, error)

	// RecordUse writes one usage write u of token id: when u.Valid > 0, it sets lastUsedAt to u.At
	// and adds u.Valid to usageCount in one atomic write, without changing the version
	// (concurrent writers race for lastUsedAt: the last write wins, so it may step back by the
	// skew between them; the count is exact); and it adds u.Valid and u.Refused to the counters
	// of u.At's UTC day (one item per token and day, expiring UsageRetention after the day ends;
	// concurrent additions are exact). A write of refusals only (u.Valid == 0) leaves lastUsedAt
	// and usageCount alone; an empty u writes nothing.
	// The day's counters are added without looking at the token (on DynamoDB in parallel with its
	// update, so that the counters cost no round trip): callers pass only the id of a token they
	// have just read, so that unknown ids never create counters, and a token purged meanwhile
	// leaves counters that no read shows and that expire with their day.
	// Returns ENOTFOUND if u.Valid > 0 and the token is absent (lastUsedAt and usageCount are then
	// unchanged); EINVALID if u fails Usage.Check (nothing is written).
	RecordUse(ctx context.Context, id string, u Usage) error

	// UsageDays returns the usage counters of token id for days UTC days, oldest first, ending
	// with the day that holds last: exactly days entries, zero for a day without a write. It
	// reads the counters only (on DynamoDB one BatchGetItem per 100 days), never the token.
	UsageDays(ctx context.Context, id string, last time.Time, days int) ([]DayUsage, error)

	// WindowCounts returns the count of requests of each rate-limit window (CountRequest) in
	// windows, in order: 0 for a window without requests, or one that has expired (on DynamoDB
	// one BatchGetItem per 100 windows).
	WindowCounts(ctx context.Context, windows []RateWindow) ([]int64, error)

	// ExpiringTokens returns the tokens that are not revoked and not gone whose ExpiresAt lies in
	// [from, to), soonest first, read from an index by expiry day: on DynamoDB one Query (and its
	// pages) per UTC day the range touches, never a Scan. It fills only the fields a reminder
	// needs (ID, Owner, Name, Env, ExpiresAt, Enabled, RevokedAt, PurgeAt); the others, secrets
	// above all, may be zero. The index is eventually consistent: a token written a moment ago
	// may be missing, or show its previous expiry.
	ExpiringTokens(ctx context.Context, from, to time.Time) ([]*Token, error)

	// ClaimQuotaEvent records quota event e (token.quota_low or token.quota_exhausted, EventID
	// naming the token, the type and the quota period), in one conditional write, unless it is
	// recorded already: true for exactly one of concurrent callers, so each is published once.
	// On DynamoDB the record is an item QUOTAEVENT#<event id> holding the event's detail, which
	// the table's stream hands to the function that publishes it; it expires after 400 days.
	ClaimQuotaEvent(ctx context.Context, e Event) (bool, error)

	// ClaimReminder records that reminder r is being sent, in one conditional write, unless it is
	// recorded already: of concurrent claims of one reminder exactly one returns true. The record
	// expires natively (DynamoDB TTL) a day after r.ExpiresAt, when no run can find r due again.
	ClaimReminder(ctx context.Context, r Reminder) (bool, error)

	// ReleaseReminder deletes the record of reminder r, so that a later run claims and sends it
	// again (its publication failed). Releasing a reminder that is not claimed is not an error.
	ReleaseReminder(ctx context.Context, r Reminder) error
}

// QuotaLease is what LeaseQuota took.
type QuotaLease struct {
	Granted   int64     // uses taken: 0 to k
	Remaining int64     // the counter after the lease
	Period    time.Time // start of the quota period the uses belong to: the counter's refilledAt
	Unlimited bool      // the token has no quota (removed since the caller read it): nothing taken
}

// QuotaCounter is the live state of a token's quota counter.
type QuotaCounter struct {
	Remaining  int64
	RefilledAt time.Time
}

// Reminder is one expiry reminder: token TokenID expires at ExpiresAt, in DaysBefore days.
// A changed expiry is another reminder, so a token whose expiry moves is reminded again.
type Reminder struct {
	TokenID    string
	DaysBefore int
	ExpiresAt  time.Time
}

// Key is the reminder's identity, <id>#<days>#<expiresAt, epoch seconds>: the key of its claim
// and, in ReminderEventID, of its event.
func (r Reminder) Key() string {
	return r.TokenID + "#" + strconv.Itoa(r.DaysBefore) + "#" + strconv.FormatInt(r.ExpiresAt.Unix(), 10)
}

// ClaimExpiry is when the claim of r may be deleted: a day after the expiry, when the token is
// expired and no run finds r due any more.
func (r Reminder) ClaimExpiry() time.Time { return r.ExpiresAt.Add(Day) }

// ListQuery selects a page of one owner's tokens.
type ListQuery struct {
	Owner     string // with CreatedBy: "" for every owner
	CreatedBy string // "" for an owner's tokens; a token id for the tokens it created
	Status    Status // "" for every status
	Limit     int    // 1-100
	After     string // sort key of the last token of the previous page; "" for the first page
}

// TokenPage is one page of a list.
type TokenPage struct {
	Tokens []*Token
	Next   string // sort key to pass as ListQuery.After for the next page; "" at the end
}

// Matches reports whether t belongs in a list filtered by status s ("" matches every status).
func (s Status) Matches(t *Token, now time.Time) bool {
	return s == "" || t.Status(now) == s
}
