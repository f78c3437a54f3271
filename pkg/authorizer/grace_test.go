package authorizer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// graceStore counts the EndGrace calls that wrote.
type graceStore struct {
	token.Store
	ended atomic.Int32
}

func (s *graceStore) EndGrace(ctx context.Context, id string, version int64, now time.Time) (bool, error) {
	ok, err := s.Store.EndGrace(ctx, id, version, now)
	if ok {
		s.ended.Add(1)
	}
	return ok, err
}

// TestGraceUntilFirstUse: after a rotation with grace untilFirstUse, the instance that sees the
// new secret's first use refuses the old secret at once; another instance whose cache holds the
// record refuses it once its entry expires (the revocation bound); uses of the old secret never
// end the grace.
func TestGraceUntilFirstUse(t *testing.T) {
	ctx := context.Background()
	m := newMemTokens(t, 1)
	_, fresh, err := m.svc.RotateUntilFirstUse(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, m.ids[0], time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old := m.plains[0]
	store := &graceStore{Store: m.mem}
	const ttl = 10 * time.Second
	newInstance := func(cacheTTL time.Duration) *authorizer.Authorizer {
		return authorizer.New(store, authorizer.Config{CacheTTL: cacheTTL, UsageInterval: time.Minute, Now: m.clock.Now})
	}
	decide := func(a *authorizer.Authorizer, plain string) string {
		t.Helper()
		d, err := a.Authorize(ctx, authorizer.Request{Token: plain, Method: "GET", Route: "/files"})
		if err != nil {
			t.Fatal(err)
		}
		a.WaitForWrites()
		return d.Code
	}
	a, b := newInstance(ttl), newInstance(ttl)
	for range 3 { // the attacker's path: the old secret, again and again, on both instances
		for _, in := range []*authorizer.Authorizer{a, b} {
			if got := decide(in, old); got != token.CodeValid {
				t.Fatalf("old secret before the new one's first use: %s", got)
			}
		}
	}
	if n := store.ended.Load(); n != 0 {
		t.Fatalf("uses of the old secret ended the grace (%d writes)", n)
	}

	m.clock.Advance(time.Second)
	if got := decide(a, fresh); got != token.CodeValid {
		t.Fatalf("new secret: %s", got)
	}
	if n := store.ended.Load(); n != 1 {
		t.Fatalf("%d grace endings written, want 1", n)
	}
	if got := decide(a, old); got != token.CodeNotFound {
		t.Fatalf("instance A, old secret right after the new one's first use: %s, want NOT_FOUND", got)
	}
	if got := decide(a, fresh); got != token.CodeValid {
		t.Fatalf("instance A, new secret again: %s", got)
	}
	if n := store.ended.Load(); n != 1 {
		t.Fatalf("%d grace endings written after a second use, want 1", n)
	}

	// Instance B cached the record before the ending: that is the revocation bound.
	if got := decide(b, old); got != token.CodeValid {
		t.Fatalf("instance B within its cache TTL: %s (the bound is the TTL; this test pins it)", got)
	}
	m.clock.Advance(ttl)
	if got := decide(b, old); got != token.CodeNotFound {
		t.Fatalf("instance B after its cache TTL: %s, want NOT_FOUND", got)
	}
	if stored, err := m.mem.FindToken(ctx, m.ids[0]); err != nil || stored.PrevUntilFirstUse {
		t.Fatalf("stored token: %+v, %v; want the grace ended", stored, err)
	}
}

// TestGraceUntilFirstUseWaits: an instance without a cache (the management authorizer), and one
// on Lambda (BufferUses: the environment freezes once it answers), wait for the write, so the
// old secret is refused by the very next decision, here and everywhere that reads the record.
func TestGraceUntilFirstUseWaits(t *testing.T) {
	for name, cfg := range map[string]authorizer.Config{
		"no cache":    {UsageInterval: time.Minute},
		"buffer uses": {CacheTTL: 10 * time.Second, UsageInterval: time.Minute, BufferUses: true},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := newMemTokens(t, 1)
			_, fresh, err := m.svc.RotateUntilFirstUse(ctx, token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, m.ids[0], time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			store := &graceStore{Store: m.mem}
			cfg.Now = m.clock.Now
			a := authorizer.New(store, cfg)
			d, err := a.Authorize(ctx, authorizer.Request{Token: fresh, Method: "GET", Route: "/"})
			if err != nil || d.Code != token.CodeValid {
				t.Fatalf("new secret: %s, %v", d.Code, err)
			}
			if n := store.ended.Load(); n != 1 {
				t.Fatalf("the decision returned before its grace ending was written (%d writes)", n)
			}
			if d, err = a.Authorize(ctx, authorizer.Request{Token: m.plains[0], Method: "GET", Route: "/"}); err != nil || d.Code != token.CodeNotFound {
				t.Fatalf("old secret: %s, %v; want NOT_FOUND", d.Code, err)
			}
			a.WaitForWrites()
		})
	}
}
