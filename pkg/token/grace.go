package token

import (
	"context"
	"time"
)

// Rotation that waits for the new secret (RotateUntilFirstUse) is a flag on the token,
// PrevUntilFirstUse, beside the ordinary grace's deadline PrevSecretUntil, which holds the
// maximum. Secrets keep being judged as before (Judge), so every reader that can judge a rotated
// token can judge this one, from any cache; a reader that sees the current secret used while the
// flag is set (Verdict.EndsGrace) ends the grace with one conditional write, EndGrace. Another
// design, marking the new secret's first use in the usage counters and having readers compare it
// with the rotation, would cost nothing extra per rotation but put a usage read on every
// decision about the old secret; the flag costs one write per rotation and nothing per decision.
//
// The write's condition (the flag still set, the grace not over, the version the reader judged,
// the token not gone) makes it happen once however many readers race to it, and keeps a late
// write from touching a later rotation (a rotation increments the version). It increments the
// version too, so an update that read the token before it (and would write the old deadline
// back) conflicts and retries. A reader holding a record older than the last change (a cached
// one) does not end the grace; its next read of the record does, at the next use of the new
// secret.
//
// The ending writes no audit event: its writers are the data plane (POST /verify and the
// authorizers), whose IAM roles may update a token's grace attributes but not put audit items,
// since IAM cannot hold a PutItem to "only new items" and such a role could overwrite the trail.
// The rotation's own event records the maximum; the token's updatedAt records the ending.

// EndGrace ends the grace of t's previous secret at now, because t's current secret was just
// used (Verdict.EndsGrace). It reports whether this call ended it: false when the store's token
// no longer waits (another reader ended it, the maximum passed, a later rotation, a change or a
// revoke since t was read). On success, t is updated as stored. The error is non-nil only when
// the store failed.
func EndGrace(ctx context.Context, store Store, t *Token, now time.Time) (bool, error) {
	ended, err := store.EndGrace(ctx, t.ID, t.Version, now)
	if err != nil || !ended {
		return false, err
	}
	t.PrevSecretUntil, t.PrevUntilFirstUse, t.UpdatedAt = now, false, now
	t.Version++
	return true, nil
}
