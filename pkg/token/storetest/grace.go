package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// graceFixture is a token of alice rotated with grace untilFirstUse (maximum one hour) through a
// Service on a new store: the service, the store, the clock and both plaintexts.
type graceFixture struct {
	svc      *token.Service
	store    token.Store
	clock    *Clock
	id       string
	old, new string
}

var graceAdmin = token.Principal{TokenID: "", Owner: "alice", Permissions: []string{token.PermAdmin}}

func newGraceFixture(t *testing.T, newStore NewStore) *graceFixture {
	t.Helper()
	clock := NewClock()
	s := newStore(t, clock.Now)
	svc, err := token.NewService(s, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok, old, err := svc.Create(ctx, graceAdmin, token.CreateInput{Name: "rotated"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	rotated, fresh, err := svc.RotateUntilFirstUse(ctx, graceAdmin, tok.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !rotated.PrevUntilFirstUse || !rotated.PrevSecretUntil.Equal(clock.Now().Add(time.Hour)) {
		t.Fatalf("rotated: flag %v until %v; want true, now + 1 h", rotated.PrevUntilFirstUse, rotated.PrevSecretUntil)
	}
	return &graceFixture{svc: svc, store: s, clock: clock, id: tok.ID, old: old, new: fresh}
}

func (f *graceFixture) verify(t *testing.T, plaintext string) string {
	t.Helper()
	v, err := f.svc.Verify(context.Background(), plaintext)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return v.Code
}

// runGrace: a rotation with grace untilFirstUse keeps the old secret until the first use of the
// new one, or its maximum, whichever comes first; EndGrace writes once and never undoes a later
// rotation.
func runGrace(t *testing.T, newStore NewStore) {
	t.Run("OldWorksUntilNewIsUsed", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		for range 2 {
			if got := f.verify(t, f.old); got != token.CodeValid {
				t.Fatalf("old secret before the new one's first use: %s", got)
			}
		}
		// The attacker's path: uses of the OLD secret never end the grace.
		if stored := MustFind(t, f.store, f.id); !stored.PrevUntilFirstUse {
			t.Fatal("a use of the old secret ended the grace")
		}
		f.clock.Advance(time.Minute)
		if got := f.verify(t, f.new); got != token.CodeValid {
			t.Fatalf("new secret: %s", got)
		}
		if got := f.verify(t, f.old); got != token.CodeNotFound {
			t.Fatalf("old secret after the new one's first use: %s, want NOT_FOUND", got)
		}
		stored := MustFind(t, f.store, f.id)
		if stored.PrevUntilFirstUse || !stored.PrevSecretUntil.Equal(f.clock.Now()) || !stored.UpdatedAt.Equal(f.clock.Now()) {
			t.Fatalf("stored: flag %v until %v updated %v; want false, %v, %v", stored.PrevUntilFirstUse, stored.PrevSecretUntil, stored.UpdatedAt, f.clock.Now(), f.clock.Now())
		}
		if got := f.verify(t, f.new); got != token.CodeValid {
			t.Fatalf("new secret, second use: %s", got)
		}
	})

	t.Run("ConcurrentFirstUsesWriteOnce", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		stored := MustFind(t, f.store, f.id)
		var wrote atomic.Int64
		parallel(8, func(i int) {
			ok, err := f.store.EndGrace(context.Background(), f.id, stored.Version, f.clock.Now())
			if err != nil {
				t.Errorf("EndGrace %d: %v", i, err)
			}
			if ok {
				wrote.Add(1)
			}
		})
		if wrote.Load() != 1 {
			t.Fatalf("%d EndGrace calls wrote, want 1", wrote.Load())
		}
		if after := MustFind(t, f.store, f.id); after.Version != stored.Version+1 {
			t.Fatalf("version %d, want %d", after.Version, stored.Version+1)
		}
	})

	t.Run("MaximumPasses", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		f.clock.Advance(time.Hour)
		if got := f.verify(t, f.old); got != token.CodeNotFound {
			t.Fatalf("old secret after the maximum: %s", got)
		}
		if got := f.verify(t, f.new); got != token.CodeValid {
			t.Fatalf("new secret: %s", got)
		}
		if stored := MustFind(t, f.store, f.id); !stored.PrevUntilFirstUse {
			t.Fatal("a grace that had run out was ended again")
		}
	})

	t.Run("LateEndGraceKeepsLaterRotation", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		first := MustFind(t, f.store, f.id)
		f.clock.Advance(time.Second)
		second, newest, err := f.svc.RotateUntilFirstUse(context.Background(), graceAdmin, f.id, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		// A reader that judged the first rotation's secret ends the grace late.
		ok, err := f.store.EndGrace(context.Background(), f.id, first.Version, f.clock.Now())
		if err != nil || ok {
			t.Fatalf("late EndGrace: %v, %v; want false, nil", ok, err)
		}
		stored := MustFind(t, f.store, f.id)
		if !stored.PrevUntilFirstUse || !stored.PrevSecretUntil.Equal(second.PrevSecretUntil) {
			t.Fatalf("the later rotation was changed: flag %v until %v", stored.PrevUntilFirstUse, stored.PrevSecretUntil)
		}
		if got := f.verify(t, f.new); got != token.CodeValid {
			t.Fatalf("the second rotation's previous secret: %s", got)
		}
		if got := f.verify(t, newest); got != token.CodeValid {
			t.Fatalf("newest secret: %s", got)
		}
		if got := f.verify(t, f.new); got != token.CodeNotFound {
			t.Fatalf("previous secret after the newest one's first use: %s", got)
		}
	})

	t.Run("UpdateAfterEndGraceConflicts", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		stale := MustFind(t, f.store, f.id)
		if got := f.verify(t, f.new); got != token.CodeValid {
			t.Fatalf("new secret: %s", got)
		}
		stale.Name = "renamed"
		AssertCode(t, f.store.UpdateToken(context.Background(), stale, nil), token.ECONFLICT)
		if got := f.verify(t, f.old); got != token.CodeNotFound {
			t.Fatalf("old secret: %s", got)
		}
	})

	t.Run("BadMaximum", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		for _, max := range []time.Duration{0, -time.Second, token.MaxGracePeriod + time.Second} {
			_, _, err := f.svc.RotateUntilFirstUse(context.Background(), graceAdmin, f.id, max)
			AssertCode(t, err, token.EINVALID)
		}
	})

	t.Run("AnotherOwnerCannotRotate", func(t *testing.T) {
		f := newGraceFixture(t, newStore)
		bob := token.Principal{TokenID: "bob-token", Owner: "bob", Permissions: []string{token.PermManage}}
		_, _, err := f.svc.RotateUntilFirstUse(context.Background(), bob, f.id, time.Hour)
		AssertCode(t, err, token.ENOTFOUND)
		if got := f.verify(t, f.old); got != token.CodeValid {
			t.Fatalf("old secret after a refused rotation: %s", got)
		}
	})
}
