package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// days returns the "days" of a usage answer.
func (r response) days(t *testing.T) []map[string]any {
	t.Helper()
	raw, ok := r.body["days"].([]any)
	if !ok {
		t.Fatalf("no days in %s", r.raw)
	}
	out := make([]map[string]any, len(raw))
	for i, d := range raw {
		out[i] = d.(map[string]any)
	}
	return out
}

// TestUsageChartData: the owner reads the counts of the calls this test made, day by day and
// split by outcome; junk is not counted; another owner, an unknown id and bad days are refused.
func TestUsageChartData(t *testing.T) {
	e := newEnv(t, nil)
	alice := e.mint("alice", token.PermManage, "read")
	bob := e.mint("bob", token.PermManage)
	reader := e.mint("alice", "read")
	created := e.must(201, "POST", "/tokens", alice, `{"name":"metered","permissions":["read"],
		"rateLimit":{"limit":4,"windowSeconds":3600},"allowedCidrs":["203.0.113.0/24"]}`)
	id, plain := created.str("id"), created.str("token")
	verify := func(extra, want string) {
		t.Helper()
		resp := e.must(200, "POST", "/verify", "", `{"token":"`+plain+`"`+extra+`}`)
		if got := resp.str("code"); got != want {
			t.Fatalf("verify %s: %s; want %s", extra, got, want)
		}
	}
	const here = `,"ip":"203.0.113.9"`
	verify(here, token.CodeValid)
	verify(here+`,"permissions":["write"]`, token.CodeInsufficientPermissions)
	verify(here+`,"permissions":["write"]`, token.CodeInsufficientPermissions)
	verify(`,"ip":"198.51.100.1"`, token.CodeForbiddenIP)
	for range 3 {
		verify(here, token.CodeValid)
	}
	verify(here, token.CodeRateLimited)
	// Junk for the same id: a wrong secret, and a malformed token.
	p, _ := token.Parse(token.DefaultPrefix, plain)
	e.must(200, "POST", "/verify", "", `{"token":"`+token.Format(token.DefaultPrefix, "", p.ID, token.NewSecret())+`"}`)
	e.must(200, "POST", "/verify", "", `{"token":"`+plain[:len(plain)-1]+`"}`)
	e.clock.Advance(time.Hour) // the next window, the same day: this use carries the refusals
	verify(here, token.CodeValid)

	usage := e.must(200, "GET", "/tokens/"+id+"/usage?days=3", alice, "")
	if usage.str("tokenId") != id {
		t.Fatalf("tokenId %q; want %s", usage.str("tokenId"), id)
	}
	days := usage.days(t)
	today := e.clock.Now().UTC()
	want := []string{
		fmt.Sprintf(`{"date":"%s","refused":{},"valid":0}`, today.AddDate(0, 0, -2).Format("2006-01-02")),
		fmt.Sprintf(`{"date":"%s","refused":{},"valid":0}`, today.AddDate(0, 0, -1).Format("2006-01-02")),
		fmt.Sprintf(`{"date":"%s","refused":{"FORBIDDEN_IP":1,"INSUFFICIENT_PERMISSIONS":2,"RATE_LIMITED":1},"valid":5}`, today.Format("2006-01-02")),
	}
	if len(days) != len(want) {
		t.Fatalf("%d days; want %d: %s", len(days), len(want), usage.raw)
	}
	for i := range want {
		if got := fmtAny(days[i]); got != want[i] {
			t.Errorf("day %d: %s; want %s", i, got, want[i])
		}
	}

	if n := len(e.must(200, "GET", "/tokens/"+id+"/usage", alice, "").days(t)); n != token.DefaultUsageDays {
		t.Errorf("default: %d days; want %d", n, token.DefaultUsageDays)
	}
	e.must(200, "GET", "/tokens/"+id+"/usage?days=2", e.admin, "")
	if n := len(e.must(200, "GET", "/tokens/"+id+"/usage?days=90", alice, "").days(t)); n != 90 {
		t.Errorf("days=90: %d days", n)
	}
	for _, bad := range []string{"0", "91", "-1", "abc", "", "1.5", "30&days=400"} {
		resp := e.must(400, "GET", "/tokens/"+id+"/usage?days="+bad, alice, "")
		if !strings.HasPrefix(resp.str("message"), "days: ") {
			t.Errorf("days=%s: message %q does not name days", bad, resp.str("message"))
		}
	}

	// Another owner's token answers exactly as an unknown one; no token, no manage: refused.
	foreign := e.must(404, "GET", "/tokens/"+id+"/usage", bob, "")
	unknown := e.must(404, "GET", "/tokens/"+token.NewID()+"/usage", bob, "")
	if foreign.raw != unknown.raw {
		t.Errorf("another owner's token answers %s, an unknown one %s", foreign.raw, unknown.raw)
	}
	e.must(401, "GET", "/tokens/"+id+"/usage", "", "")
	e.must(403, "GET", "/tokens/"+id+"/usage", reader, "")
	e.must(404, "GET", "/tokens/"+strings.Repeat("A", 17)+"/usage", alice, "")
}

// windowCountingStore counts the reads of rate-limit windows.
type windowCountingStore struct {
	*memstore.Store
	reads atomic.Int32
}

func (s *windowCountingStore) WindowCounts(ctx context.Context, w []token.RateWindow) ([]int64, error) {
	s.reads.Add(1)
	return s.Store.WindowCounts(ctx, w)
}

// TestLiveLimitState: get and list show a rate-limited token's current window (count, remaining,
// reset) and a quota's uses left and next refill, as they are now; a list page reads the windows
// of all its rate-limited tokens at once, and a page without one reads none.
func TestLiveLimitState(t *testing.T) {
	var clock *storetest.Clock // the env's, once it exists
	store := &windowCountingStore{Store: memstore.New(func() time.Time { return clock.Now() })}
	e := newEnv(t, store)
	clock = e.clock
	e.admin = e.mint("admin", token.PermAdmin, token.PermManage)
	alice := e.mint("alice", token.PermManage, "read")

	limited := e.must(201, "POST", "/tokens", alice, `{"name":"limited","rateLimit":{"limit":5,"windowSeconds":60},
		"remaining":3,"refill":{"amount":2,"intervalSeconds":3600}}`)
	id, plain := limited.str("id"), limited.str("token")
	if rl := fmtAny(limited.body["rateLimit"]); rl != `{"limit":5,"windowSeconds":60}` {
		t.Errorf("create shows rateLimit %s; want the settings only", rl)
	}
	for range 2 {
		e.must(200, "POST", "/verify", "", `{"token":"`+plain+`"}`)
	}
	other := e.must(201, "POST", "/tokens", alice, `{"name":"also limited","rateLimit":{"limit":9,"windowSeconds":3600}}`).str("id")
	e.must(201, "POST", "/tokens", alice, `{"name":"plain"}`)

	now := e.clock.Now()
	windowEnd := now.Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339)
	nextRefill := now.Add(time.Hour).Format(time.RFC3339)
	check := func(what string, rec map[string]any, rateLimit, remaining, refill string) {
		t.Helper()
		for key, want := range map[string]string{"rateLimit": rateLimit, "remaining": remaining, "refill": refill} {
			if got := fmtAny(rec[key]); got != want {
				t.Errorf("%s: %s = %s; want %s", what, key, got, want)
			}
		}
	}
	store.reads.Store(0)
	got := e.must(200, "GET", "/tokens/"+id, alice, "")
	check("get", got.body, `{"count":2,"limit":5,"remaining":3,"reset":"`+windowEnd+`","windowSeconds":60}`, "1",
		`{"amount":2,"intervalSeconds":3600,"nextRefillAt":"`+nextRefill+`"}`)
	if n := store.reads.Load(); n != 1 {
		t.Errorf("get of a rate-limited token read windows %d times; want 1", n)
	}

	store.reads.Store(0)
	list := e.must(200, "GET", "/tokens", alice, "")
	byID := map[string]map[string]any{}
	for _, tok := range list.body["tokens"].([]any) {
		rec := tok.(map[string]any)
		byID[rec["id"].(string)] = rec
	}
	check("list", byID[id], `{"count":2,"limit":5,"remaining":3,"reset":"`+windowEnd+`","windowSeconds":60}`, "1",
		`{"amount":2,"intervalSeconds":3600,"nextRefillAt":"`+nextRefill+`"}`)
	check("list, other", byID[other], `{"count":0,"limit":9,"remaining":9,"reset":"`+now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339)+`","windowSeconds":3600}`, "null", "null")
	if n := store.reads.Load(); n != 1 {
		t.Errorf("a list page with 2 rate-limited tokens read windows %d times; want 1", n)
	}
	store.reads.Store(0)
	e.must(200, "GET", "/tokens?owner=admin", e.admin, "")
	if n := store.reads.Load(); n != 0 {
		t.Errorf("a list page without rate-limited tokens read windows %d times; want 0", n)
	}

	// A new window; a refill that fell due shows, though the store applies it with the next use.
	e.clock.Advance(time.Hour + time.Minute)
	now = e.clock.Now()
	got = e.must(200, "GET", "/tokens/"+id, alice, "")
	check("later", got.body, `{"count":0,"limit":5,"remaining":5,"reset":"`+now.Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339)+`","windowSeconds":60}`, "2",
		`{"amount":2,"intervalSeconds":3600,"nextRefillAt":"`+now.Truncate(time.Hour).Add(time.Hour).Format(time.RFC3339)+`"}`)

	// Another owner cannot read it through get; its list never shows it.
	bob := e.mint("bob", token.PermManage)
	e.must(404, "GET", "/tokens/"+id, bob, "")
	if strings.Contains(e.must(200, "GET", "/tokens", bob, "").raw, id) {
		t.Error("bob's list shows alice's token")
	}
}
