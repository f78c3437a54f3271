package authorizer

import (
	"context"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Outcomes of authorizations, for the usage counters (token.Usage): valid uses ride on
// recordUse, refusals of tokens the store holds are buffered here per token. They go out with the
// token's next usage write (recordUse takes them), or on their own at most once per
// UsageInterval per token, so a token refused again and again costs about no writes, and the
// counters never cost a request of their own: a refusal's write is the usage write.
//
// Only the refusals of a token whose secret matched are counted (token.RefusalCodes); unknown
// ids, wrong secrets and malformed tokens are not, so junk tokens never create counters.

// countRefusal counts a refusal with code of t (nil: no token matched, nothing is counted) and
// writes the token's refusals when they are due. A failed write is logged and its counts kept
// for the next one: usage bookkeeping never changes a decision.
func (a *Authorizer) countRefusal(ctx context.Context, t *token.Token, code string, now time.Time) {
	if t == nil || !token.IsRefusalCode(code) {
		return
	}
	counts := a.refusals.Add(t.ID, code, now)
	if counts == nil {
		return
	}
	if err := a.store.RecordUse(ctx, t.ID, token.Usage{At: now, Refused: counts}); err != nil {
		a.cfg.Logger.WarnContext(ctx, "usage write failed; retrying with the next use", "tokenId", t.ID, "refused", counts, "error", err)
		a.refusals.Restore(t.ID, counts)
	}
}

// usageOf is the usage write of n valid uses of token id at now, carrying the refusals buffered
// since the token's last write. Restore them when the write fails.
func (a *Authorizer) usageOf(id string, n int64, now time.Time) token.Usage {
	return token.Usage{At: now, Valid: n, Refused: a.refusals.Take(id, now)}
}
