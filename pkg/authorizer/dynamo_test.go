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

// TestCostAgainstDynamoDB counts real DynamoDB requests: 1,000 authorizations of one token within
// a minute cost one GetItem per cache window and one write; a revoked token is refused once its
// cache entry expires.
func TestCostAgainstDynamoDB(t *testing.T) {
	var counter dynamotest.CallCounter
	client := dynamotest.MustClient(t, counter.Register)
	clock := storetest.NewClock()
	store := dynamo.New(client, dynamotest.MustTable(t, client, dynamo.CreateTable), dynamo.Options{Now: clock.Now})
	svc, err := token.NewService(store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
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
	calls := counter.Take()
	if calls["GetItem"] != 5 || calls["UpdateItem"] != 1 || len(calls) != 2 {
		t.Fatalf("1,000 authorizations in 50 s made %v; want 5 GetItem and 1 UpdateItem", calls)
	}

	clock.Advance(11 * time.Second) // the usage interval has passed: the next use writes the count
	if _, err := a.Authorize(ctx, authorizer.Request{Token: plaintext, Method: "POST", Route: "/upload"}); err != nil {
		t.Fatal(err)
	}
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
