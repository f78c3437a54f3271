package authorizer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// httpDecide sends one HTTP API authorization of tok and returns its simple response.
func httpDecide(t *testing.T, a *authorizer.Authorizer, tok string) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	t.Helper()
	resp, err := a.HandleHTTP(context.Background(), httpEvent("GET", "/a", map[string]string{"authorization": "Bearer " + tok}))
	if err != nil {
		t.Fatal(err)
	}
	return resp.(events.APIGatewayV2CustomAuthorizerSimpleResponse)
}

// TestFlushReturnsLeases: a burst leases quota units ahead (token.Limiter's slow start); the
// Lambda flush, forced at SIGTERM, gives back what the instance did not use, so the counter then
// holds exactly the quota less the uses admitted.
func TestFlushReturnsLeases(t *testing.T) {
	f := newFixture(t)
	plain := f.limited(t, token.LimitsInput{Remaining: ptr(int64(100))})
	p, _ := token.Parse(token.DefaultPrefix, plain)
	a := f.authorizer(t, func(c *authorizer.Config) { c.BufferUses = true })
	for i := range 20 {
		if !httpDecide(t, a, plain).IsAuthorized {
			t.Fatalf("use %d of 100 refused", i+1)
		}
	}
	leased := storetest.MustQuotaLeft(t, f.store, p.ID)
	if leased >= 80 {
		t.Fatalf("counter %d after a burst of 20: the burst leased nothing ahead, so this test shows nothing", leased)
	}
	a.FlushUsage(context.Background(), false) // not idle yet: nothing goes back
	if got := storetest.MustQuotaLeft(t, f.store, p.ID); got != leased {
		t.Fatalf("counter %d after a flush right after the burst; want %d (the lease is not idle)", got, leased)
	}
	a.FlushUsage(context.Background(), true)
	if got := storetest.MustQuotaLeft(t, f.store, p.ID); got != 80 {
		t.Fatalf("counter %d after the forced flush; want 80 (100 less the 20 admitted)", got)
	}
}

// TestLimitRefusalShowsTheLease: a refusal tells where it came from, in the context the API
// receives (the write that found the window spent, then the instance's memory of it) and, once
// per write, in the log, which names the token, never its secret.
func TestLimitRefusalShowsTheLease(t *testing.T) {
	f := newFixture(t)
	plain := f.limited(t, token.LimitsInput{RateLimit: &token.RateLimit{Limit: 2, Window: time.Hour}})
	a := f.authorizer(t, func(c *authorizer.Config) { c.DeferLimits = true }) // the API answers refusals: they reach it
	for range 2 {
		if r := httpDecide(t, a, plain); r.Context[authorizer.ContextCode] != nil {
			t.Fatalf("a use within the limit carries %v", r.Context)
		}
		f.clock.Advance(time.Second)
	}
	for _, want := range []string{"store", "memory"} {
		c := httpDecide(t, a, plain).Context
		if c[authorizer.ContextCode] != token.CodeRateLimited || c[authorizer.ContextLeaseSource] != want ||
			c[authorizer.ContextLeaseStoreLeft] != "0" || c[authorizer.ContextLeaseCheckedAt] == "" {
			t.Fatalf("refusal context %v; want RATE_LIMITED from %s, 0 left in the store, a check time", c, want)
		}
		f.clock.Advance(time.Second)
	}
	logs := f.logs.String()
	if strings.Count(logs, "limit refused") != 1 || !strings.Contains(logs, "lease.source=store") || strings.Contains(logs, "lease.source=memory") {
		t.Fatalf("log %q; want the refusal the store made once, not the one from memory", logs)
	}
	if body := plain[strings.LastIndex(plain, "_")+1:]; strings.Contains(logs, body) { // id, secret and checksum
		t.Fatal("the log holds the token's secret")
	}
}
