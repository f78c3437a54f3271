package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// event returns an audit event of a change to tok at at.
func event(tok *token.Token, action string, at time.Time) *token.AuditEvent {
	return &token.AuditEvent{
		ID: token.NewID(), At: at, Action: action, ActorTokenID: "actor0000000000A", ActorOwner: tok.Owner,
		TargetID: tok.ID, TargetOwner: tok.Owner, SourceIP: "192.0.2.1", RequestID: "req-1",
		Changes:   []token.Change{{Field: "name", Old: "a", New: "b"}, {Field: "remaining", Old: nil, New: float64(5)}},
		ExpiresAt: at.Add(token.DefaultAuditRetention),
	}
}

// MustAudit lists every audit event matching q, following pages, newest first.
func MustAudit(tb testing.TB, s token.Store, q token.AuditQuery) []*token.AuditEvent {
	tb.Helper()
	if q.Limit == 0 {
		q.Limit = 7
	}
	var out []*token.AuditEvent
	for {
		page, err := s.ListAudit(context.Background(), q)
		if err != nil {
			tb.Fatalf("ListAudit: %v", err)
		}
		out = append(out, page.Events...)
		if page.Next == "" {
			return out
		}
		q.After = page.Next
	}
}

// runAudit: an audit event is written with its change or not at all, and listed by owner, token
// and time range, newest first, until its retention ends.
func runAudit(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("written with the change, or not at all", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.ClientID = "client-a"
		created := event(tok, token.ActionCreate, clock.Now())
		if err := s.CreateToken(ctx, tok, created); err != nil {
			t.Fatal(err)
		}
		// A create that fails (the id is taken; the clientId is held) writes no event.
		dup := *tok
		AssertCode(t, s.CreateToken(ctx, &dup, event(tok, token.ActionCreate, clock.Now())), token.ECONFLICT)
		other := NewToken("alice", clock.Now())
		other.ClientID = "client-a"
		AssertCode(t, s.CreateToken(ctx, other, event(other, token.ActionCreate, clock.Now())), token.ECONFLICT)

		clock.Advance(time.Second)
		stale := MustFind(t, s, tok.ID)
		fresh := MustFind(t, s, tok.ID)
		fresh.Name = "renamed"
		updated := event(fresh, token.ActionUpdate, clock.Now())
		updated.ActorTokenID, updated.ActorSubject = "", "auth0|64f1c0ffee" // a person signed in with OpenID Connect
		if err := s.UpdateToken(ctx, fresh, updated); err != nil {
			t.Fatal(err)
		}
		// An update that fails (a stale version; another owner) writes no event.
		stale.Name = "lost"
		AssertCode(t, s.UpdateToken(ctx, stale, event(stale, token.ActionUpdate, clock.Now())), token.ECONFLICT)
		foreign := MustFind(t, s, tok.ID)
		foreign.Owner = "mallory"
		AssertCode(t, s.UpdateToken(ctx, foreign, event(foreign, token.ActionUpdate, clock.Now())), token.ENOTFOUND)

		clock.Advance(time.Second)
		revoked := MustFind(t, s, tok.ID)
		revoked.RevokedAt = clock.Now()
		revokedEv := event(revoked, token.ActionRevoke, clock.Now())
		revokedEv.Cascade = "root000000000000"
		if err := s.UpdateToken(ctx, revoked, revokedEv); err != nil {
			t.Fatal(err)
		}

		got := MustAudit(t, s, token.AuditQuery{Owner: "alice"})
		want := []*token.AuditEvent{revokedEv, updated, created}
		if len(got) != len(want) {
			t.Fatalf("%d events; want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			assertEvent(t, got[i], want[i])
		}
	})

	t.Run("queries", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		start := clock.Now()
		var all []*token.AuditEvent
		toks := map[string]*token.Token{}
		for i := range 30 {
			owner := []string{"alice", "bob"}[i%2]
			tok, ok := toks[owner+fmt.Sprint(i%4)]
			if !ok {
				tok = NewToken(owner, clock.Now())
				toks[owner+fmt.Sprint(i%4)] = tok
				ev := event(tok, token.ActionCreate, clock.Now())
				if err := s.CreateToken(ctx, tok, ev); err != nil {
					t.Fatal(err)
				}
				all = append(all, ev)
			} else {
				tok = MustFind(t, s, tok.ID)
				tok.Name = fmt.Sprint("name ", i)
				ev := event(tok, token.ActionUpdate, clock.Now())
				if err := s.UpdateToken(ctx, tok, ev); err != nil {
					t.Fatal(err)
				}
				all = append(all, ev)
			}
			clock.Advance(time.Minute)
		}
		slices.Reverse(all) // newest first
		match := func(f func(e *token.AuditEvent) bool) []string {
			var ids []string
			for _, e := range all {
				if f(e) {
					ids = append(ids, e.ID)
				}
			}
			return ids
		}
		ids := func(es []*token.AuditEvent) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		some := toks["bob1"].ID
		since, until := start.Add(5*time.Minute), start.Add(20*time.Minute)
		for name, tc := range map[string]struct {
			q    token.AuditQuery
			want []string
		}{
			"every owner":  {token.AuditQuery{}, match(func(*token.AuditEvent) bool { return true })},
			"one owner":    {token.AuditQuery{Owner: "bob"}, match(func(e *token.AuditEvent) bool { return e.TargetOwner == "bob" })},
			"one token":    {token.AuditQuery{Owner: "bob", TokenID: some}, match(func(e *token.AuditEvent) bool { return e.TargetID == some })},
			"token, every": {token.AuditQuery{TokenID: some}, match(func(e *token.AuditEvent) bool { return e.TargetID == some })},
			"time range": {token.AuditQuery{Owner: "alice", Since: since, Until: until}, match(func(e *token.AuditEvent) bool {
				return e.TargetOwner == "alice" && !e.At.Before(since) && e.At.Before(until)
			})},
			"another owner's token": {token.AuditQuery{Owner: "alice", TokenID: some}, nil},
		} {
			for _, limit := range []int{1, 4, 100} {
				tc.q.Limit = limit
				if got := ids(MustAudit(t, s, tc.q)); !slices.Equal(got, tc.want) {
					t.Errorf("%s, pages of %d: %v; want %v", name, limit, got, tc.want)
				}
			}
		}
		// Events past their retention are gone from every list, whether TTL removed them or not.
		clock.Advance(token.DefaultAuditRetention - 20*time.Minute - time.Nanosecond)
		if got := ids(MustAudit(t, s, token.AuditQuery{})); len(got) != 20 {
			t.Errorf("after the retention of the oldest 10: %d events; want 20", len(got))
		}
	})

	t.Run("concurrent updates: one event per update that succeeded", func(t *testing.T) {
		// 50 writers of one version: exactly one wins, and exactly one event is written.
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("carol", clock.Now())
		MustCreate(t, s, tok)
		base := MustFind(t, s, tok.ID)
		var mu sync.Mutex
		ok := 0
		parallel(50, func(i int) {
			c := base.Clone()
			c.Name = fmt.Sprint("writer ", i)
			if err := s.UpdateToken(ctx, c, event(c, token.ActionUpdate, clock.Now())); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if token.ErrorCode(err) != token.ECONFLICT {
				t.Errorf("UpdateToken: %v", err)
			}
		})
		if got := len(MustAudit(t, s, token.AuditQuery{Owner: "carol"})); ok != 1 || got != ok {
			t.Fatalf("%d updates succeeded and %d events were written; want 1 and 1", ok, got)
		}
	})
}

// runFamily: the tokens a token created are listed by it (ListQuery.CreatedBy), newest first,
// of one owner when asked, paginated; tokens created by no token are in no family.
func runFamily(t *testing.T, newStore NewStore) {
	clock := NewClock()
	s := newStore(t, clock.Now)
	parent := NewToken("alice", clock.Now())
	MustCreate(t, s, parent)
	var want, alices []string
	for i := range 9 {
		clock.Advance(time.Second)
		child := NewToken([]string{"alice", "bob", "alice"}[i%3], clock.Now())
		child.CreatedBy = parent.ID
		MustCreate(t, s, child)
		want = append([]string{child.ID}, want...)
		if child.Owner == "alice" {
			alices = append([]string{child.ID}, alices...)
		}
		if i == 4 {
			orphan := NewToken("alice", clock.Now())
			MustCreate(t, s, orphan)
		}
	}
	if got := MustFind(t, s, want[0]).CreatedBy; got != parent.ID {
		t.Fatalf("CreatedBy round trip: %q; want %q", got, parent.ID)
	}
	for _, limit := range []int{1, 2, 100} {
		if got := ListAll(t, s, token.ListQuery{CreatedBy: parent.ID, Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("children, pages of %d: %v; want %v", limit, got, want)
		}
		if got := ListAll(t, s, token.ListQuery{CreatedBy: parent.ID, Owner: "alice", Limit: limit}); !slices.Equal(got, alices) {
			t.Errorf("alice's children, pages of %d: %v; want %v", limit, got, alices)
		}
	}
	if got := ListAll(t, s, token.ListQuery{CreatedBy: want[0], Limit: 10}); len(got) != 0 {
		t.Errorf("a token with no children lists %v", got)
	}
}

func assertEvent(tb testing.TB, got, want *token.AuditEvent) {
	tb.Helper()
	if got.ID != want.ID || !got.At.Equal(want.At) || got.Action != want.Action || got.ActorTokenID != want.ActorTokenID ||
		got.ActorOwner != want.ActorOwner || got.ActorSubject != want.ActorSubject || got.TargetID != want.TargetID || got.TargetOwner != want.TargetOwner ||
		got.SourceIP != want.SourceIP || got.RequestID != want.RequestID || got.Cascade != want.Cascade ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || fmt.Sprint(got.Changes) != fmt.Sprint(want.Changes) ||
		fmt.Sprint(deref(got.Report)) != fmt.Sprint(deref(want.Report)) {
		tb.Errorf("event\n%+v\nwant\n%+v", *got, *want)
	}
}
