package authorizer_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// failingReads fails reads on demand, while writes still succeed.
type failingReads struct {
	token.Store
	fail atomic.Bool
}

func (s *failingReads) FindToken(ctx context.Context, id string) (*token.Token, error) {
	if s.fail.Load() {
		return nil, errors.New("ProvisionedThroughputExceededException")
	}
	return s.Store.FindToken(ctx, id)
}

// TestFirstSightCountsEachAllowedUseOnce: a first sight whose read fails is denied and counts
// nothing; the uses buffered before it are counted once, by the next write.
func TestFirstSightCountsEachAllowedUseOnce(t *testing.T) {
	m := newMemTokens(t, 1)
	clock, mem, plain := m.clock, m.mem, m.plains[0]
	store := &failingReads{Store: mem}
	a := authorizer.New(store, authorizer.Config{CacheTTL: 10 * time.Second, UsageInterval: time.Minute, LookupTimeout: time.Second, Now: clock.Now})
	authorize := func() error {
		_, err := a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: "/x"})
		a.WaitForWrites()
		return err
	}
	usage := func() int64 {
		got, err := mem.FindToken(context.Background(), m.ids[0])
		if err != nil {
			t.Fatal(err)
		}
		return got.UsageCount
	}
	store.fail.Store(true)
	if authorize() == nil {
		t.Fatal("the read failed, and the request was allowed")
	}
	store.fail.Store(false)
	clock.Advance(2 * time.Minute)
	allowed := 0
	for range 4 { // a first sight, then 3 uses buffered within the interval
		if err := authorize(); err != nil {
			t.Fatal(err)
		}
		allowed++
		if allowed == 1 {
			if n := usage(); n != 1 {
				t.Fatalf("usageCount %d after one allowed and one refused request; want 1", n)
			}
		}
	}
	clock.Advance(2 * time.Minute)
	store.fail.Store(true)
	if authorize() == nil { // a first sight again, carrying the 3 buffered uses, denied
		t.Fatal("allowed")
	}
	store.fail.Store(false)
	clock.Advance(2 * time.Minute)
	if err := authorize(); err != nil {
		t.Fatal(err)
	}
	allowed++
	clock.Advance(2 * time.Minute)
	if err := authorize(); err != nil { // one more write, in case uses were still pending
		t.Fatal(err)
	}
	allowed++
	if got := usage(); got != int64(allowed) {
		t.Fatalf("usageCount %d after %d allowed uses and 2 refused ones", got, allowed)
	}
}

type countingWrites struct {
	token.Store
	writes atomic.Int64
}

func (s *countingWrites) RecordUse(ctx context.Context, id string, u token.Usage) error {
	s.writes.Add(1)
	return s.Store.RecordUse(ctx, id, u)
}

// TestJunkTokensCostNoWrites: made-up tokens (anyone can compute a checksum) cost a read each,
// never a write: a usage write starts only from an allowed decision.
func TestJunkTokensCostNoWrites(t *testing.T) {
	clock := storetest.NewClock()
	store := &countingWrites{Store: memstore.New(clock.Now)}
	a := authorizer.New(store, authorizer.Config{CacheTTL: 10 * time.Second, UsageInterval: time.Minute, Now: clock.Now})
	for range 5000 {
		clock.Advance(time.Millisecond)
		a.Authorize(context.Background(), authorizer.Request{Token: token.Format("tok", "", token.NewID(), token.NewSecret()), Method: "GET", Route: "/"})
	}
	unknown := token.Format("tok", "", token.NewID(), token.NewSecret())
	for range 100 {
		clock.Advance(2 * time.Second) // past the 1 s refresh: every call reads again
		a.Authorize(context.Background(), authorizer.Request{Token: unknown, Method: "GET", Route: "/"})
	}
	a.WaitForWrites()
	if n := store.writes.Load(); n != 0 {
		t.Fatalf("%d usage writes for 5,100 junk authorizations; want none", n)
	}
}

// TestConcurrentLocalAuthentication: the local server waits for its own usage write only, and
// never panics or blocks on other requests' writes.
func TestConcurrentLocalAuthentication(t *testing.T) {
	m := newMemTokens(t, 50, "manage")
	clock, mem, svc, plains := m.clock, m.mem, m.svc, m.plains
	cfg, err := authorizer.ConfigFromEnv(func(k string) string {
		if k == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now, cfg.UsageInterval = clock.Now, 0
	a := authorizer.New(mem, cfg)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		for _, p := range plains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					if recover() != nil {
						failures.Add(1)
					}
				}()
				r := httptest.NewRequest("GET", "/tokens", nil)
				r.Header.Set("Authorization", "Bearer "+p)
				r.Pattern = "GET /tokens"
				if _, err := a.AuthenticateRequest(r); err != nil {
					failures.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d concurrent authentications failed or panicked", n, 40*len(plains))
	}
	page, err := svc.List(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, token.ListInput{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range page.Tokens {
		if tok.UsageCount != 40 {
			t.Errorf("token %s counted %d uses; want 40", tok.ID, tok.UsageCount)
		}
	}
}

// TestBufferUses: with Config.BufferUses (the Lambda function), decisions only
// buffer uses; FlushUsage, which the function's internal extension calls after each response,
// writes them at most once per interval per instance (the first call always), one write per
// token with every buffered use; forced (at SIGTERM), it writes what is left; a failed write
// keeps its uses for the next flush. Refused tokens are never counted.
func TestBufferUses(t *testing.T) {
	m := newMemTokens(t, 3)
	clock, mem, ids, plains := m.clock, m.mem, m.ids, m.plains
	store := &countingWrites{Store: mem}
	failing := &failingWrites{Store: store}
	a := authorizer.New(failing, authorizer.Config{CacheTTL: 10 * time.Second, UsageInterval: time.Minute, Now: clock.Now, BufferUses: true})
	use := func(plain string, times int) {
		t.Helper()
		for range times {
			if d, err := a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: "/x"}); err != nil || d.Outcome != authorizer.Allowed {
				t.Fatalf("%+v %v", d, err)
			}
		}
	}
	counts := func() []int64 {
		var out []int64
		for _, id := range ids {
			got, err := mem.FindToken(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got.UsageCount)
		}
		return out
	}
	check := func(step string, wantWrites int64, want ...int64) {
		t.Helper()
		a.WaitForWrites()
		if n, got := store.writes.Load(), counts(); n != wantWrites || !slices.Equal(got, want) {
			t.Fatalf("%s: %d writes, counts %v; want %d and %v", step, n, got, wantWrites, want)
		}
	}
	use(plains[0], 3)
	a.Authorize(context.Background(), authorizer.Request{Token: plains[1] + "x", Method: "GET", Route: "/x"}) // refused
	check("decisions alone", 0, 0, 0, 0)
	if n := a.FlushUsage(context.Background(), false); n != 1 {
		t.Fatalf("first flush wrote %d tokens; want 1", n)
	}
	check("first flush", 1, 3, 0, 0)
	use(plains[0], 1)
	use(plains[1], 2)
	clock.Advance(30 * time.Second)
	if n := a.FlushUsage(context.Background(), false); n != 0 {
		t.Fatalf("a flush within the interval wrote %d tokens", n)
	}
	check("within the interval", 1, 3, 0, 0)
	failing.fail.Store(true)
	clock.Advance(31 * time.Second)
	a.FlushUsage(context.Background(), false) // both writes fail: the uses stay buffered
	failing.fail.Store(false)
	use(plains[2], 1)
	a.FlushUsage(context.Background(), true) // SIGTERM: everything left
	check("forced flush after a failed one", 1+3, 4, 2, 1)
}

// failingWrites fails usage writes on demand.
type failingWrites struct {
	token.Store
	fail atomic.Bool
}

func (s *failingWrites) RecordUse(ctx context.Context, id string, u token.Usage) error {
	if s.fail.Load() {
		return errors.New("ProvisionedThroughputExceededException")
	}
	return s.Store.RecordUse(ctx, id, u)
}

// TestFlushRecordsTheLastUse: a flush records when the token was last used, not when the flush
// ran, so a late flush (at SIGTERM) never dates a use after, say, the token's revocation.
func TestFlushRecordsTheLastUse(t *testing.T) {
	m := newMemTokens(t, 1)
	clock, mem, plain := m.clock, m.mem, m.plains[0]
	a := authorizer.New(mem, authorizer.Config{UsageInterval: time.Minute, Now: clock.Now, BufferUses: true})
	a.FlushUsage(context.Background(), false) // the first flush: nothing buffered yet
	clock.Advance(time.Second)
	a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: "/x"})
	used := clock.Now()
	clock.Advance(15 * time.Minute)
	a.FlushUsage(context.Background(), true)
	got, err := mem.FindToken(context.Background(), m.ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastUsedAt.Equal(used) || got.UsageCount != 1 {
		t.Fatalf("lastUsedAt %v, usageCount %d; want %v and 1", got.LastUsedAt, got.UsageCount, used)
	}
}

// TestFullBufferFlushesOnce: a buffer that reached CacheSize tokens is flushed at the next
// response, and emptied, so the following responses within the interval write nothing.
func TestFullBufferFlushesOnce(t *testing.T) {
	m := newMemTokens(t, 2)
	clock, plains := m.clock, m.plains
	store := &countingWrites{Store: m.mem}
	a := authorizer.New(store, authorizer.Config{CacheSize: 2, UsageInterval: time.Minute, Now: clock.Now, BufferUses: true})
	a.FlushUsage(context.Background(), false)
	for _, p := range plains {
		a.Authorize(context.Background(), authorizer.Request{Token: p, Method: "GET", Route: "/x"})
	}
	a.FlushUsage(context.Background(), false) // full: written although the interval has not passed
	for range 10 {
		clock.Advance(time.Second)
		a.Authorize(context.Background(), authorizer.Request{Token: plains[0], Method: "GET", Route: "/x"})
		a.FlushUsage(context.Background(), false)
	}
	if n := store.writes.Load(); n != 2 {
		t.Fatalf("%d usage writes; want 2 (the full buffer once, then nothing within the interval)", n)
	}
}

// TestFailedWriteOfAPrunedEntry: a server's write that fails after its token's entry was pruned
// (while the write was in flight) keeps its uses for the next write.
func TestFailedWriteOfAPrunedEntry(t *testing.T) {
	m := newMemTokens(t, 2)
	clock, mem, plain, other := m.clock, m.mem, m.plains[0], m.plains[1]
	store := &firstWriteFailsLate{Store: mem, id: m.ids[0], release: make(chan struct{})}
	a := authorizer.New(store, authorizer.Config{CacheSize: 1, UsageInterval: 0, Now: clock.Now})
	a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: "/x"}) // its write hangs
	a.Authorize(context.Background(), authorizer.Request{Token: other, Method: "GET", Route: "/x"}) // prunes the full map
	close(store.release)                                                                            // the hung write fails
	a.WaitForWrites()
	a.Authorize(context.Background(), authorizer.Request{Token: plain, Method: "GET", Route: "/x"})
	a.WaitForWrites()
	if got, _ := mem.FindToken(context.Background(), m.ids[0]); got.UsageCount != 2 {
		t.Fatalf("usageCount %d after 2 allowed uses, the first one's write failed late; want 2", got.UsageCount)
	}
}

// firstWriteFailsLate holds the first usage write of token id until released, then fails it.
type firstWriteFailsLate struct {
	token.Store
	id      string
	release chan struct{}
	once    sync.Once
}

func (s *firstWriteFailsLate) RecordUse(ctx context.Context, id string, u token.Usage) error {
	first := false
	if id == s.id {
		s.once.Do(func() { first = true })
	}
	if first {
		<-s.release
		return errors.New("RequestTimeout")
	}
	return s.Store.RecordUse(ctx, id, u)
}

// memTokens is a memory store on a fake clock holding n tokens of alice (perms; none: the
// default), with their ids and plaintexts.
type memTokens struct {
	clock  *storetest.Clock
	mem    *memstore.Store
	svc    *token.Service
	ids    []string
	plains []string
}

func newMemTokens(t *testing.T, n int, perms ...string) *memTokens {
	t.Helper()
	m := &memTokens{clock: storetest.NewClock()}
	m.mem = memstore.New(m.clock.Now)
	svc, err := token.NewService(m.mem, token.Config{Now: m.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	m.svc = svc
	for range n {
		tok, plain, err := svc.Create(context.Background(), token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "t", Permissions: perms})
		if err != nil {
			t.Fatal(err)
		}
		m.ids, m.plains = append(m.ids, tok.ID), append(m.plains, plain)
	}
	return m
}
