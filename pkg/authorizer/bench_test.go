package authorizer_test

import (
	"context"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// BenchmarkAuthorize measures one decision on the memory store: hit (record cached), miss (every
// call reads the store: cache disabled) and malformed (rejected before any lookup).
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, a *authorizer.Authorizer, tok string, want authorizer.Outcome) {
		b.ReportAllocs()
		for b.Loop() {
			d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/files/a"})
			if err != nil || d.Outcome != want {
				b.Fatalf("%+v %v", d, err)
			}
		}
	}
	b.Run("hit", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, nil), f.valid, authorizer.Allowed)
	})
	b.Run("miss", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, func(c *authorizer.Config) { c.CacheTTL = 0 }), f.valid, authorizer.Allowed)
	})
	b.Run("malformed", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, nil), f.badChecksum, authorizer.Unauthorized)
	})
	b.Run("hit-routes", func(b *testing.B) {
		f := newFixture(b)
		run(b, f.authorizer(b, withRoutes(b)), f.valid, authorizer.Allowed)
	})
}

// BenchmarkAgainstDynamoDB compares, in one process against DynamoDB Local, the authorizer with
// the bare consistent GetItem it waits for: a repeat miss (cache off, usage write not due) and a
// first sight (the GetItem; the usage write it starts after the decision is waited for outside
// the timing of the decision, as Lambda's internal extension does after the response):
//
//	scripts/dynamodb-local.sh go test ./pkg/authorizer/ -run '^$' -bench AgainstDynamoDB
func BenchmarkAgainstDynamoDB(b *testing.B) {
	client := dynamotest.MustClient(b)
	store := dynamo.New(client, dynamotest.MustTable(b, client, dynamo.CreateTable), dynamo.Options{})
	svc, err := token.NewService(store, token.Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tokens := make([]string, 2000)
	for i := range tokens {
		_, tokens[i], err = svc.Create(ctx, token.Principal{Owner: "bench", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
	}
	p, _ := token.Parse("tok", tokens[0])
	repeat := authorizer.New(store, authorizer.Config{UsageInterval: time.Hour})
	authorize := func(a *authorizer.Authorizer, tok string) {
		if d, err := a.Authorize(ctx, authorizer.Request{Token: tok, Method: "GET", Route: "/x"}); err != nil || d.Outcome != authorizer.Allowed {
			b.Fatalf("%+v %v", d, err)
		}
	}
	getItem := func() {
		if _, err := store.FindToken(ctx, p.ID); err != nil {
			b.Fatal(err)
		}
	}
	for range 1000 { // warm up the server's JVM on every path
		authorize(repeat, tokens[0])
		getItem()
	}
	b.Run("GetItem", func(b *testing.B) {
		for b.Loop() {
			getItem()
		}
	})
	b.Run("repeat-miss", func(b *testing.B) {
		for b.Loop() {
			authorize(repeat, tokens[0])
		}
	})
	b.Run("first-sight", func(b *testing.B) {
		i := 0
		a := authorizer.New(store, authorizer.Config{CacheTTL: time.Minute, UsageInterval: time.Hour})
		for b.Loop() {
			if i == len(tokens) { // every token seen: a new instance sees them for the first time
				i, a = 0, authorizer.New(store, authorizer.Config{CacheTTL: time.Minute, UsageInterval: time.Hour})
			}
			authorize(a, tokens[i])
			i++
			b.StopTimer() // the write after the answer, as the extension waits for it on Lambda
			a.WaitForWrites()
			b.StartTimer()
		}
	})
}
