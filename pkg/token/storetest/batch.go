package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// runFindTokens: FindTokens reads many tokens at once, as FindToken reads one: absent and gone
// ids are left out, repeated ids read once, and more ids than one DynamoDB batch (100) are all
// read; an audit event's report round-trips.
func runFindTokens(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("batch", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		want := map[string]*token.Token{}
		var ids []string
		for i := range 130 {
			tok := NewToken("alice", clock.Now())
			if i%2 == 0 {
				tok.ClientID = "c" + tok.ID
				tok.Remaining = ptr(int64(i))
			}
			MustCreate(t, s, tok)
			want[tok.ID] = tok
			ids = append(ids, tok.ID, tok.ID) // each twice: DynamoDB refuses repeated keys in a batch
		}
		gone := NewToken("alice", clock.Now())
		gone.AutoDelete, gone.ExpiresAt = true, clock.Now().Add(time.Minute)
		gone.PurgeAt = gone.ExpiresAt
		MustCreate(t, s, gone)
		clock.Advance(time.Minute)
		ids = append(ids, token.NewID(), gone.ID)

		got, err := s.FindTokens(ctx, ids)
		if err != nil {
			t.Fatalf("FindTokens: %v", err)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
			t.Fatalf("FindTokens found %d tokens; want the %d stored and live ones", len(got), len(want))
		}
		for id, tok := range got {
			AssertEqualTokens(t, tok, want[id])
		}
		// What it returns is the caller's: changing it changes nothing stored.
		for _, tok := range got {
			tok.Name = "changed"
			break
		}
		again, err := s.FindTokens(ctx, ids[:2])
		if err != nil || len(again) != 1 || again[ids[0]].Name == "changed" {
			t.Fatalf("FindTokens again: %v %v", again, err)
		}
	})

	t.Run("none", func(t *testing.T) {
		s := newStore(t, NewClock().Now)
		for _, ids := range [][]string{nil, {token.NewID()}} {
			got, err := s.FindTokens(ctx, ids)
			if err != nil || len(got) != 0 {
				t.Fatalf("FindTokens(%v) = %v, %v; want none", ids, got, err)
			}
		}
	})

	t.Run("report of an audit event", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		MustCreate(t, s, tok)
		clock.Advance(time.Second)
		tok.RevokedAt = clock.Now()
		ev := event(tok, token.ActionLeakRevoked, clock.Now())
		ev.ActorTokenID, ev.ActorOwner = "", ""
		ev.Report = &token.Report{Reporter: token.ReporterGitHub, URL: "https://github.com/o/r/blob/abc/f.txt", Source: "content", Type: "apitokens_token"}
		if err := s.UpdateToken(ctx, tok, ev); err != nil {
			t.Fatal(err)
		}
		self := event(tok, token.ActionRevoke, clock.Now().Add(time.Second))
		self.Report = &token.Report{Reporter: token.ReporterSelf}
		tok2 := NewToken("alice", clock.Now())
		if err := s.CreateToken(ctx, tok2, nil); err != nil {
			t.Fatal(err)
		}
		self.TargetID = tok2.ID
		tok2.RevokedAt = clock.Now()
		if err := s.UpdateToken(ctx, tok2, self); err != nil {
			t.Fatal(err)
		}
		events := MustAudit(t, s, token.AuditQuery{Owner: "alice"})
		if len(events) != 2 {
			t.Fatalf("%d events; want 2", len(events))
		}
		assertEvent(t, events[0], self)
		assertEvent(t, events[1], ev)
	})
}
