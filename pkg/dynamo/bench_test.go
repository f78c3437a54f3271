package dynamo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// BenchmarkListFirstPage times the first page of 20 active tokens for an owner with 50 tokens
// and for one with 5,000, in one table. The Query reads a page, not the owner's partition, so
// owner5000/owner50 should stay at most 1.5:
//
//	scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench ListFirstPage
func BenchmarkListFirstPage(b *testing.B) {
	client := MustClient(b)
	table := MustTable(b, client)
	store := New(client, table, Options{})
	sizes := []int{50, 5000}
	for _, n := range sizes {
		mustPopulate(b, client, table, fmt.Sprintf("owner%d", n), n)
	}
	listFirstPage := func(b *testing.B, owner string) {
		q := token.ListQuery{Owner: owner, Status: token.StatusActive, Limit: 20}
		page, err := store.ListTokens(context.Background(), q)
		if err != nil || len(page.Tokens) != 20 || page.Next == "" {
			b.Fatalf("ListTokens: %d tokens, next %q, err %v", len(page.Tokens), page.Next, err)
		}
	}
	// Warm up the server's JVM first, or whichever owner runs first looks slower.
	for range 500 {
		for _, n := range sizes {
			listFirstPage(b, fmt.Sprintf("owner%d", n))
		}
	}
	for _, n := range sizes {
		owner := fmt.Sprintf("owner%d", n)
		b.Run(owner, func(b *testing.B) {
			for b.Loop() {
				listFirstPage(b, owner)
			}
		})
	}
}

// mustPopulate writes n active tokens of owner with BatchWriteItem from a few workers.
func mustPopulate(b *testing.B, client *dynamodb.Client, table, owner string, n int) {
	b.Helper()
	created := time.Now().UTC()
	batches := make(chan []types.WriteRequest)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for range 8 {
		wg.Go(func() {
			for reqs := range batches {
				for len(reqs) > 0 {
					out, err := client.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
						RequestItems: map[string][]types.WriteRequest{table: reqs},
					})
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
						break
					}
					reqs = out.UnprocessedItems[table]
				}
			}
		})
	}
	var reqs []types.WriteRequest
	for i := range n {
		tok := storetest.NewToken(owner, created.Add(time.Duration(i)*time.Millisecond))
		item, err := attributevalue.MarshalMap(toItem(tok))
		if err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		if len(reqs) == 25 || i == n-1 {
			batches <- reqs
			reqs = nil
		}
	}
	close(batches)
	wg.Wait()
	if failed != nil {
		b.Fatalf("BatchWriteItem: %v", failed)
	}
}

// BenchmarkFirstSight compares the two requests of the authorizer's first sight of a token: the
// consistent read its decision waits for (FindToken) and the usage write it sends after the
// decision (RecordUse) and does not wait for. On DynamoDB Local a write costs about twice a read,
// which is why the first sight must not wait for it:
//
//	scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench FirstSight
func BenchmarkFirstSight(b *testing.B) {
	client := MustClient(b)
	store := New(client, MustTable(b, client), Options{})
	ctx := context.Background()
	tok := storetest.NewToken("bench", time.Now())
	if err := store.CreateToken(ctx, tok, nil); err != nil {
		b.Fatal(err)
	}
	use := func() {
		if err := store.RecordUse(ctx, tok.ID, token.Usage{At: time.Now(), Valid: 1}); err != nil {
			b.Fatalf("RecordUse: %v", err)
		}
	}
	find := func() {
		if _, err := store.FindToken(ctx, tok.ID); err != nil {
			b.Fatal(err)
		}
	}
	for range 1000 { // warm up the server's JVM on both paths
		use()
		find()
	}
	b.Run("GetItem", func(b *testing.B) {
		for b.Loop() {
			find()
		}
	})
	b.Run("RecordUse", func(b *testing.B) {
		for b.Loop() {
			use()
		}
	})
}
