package authorizer_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// counted is a DynamoDB Local table whose requests counter counts, on the real clock (DynamoDB
// Local deletes TTL-expired items by it), with its store and service.
func counted(t *testing.T) (*dynamotest.CallCounter, *storetest.Clock, *dynamo.Store, *token.Service) {
	t.Helper()
	counter := &dynamotest.CallCounter{}
	client := dynamotest.MustClient(t, counter.Register)
	clock := realClock()
	store := dynamo.New(client, dynamotest.MustTable(t, client, dynamo.CreateTable), dynamo.Options{Now: clock.Now})
	svc, err := token.NewService(store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return counter, clock, store, svc
}

// TestCostAgainstDynamoDB counts real DynamoDB requests: 1,000 authorizations of one token within
// a minute cost one GetItem per cache window and one usage write, sent after the first decision;
// a revoked token is refused once its cache entry expires.
func TestCostAgainstDynamoDB(t *testing.T) {
	counter, clock, store, svc := counted(t)
	ctx := context.Background()
	root := token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}
	tok, plaintext, err := svc.Create(ctx, root, token.CreateInput{Name: "hot", Permissions: []string{"upload"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := authorizer.ConfigFromEnv(consumerEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = clock.Now
	a := authorizer.New(store, cfg)
	counter.Take()

	for i := range 1000 {
		d, err := a.Authorize(ctx, authorizer.Request{Token: plaintext, Method: "POST", Route: "/upload"})
		if err != nil || d.Outcome != authorizer.Allowed {
			t.Fatalf("authorization %d: %+v %v", i, d, err)
		}
		if i%100 == 99 {
			clock.Advance(5 * time.Second) // 1,000 calls over 50 s: 5 windows of the 10 s cache
		}
	}
	a.WaitForWrites()
	calls := counter.Take()
	if calls["GetItem"] != 5 || calls["UpdateItem"] != 2 || len(calls) != 2 {
		t.Fatalf("1,000 authorizations in 50 s made %v; want 5 GetItem and one usage write (2 UpdateItem: the token, the day's counters)", calls)
	}

	clock.Advance(11 * time.Second) // the usage interval has passed: the next use writes the count
	if _, err := a.Authorize(ctx, authorizer.Request{Token: plaintext, Method: "POST", Route: "/upload"}); err != nil {
		t.Fatal(err)
	}
	a.WaitForWrites()
	got, err := store.FindToken(ctx, tok.ID)
	if err != nil || got.UsageCount != 1001 || !got.LastUsedAt.Equal(clock.Now()) {
		t.Fatalf("stored usage %d at %v (%v); want 1001 at %v", got.UsageCount, got.LastUsedAt, err, clock.Now())
	}

	if _, err := svc.Revoke(ctx, root, tok.ID); err != nil {
		t.Fatal(err)
	}
	if d, _ := a.Authorize(ctx, authorizer.Request{Token: plaintext, Method: "POST", Route: "/upload"}); d.Outcome != authorizer.Allowed {
		t.Fatalf("inside the cache TTL the cached record still answers; got %+v", d)
	}
	clock.Advance(authorizer.DefaultCacheTTL)
	if d, err := a.Authorize(ctx, authorizer.Request{Token: plaintext, Method: "POST", Route: "/upload"}); err != nil || d.Outcome != authorizer.Unauthorized || d.Code != token.CodeRevoked {
		t.Fatalf("revoked token after the cache TTL: %+v %v; want 401 REVOKED", d, err)
	}
}

// TestFirstSightCountsOnlyAllowedUses: against DynamoDB Local, a token an instance has not seen
// costs a GetItem and, after the decision, one UpdateItem that counts the use; tokens the
// authorizer refuses cost the GetItem only and are never counted.
func TestFirstSightCountsOnlyAllowedUses(t *testing.T) {
	counter, clock, store, svc := counted(t)
	ctx := context.Background()
	root := token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}
	mint := func(in token.CreateInput) (*token.Token, string) {
		t.Helper()
		in.Name = "first sight"
		tok, plain, err := svc.Create(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		return tok, plain
	}
	cfg, err := authorizer.ConfigFromEnv(consumerEnv(map[string]string{authorizer.EnvAPIName: "uploads", authorizer.EnvCacheTTL: "0"}))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = clock.Now
	valid, validPlain := mint(token.CreateInput{Env: "live"})
	_, boundElsewhere := mint(token.CreateInput{APIs: []string{"billing"}})
	off := false
	_, disabled := mint(token.CreateInput{Enabled: &off})
	p, _ := token.Parse("tok", validPlain)
	otherLabel := token.Format("tok", "test", p.ID, p.Secret)
	counter.Take()

	a := authorizer.New(store, cfg)
	d, err := a.Authorize(ctx, authorizer.Request{Token: validPlain, Method: "GET", Route: "/x"})
	a.WaitForWrites()
	if err != nil || d.Outcome != authorizer.Allowed {
		t.Fatalf("first sight: %+v %v", d, err)
	}
	if calls := counter.Take(); calls["GetItem"] != 1 || calls["UpdateItem"] != 2 || len(calls) != 2 {
		t.Fatalf("first sight made %v; want one GetItem, then the usage write: two UpdateItem in parallel (the token, the day's counters)", calls)
	}
	if got, _ := store.FindToken(ctx, valid.ID); got.UsageCount != 1 || !got.LastUsedAt.Equal(clock.Now()) {
		t.Fatalf("usage after first sight: %d at %v", got.UsageCount, got.LastUsedAt)
	}
	counter.Take()
	// A refusal of a token whose secret matched also writes its day's counters (its first refusal
	// in the instance); another label is no such token.
	for name, tc := range map[string]struct {
		tok     string
		code    string
		refusal int
	}{
		"bound to another API":   {boundElsewhere, token.CodeForbiddenAPI, 1},
		"disabled":               {disabled, token.CodeDisabled, 1},
		"another label, same id": {otherLabel, token.CodeNotFound, 0},
	} {
		a := authorizer.New(store, cfg) // a new instance: a first sight again
		d, err := a.Authorize(ctx, authorizer.Request{Token: tc.tok, Method: "GET", Route: "/x"})
		a.WaitForWrites()
		if err != nil || d.Outcome == authorizer.Allowed || d.Code != tc.code {
			t.Errorf("%s: %+v %v; want %s", name, d, err, tc.code)
		}
		if calls := counter.Take(); calls["GetItem"] != 1 || calls["UpdateItem"] != tc.refusal || len(calls) != 1+min(tc.refusal, 1) {
			t.Errorf("%s made %v; want the GetItem and %d UpdateItem of the refusal's counters", name, calls, tc.refusal)
		}
	}
	for plain, code := range map[string]string{disabled: token.CodeDisabled, boundElsewhere: token.CodeForbiddenAPI} {
		p, _ := token.Parse("tok", plain)
		days, err := store.UsageDays(ctx, p.ID, clock.Now(), 1)
		if err != nil || days[0].Valid != 0 || len(days[0].Refused) != 1 || days[0].Refused[code] != 1 {
			t.Errorf("counters of the %s token: %+v %v; want one %s", code, days, err, code)
		}
	}
	page, err := svc.List(ctx, root, token.ListInput{Status: "all"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range page.Tokens {
		if want := map[bool]int64{true: 1, false: 0}[tok.ID == valid.ID]; tok.UsageCount != want {
			t.Errorf("token %s has usageCount %d; want %d", tok.ID, tok.UsageCount, want)
		}
	}
}

// TestRevocationBound: on the management API (RoleManagement: no memory cache) a revoked or
// disabled token is refused on the very next call; on a consumer API it is refused once its
// memory cache entry expires (AUTH_CACHE_TTL_SECONDS, 10 s by default), to which API Gateway's
// own result TTL adds. Both against DynamoDB Local.
func TestRevocationBound(t *testing.T) {
	client := dynamotest.MustClient(t)
	clock := realClock()
	store := dynamo.New(client, dynamotest.MustTable(t, client, dynamo.CreateTable), dynamo.Options{Now: clock.Now})
	svc, err := token.NewService(store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	root := token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}
	management, err := authorizer.ConfigFromEnv(func(k string) string {
		if k == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := authorizer.ConfigFromEnv(consumerEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    authorizer.Config
		bound  time.Duration
		revoke func(id string) error
		code   string
	}{
		{"management, revoke", management, 0, func(id string) error { _, err := svc.Revoke(ctx, root, id); return err }, token.CodeRevoked},
		{"management, disable", management, 0, func(id string) error {
			off := false
			_, err := svc.Update(ctx, root, id, token.UpdateInput{Enabled: &off})
			return err
		}, token.CodeDisabled},
		{"consumer, revoke", consumer, authorizer.DefaultCacheTTL, func(id string) error { _, err := svc.Revoke(ctx, root, id); return err }, token.CodeRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, plain, err := svc.Create(ctx, root, token.CreateInput{Name: "to revoke", Permissions: []string{token.PermManage}})
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Now = clock.Now
			a := authorizer.New(store, cfg)
			req := authorizer.Request{Token: plain, Method: "POST", Route: "/tokens"}
			if d, err := a.Authorize(ctx, req); err != nil || d.Outcome != authorizer.Allowed {
				t.Fatalf("before: %+v %v", d, err)
			}
			if err := tc.revoke(tok.ID); err != nil {
				t.Fatal(err)
			}
			if tc.bound > 0 {
				clock.Advance(tc.bound - time.Millisecond)
				if d, _ := a.Authorize(ctx, req); d.Outcome != authorizer.Allowed {
					t.Fatalf("inside the cache TTL: %+v; the stated bound is the TTL, and the test must show it", d)
				}
				clock.Advance(time.Millisecond)
			}
			d, err := a.Authorize(ctx, req)
			if err != nil || d.Outcome != authorizer.Unauthorized || d.Code != tc.code {
				t.Fatalf("after %v: %+v %v; want 401 %s", tc.bound, d, err, tc.code)
			}
		})
	}
}

// realClock starts at the real time: revoked tokens carry a TTL 30 days on, which must lie in
// DynamoDB Local's future (it deletes expired items by the real clock), or the test would read a
// revoked token as unknown.
func realClock() *storetest.Clock {
	return storetest.NewClockAt(time.Now().UTC().Truncate(time.Second))
}
