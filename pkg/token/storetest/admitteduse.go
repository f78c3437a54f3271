package storetest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// runRecordAdmittedUse holds Store.RecordAdmittedUse to token.Use.Admits: the store records a use
// exactly when the rule admits the stored token, and otherwise leaves the token untouched. A store that wrote
// for a wrong secret, another environment label, a revoked, disabled, expired or limited token,
// or a token bound to another API would count uses the authorizer then refuses.
func runRecordAdmittedUse(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	secret, prev := token.NewSecret(), token.NewSecret()
	at := NewClock().Now().Add(time.Minute)
	use := func(mod func(*token.Use)) token.Use {
		u := token.Use{SecretHash: token.HashSecret(secret), Env: "live", At: at, N: 3}
		if mod != nil {
			mod(&u)
		}
		return u
	}
	tests := []struct {
		name   string
		tok    func(*token.Token)
		use    token.Use
		record bool
	}{
		{"current secret", nil, use(nil), true},
		{"wrong secret", nil, use(func(u *token.Use) { u.SecretHash = token.HashSecret(prev) }), false},
		{"previous secret in grace", func(tk *token.Token) {
			tk.PrevSecretHash, tk.PrevSecretUntil = token.HashSecret(prev), at.Add(time.Nanosecond)
		}, use(func(u *token.Use) { u.SecretHash = token.HashSecret(prev) }), true},
		{"previous secret at grace end", func(tk *token.Token) {
			tk.PrevSecretHash, tk.PrevSecretUntil = token.HashSecret(prev), at
		}, use(func(u *token.Use) { u.SecretHash = token.HashSecret(prev) }), false},
		{"other environment label", nil, use(func(u *token.Use) { u.Env = "test" }), false},
		{"no label for a labelled token", nil, use(func(u *token.Use) { u.Env = "" }), false},
		{"unlabelled token", func(tk *token.Token) { tk.Env = "" }, use(func(u *token.Use) { u.Env = "" }), true},
		{"label for an unlabelled token", func(tk *token.Token) { tk.Env = "" }, use(nil), false},
		{"disabled", func(tk *token.Token) { tk.Enabled = false }, use(nil), false},
		{"revoked", func(tk *token.Token) { tk.RevokedAt = at.Add(-time.Second) }, use(nil), false},
		{"expired at that instant", func(tk *token.Token) { tk.ExpiresAt = at }, use(nil), false},
		{"expires a moment later", func(tk *token.Token) { tk.ExpiresAt = at.Add(time.Nanosecond) }, use(nil), true},
		{"never expires", func(tk *token.Token) { tk.ExpiresAt = time.Time{} }, use(nil), true},
		{"IP allowlist", func(tk *token.Token) { tk.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} }, use(nil), false},
		{"rate limit", func(tk *token.Token) { tk.RateLimit = &token.RateLimit{Limit: 5, Window: time.Minute} }, use(nil), false},
		{"quota", func(tk *token.Token) { tk.Remaining = new(int64); *tk.Remaining = 9 }, use(nil), false},
		{"bound to this API", func(tk *token.Token) { tk.APIs = []string{"billing", "uploads"} }, use(func(u *token.Use) { u.API = "uploads" }), true},
		{"bound to another API", func(tk *token.Token) { tk.APIs = []string{"billing"} }, use(func(u *token.Use) { u.API = "uploads" }), false},
		{"bound, presented to an unnamed API", func(tk *token.Token) { tk.APIs = []string{"billing"} }, use(nil), true},
		{"unbound, binding optional", nil, use(func(u *token.Use) { u.API = "uploads" }), true},
		{"unbound, binding required", nil, use(func(u *token.Use) { u.API, u.RequireAPI = "uploads", true }), false},
		{"bound, binding required", func(tk *token.Token) { tk.APIs = []string{"uploads"} }, use(func(u *token.Use) { u.API, u.RequireAPI = "uploads", true }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewClock()
			s := newStore(t, clock.Now)
			tok := NewToken("alice", clock.Now())
			tok.SecretHash = token.HashSecret(secret)
			if tt.tok != nil {
				tt.tok(tok)
			}
			if got := tt.use.Admits(tok); got != tt.record {
				t.Fatalf("Use.Admits = %v; the case expects %v", got, tt.record)
			}
			MustCreate(t, s, tok)
			recorded, err := s.RecordAdmittedUse(ctx, tok.ID, tt.use)
			if err != nil {
				t.Fatalf("RecordAdmittedUse: %v", err)
			}
			if recorded != tt.record {
				t.Fatalf("recorded = %v; want %v", recorded, tt.record)
			}
			want := tok.Clone()
			if tt.record {
				want.UsageCount, want.LastUsedAt = 3, at
			}
			AssertEqualTokens(t, MustFind(t, s, tok.ID), want)
		})
	}

	t.Run("absent or gone", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		recorded, err := s.RecordAdmittedUse(ctx, token.NewID(), use(nil))
		if err != nil {
			t.Fatal(err)
		}
		gone := NewToken("alice", clock.Now())
		gone.SecretHash = token.HashSecret(secret)
		gone.AutoDelete, gone.ExpiresAt, gone.PurgeAt = true, clock.Now().Add(time.Second), clock.Now().Add(time.Second)
		MustCreate(t, s, gone)
		clock.Advance(2 * time.Second)
		recorded2, err := s.RecordAdmittedUse(ctx, gone.ID, use(func(u *token.Use) { u.At = clock.Now() }))
		if err != nil {
			t.Fatal(err)
		}
		if recorded || recorded2 {
			t.Fatal("a use was recorded for an absent or gone token")
		}
	})

	t.Run("concurrent uses are all counted", func(t *testing.T) {
		clock := NewClock()
		s := newStore(t, clock.Now)
		tok := NewToken("alice", clock.Now())
		tok.SecretHash = token.HashSecret(secret)
		MustCreate(t, s, tok)
		parallel(40, func(int) {
			if recorded, err := s.RecordAdmittedUse(ctx, tok.ID, use(func(u *token.Use) { u.N = 1 })); err != nil || !recorded {
				t.Errorf("RecordAdmittedUse: %v, recorded %v", err, recorded)
			}
		})
		if got := MustFind(t, s, tok.ID).UsageCount; got != 40 {
			t.Fatalf("usageCount %d after 40 concurrent uses", got)
		}
	})
}
