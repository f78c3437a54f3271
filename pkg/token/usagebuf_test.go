package token_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// usageWrites counts the usage writes of a store by token id, and fails them on demand.
type usageWrites struct {
	token.Store
	fail atomic.Bool

	mu     sync.Mutex
	writes map[string]int
}

func (s *usageWrites) RecordUse(ctx context.Context, id string, u token.Usage) error {
	s.mu.Lock()
	if s.writes == nil {
		s.writes = make(map[string]int)
	}
	s.writes[id]++
	s.mu.Unlock()
	if s.fail.Load() {
		return errors.New("ProvisionedThroughputExceededException")
	}
	return s.Store.RecordUse(ctx, id, u)
}

func (s *usageWrites) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[id]
}

// TestUsageBuffer: unbuffered, a token's first outcome is due at once, the next ones within the
// interval are held and go out together with the first after it; a full buffer forgets tokens
// with nothing held whose interval has passed, and otherwise sends an outcome of a new token at
// once rather than grow; a failed write's counts come back.
func TestUsageBuffer(t *testing.T) {
	clock := storetest.NewClock()
	store := &usageWrites{Store: memstore.New(clock.Now)}
	b := token.NewUsageBuffer(store, token.UsageBufferConfig{Interval: time.Minute, Size: 2, Now: clock.Now})
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	expect := func(step string, held int64, w token.Usage, due bool, wantHeld int64, want *token.Usage) {
		t.Helper()
		if held != wantHeld || due != (want != nil) {
			t.Fatalf("%s: held %d, due %v; want %d and %v", step, held, due, wantHeld, want != nil)
		}
		if want != nil && (w.Valid != want.Valid || !maps.Equal(w.Refused, want.Refused) || !w.At.Equal(want.At)) {
			t.Fatalf("%s: write %+v; want %+v", step, w, *want)
		}
	}
	held, w, due := b.Add("a", token.CodeRevoked, at(0))
	expect("a token's first outcome is due at once", held, w, due, 0, &token.Usage{At: at(0), Refused: map[string]int64{token.CodeRevoked: 1}})
	held, w, due = b.Add("a", token.CodeValid, at(1))
	expect("within the interval: held", held, w, due, 1, nil)
	held, w, due = b.Add("a", token.CodeExpired, at(2))
	expect("a refusal: held", held, w, due, 1, nil)
	held, w, due = b.Add("a", token.CodeValid, at(3))
	expect("another use: held", held, w, due, 2, nil)
	if h := b.Held("a"); h.Valid != 2 || !h.At.Equal(at(3)) || !maps.Equal(h.Refused, map[string]int64{token.CodeExpired: 1}) {
		t.Fatalf("held %+v; want 2 uses, the last at %v, and 1 EXPIRED", h, at(3))
	}
	held, w, due = b.Add("a", token.CodeRevoked, at(60))
	expect("after the interval: due with what waited, dated by the last use", held, w, due, 2,
		&token.Usage{At: at(3), Valid: 2, Refused: map[string]int64{token.CodeExpired: 1, token.CodeRevoked: 1}})

	store.fail.Store(true)
	if err := b.Write(ctx, "a", w); err == nil {
		t.Fatal("a failed write returned no error")
	}
	store.fail.Store(false)
	if h := b.Held("a"); h.Valid != 2 || h.Refused[token.CodeRevoked] != 1 || h.Refused[token.CodeExpired] != 1 {
		t.Fatalf("after a failed write, held %+v; want its counts back", h)
	}

	held, w, due = b.Add("b", token.CodeValid, at(61))
	expect("b's first use", held, w, due, 1, &token.Usage{At: at(61), Valid: 1})
	// Full (a holding counts, b written within the interval): c goes out alone, and is not kept.
	held, w, due = b.Add("c", token.CodeValid, at(62))
	expect("full: due at once", held, w, due, 1, &token.Usage{At: at(62), Valid: 1})
	held, w, due = b.Add("c", token.CodeValid, at(63))
	expect("still not kept", held, w, due, 1, &token.Usage{At: at(63), Valid: 1})
	// Once b's interval has passed with nothing held, room is made.
	held, w, due = b.Add("c", token.CodeValid, at(200))
	expect("room again", held, w, due, 1, &token.Usage{At: at(200), Valid: 1})
	held, w, due = b.Add("c", token.CodeValid, at(201))
	expect("and c is held now", held, w, due, 1, nil)
}

// instances returns n Services on one store, as n servers (or n Lambda execution environments
// with buffered) on one table, on the fixture's clock.
func instances(t *testing.T, f *fixture, store token.Store, n int, buffered bool) []*token.Service {
	t.Helper()
	var out []*token.Service
	for range n {
		svc, err := token.NewService(store, token.Config{Now: f.clock.Now, BufferUses: buffered})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, svc)
	}
	return out
}

// TestVerifyUsageWritesAcrossInstances is the measurement of issue 14 as a test: 6,000 verifies
// of one token across 4 instances in 2 minutes, every tenth one refused. The token's usage
// writes are at most one per interval per instance, plus each instance's first (4 × 3), where
// they were one per verify; once every instance has flushed, usageCount and the day's counters
// are exact. Unbuffered, as a server writes; buffered, as the Lambda function writes, with a
// flush beside each invocation.
func TestVerifyUsageWritesAcrossInstances(t *testing.T) {
	const verifies, servers, span = 6000, 4, 2 * time.Minute
	for _, buffered := range []bool{false, true} {
		name := map[bool]string{false: "when due", true: "buffered"}[buffered]
		t.Run(name, func(t *testing.T) {
			var store *usageWrites
			f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { store = &usageWrites{Store: m}; return store })
			tok, plain := f.mustCreate(t, admin, token.CreateInput{Permissions: []string{"read"}})
			svcs := instances(t, f, store, servers, buffered)
			var wg sync.WaitGroup
			var failures atomic.Int64
			for _, svc := range svcs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range verifies / servers {
						f.clock.Advance(span / verifies)
						perm, want := "read", token.CodeValid
						if j%10 == 0 {
							perm, want = "write", token.CodeInsufficientPermissions
						}
						if v, err := svc.Verify(ctx, plain, perm); err != nil || v.Code != want {
							failures.Add(1)
						}
						if buffered {
							svc.FlushUsage(ctx, false)
						}
					}
				}()
			}
			wg.Wait()
			if n := failures.Load(); n > 0 {
				t.Fatalf("%d verifies failed or answered the wrong code", n)
			}
			limit := servers * int(span/token.DefaultUsageInterval+1)
			if n := store.count(tok.ID); n > limit {
				t.Fatalf("%d usage writes of the token for %d verifies on %d instances in %s; want at most %d", n, verifies, servers, span, limit)
			}
			t.Logf("%d usage writes of the token for %d verifies on %d instances in %s", store.count(tok.ID), verifies, servers, span)
			for _, svc := range svcs {
				svc.FlushUsage(ctx, true)
			}
			refused := int64(servers * ((verifies/servers + 9) / 10))
			got, err := f.mem.FindToken(ctx, tok.ID)
			if err != nil || got.UsageCount != verifies-refused {
				t.Fatalf("usageCount %d (%v) after flushing every instance; want %d", got.UsageCount, err, verifies-refused)
			}
			days, err := f.mem.UsageDays(ctx, tok.ID, f.clock.Now(), 1)
			if err != nil || days[0].Valid != verifies-refused || days[0].Refused[token.CodeInsufficientPermissions] != refused {
				t.Fatalf("day counters %+v (%v); want %d valid and %d INSUFFICIENT_PERMISSIONS", days, err, verifies-refused, refused)
			}
		})
	}
}

// TestVerifySlowTokenWritesEachUse: a token verified once per interval or less often has each
// use written, by the verify itself (unbuffered) or by the flush beside the invocation.
func TestVerifySlowTokenWritesEachUse(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(map[bool]string{false: "when due", true: "buffered"}[buffered], func(t *testing.T) {
			f := newFixture(t, token.Config{})
			tok, plain := f.mustCreate(t, admin, token.CreateInput{})
			svc := instances(t, f, f.mem, 1, buffered)[0]
			for i := range 5 {
				f.clock.Advance(token.DefaultUsageInterval + time.Duration(i)*time.Minute)
				if v, err := svc.Verify(ctx, plain); err != nil || !v.Valid() {
					t.Fatalf("verify: %+v %v", v, err)
				}
				if buffered {
					svc.FlushUsage(ctx, false)
				}
				if got, _ := f.mem.FindToken(ctx, tok.ID); got.UsageCount != int64(i+1) || !got.LastUsedAt.Equal(f.clock.Now()) {
					t.Fatalf("use %d: stored usageCount %d, lastUsedAt %v; want %d and %v", i+1, got.UsageCount, got.LastUsedAt, i+1, f.clock.Now())
				}
			}
		})
	}
}

// TestVerifyKeepsUsesOfAFailedWrite: a usage write that fails changes no verdict and loses no
// use: the uses are held (and shown by reads through the same Service) until a write succeeds,
// which counts each exactly once; a forced flush after it writes nothing more.
func TestVerifyKeepsUsesOfAFailedWrite(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(map[bool]string{false: "when due", true: "buffered"}[buffered], func(t *testing.T) {
			var store *usageWrites
			f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { store = &usageWrites{Store: m}; return store })
			tok, plain := f.mustCreate(t, admin, token.CreateInput{Permissions: []string{"read"}})
			svc := instances(t, f, store, 1, buffered)[0]
			verify := func(perm, want string) {
				t.Helper()
				if v, err := svc.Verify(ctx, plain, perm); err != nil || v.Code != want {
					t.Fatalf("verify: %s %v; want %s and no error", v.Code, err, want)
				}
				if buffered {
					svc.FlushUsage(ctx, false)
				}
			}
			store.fail.Store(true)
			verify("read", token.CodeValid)
			verify("write", token.CodeInsufficientPermissions)
			f.clock.Advance(token.DefaultUsageInterval)
			verify("read", token.CodeValid) // due again: fails again, carrying all three
			if n := store.count(tok.ID); n != 2 {
				t.Fatalf("%d write attempts; want 2 (the first outcome, and the first after the interval)", n)
			}
			if got, _ := f.mem.FindToken(ctx, tok.ID); got.UsageCount != 0 {
				t.Fatalf("stored usageCount %d after failed writes", got.UsageCount)
			}
			if got, err := svc.Get(ctx, admin, tok.ID); err != nil || got.UsageCount != 2 {
				t.Fatalf("get through the same service: usageCount %d (%v); want the 2 held uses", got.UsageCount, err)
			}
			store.fail.Store(false)
			f.clock.Advance(token.DefaultUsageInterval)
			verify("read", token.CodeValid)
			svc.FlushUsage(ctx, true)
			svc.FlushUsage(ctx, true)
			got, _ := f.mem.FindToken(ctx, tok.ID)
			days, err := f.mem.UsageDays(ctx, tok.ID, f.clock.Now(), 1)
			if got.UsageCount != 3 || err != nil || days[0].Valid != 3 || days[0].Refused[token.CodeInsufficientPermissions] != 1 {
				t.Fatalf("usageCount %d, day counters %+v (%v); want 3, and 3 valid and 1 INSUFFICIENT_PERMISSIONS", got.UsageCount, days, err)
			}
			if n := store.count(tok.ID); n != 3 {
				t.Fatalf("%d write attempts; want 3 (the two that failed and the one that carried them)", n)
			}
		})
	}
}
