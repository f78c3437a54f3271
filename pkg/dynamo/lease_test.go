package dynamo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// itemWrites counts the write requests a client sends, per item (its pk) and per second of the
// simulated time a Hot run announces (OnTick): what DynamoDB would meter on each item.
type itemWrites struct {
	now    atomic.Int64 // simulated unix second
	mu     sync.Mutex
	writes map[string]map[int64]int
}

func (w *itemWrites) register(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countItemWrites",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				var key map[string]types.AttributeValue
				switch p := in.Parameters.(type) {
				case *dynamodb.UpdateItemInput:
					key = p.Key
				case *dynamodb.PutItemInput:
					key = p.Item
				}
				if pk, ok := key[attrPK].(*types.AttributeValueMemberS); ok {
					w.mu.Lock()
					if w.writes[pk.Value] == nil {
						w.writes[pk.Value] = map[int64]int{}
					}
					w.writes[pk.Value][w.now.Load()]++
					w.mu.Unlock()
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// max returns the most writes one item took in one second, and which.
func (w *itemWrites) max() (string, int64, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var item string
	var sec int64
	n := 0
	for it, secs := range w.writes {
		for s, c := range secs {
			if c > n {
				item, sec, n = it, s, c
			}
		}
	}
	return item, sec, n
}

// TestHotToken is issue 14's scenario on DynamoDB Local, counted by an SDK middleware: 20
// instances, 20,000 requests within two windows of 5,000, and a quota of 10,000 spent at
// 10,000 requests a second. Each window admits 4,900-5,000; the quota admits exactly 10,000 once
// idle leases are returned and never goes below 0; no item takes more than 200 writes in a
// second of simulated time. make measure prints its figures (go test -run TestHotToken -v).
func TestHotToken(t *testing.T) {
	counter := &itemWrites{writes: map[string]map[int64]int{}}
	client := MustClient(t, counter.register)
	for _, tc := range []struct {
		name string
		run  func(*testing.T, token.Store, *storetest.Clock, func(time.Time)) storetest.HotResult
	}{
		{"RateLimit5000PerSecond", storetest.HotRateLimit},
		{"Quota10000", storetest.HotQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			counter.mu.Lock()
			counter.writes = map[string]map[int64]int{}
			counter.mu.Unlock()
			clock := storetest.NewClock()
			store := New(client, MustTable(t, client), Options{Now: clock.Now})
			res := tc.run(t, store, clock, func(at time.Time) { counter.now.Store(at.Unix()) })
			item, sec, n := counter.max()
			if n > token.DefaultLeaseWritesPerSecond {
				t.Errorf("DynamoDB writes: %s took %d in second %d; want at most %d", item, n, sec, token.DefaultLeaseWritesPerSecond)
			}
			total := 0
			counter.mu.Lock()
			for it, secs := range counter.writes {
				for _, c := range secs {
					if it != "" {
						total += c
					}
				}
			}
			counter.mu.Unlock()
			fmt.Printf("hot %s: %s; DynamoDB writes (SDK middleware): %d in all, at most %d to one item in one second (%s)\n",
				tc.name, res, total, n, item)
		})
	}
}

// TestQuotaCounterMigration: a token stored before counters had items of their own (its
// remaining on the token item, decremented there) gets a counter from that remaining on its
// first lease, once, even with concurrent first leases; the token item takes no quota write.
func TestQuotaCounterMigration(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClock()
	store := New(client, table, Options{Now: clock.Now})
	tok := storetest.NewToken("alice", clock.Now())
	tok.Remaining, tok.RefilledAt = aws.Int64(40), clock.Now()
	item, err := attributevalue.MarshalMap(toItem(tok)) // as the old CreateToken wrote it: no counter
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	if counters, err := store.QuotaCounters(ctx, []string{tok.ID}); err != nil || len(counters) != 0 {
		t.Fatalf("a legacy token has counters %v %v", counters, err)
	}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lease, err := store.LeaseQuota(ctx, tok.ID, nil, tok.RefilledAt, clock.Now(), 3)
			if err != nil {
				t.Errorf("LeaseQuota: %v", err)
			}
			granted.Add(lease.Granted)
		}()
	}
	wg.Wait()
	if granted.Load() != 24 || storetest.MustQuotaLeft(t, store, tok.ID) != 16 {
		t.Fatalf("8 first leases of 3 from a legacy 40: granted %d, left %d; want 24 and 16", granted.Load(), storetest.MustQuotaLeft(t, store, tok.ID))
	}
	if got := storetest.MustFind(t, store, tok.ID); *got.Remaining != 40 || got.Version != tok.Version {
		t.Fatalf("the token item changed: remaining %d version %d", *got.Remaining, got.Version)
	}
}

// TestSpentQuotaCostsOneWrite: a lease of a spent quota whose refill is not due is one failed
// conditional write, not one per attempt; a lease of a quota whose refill is due is one write.
func TestSpentQuotaCostsOneWrite(t *testing.T) {
	ctx := context.Background()
	counter := &dynamotest.CallCounter{}
	client := MustClient(t, counter.Register)
	clock := storetest.NewClock()
	store := New(client, MustTable(t, client), Options{Now: clock.Now})
	hourly := &token.Refill{Amount: 3, Interval: time.Hour}
	tok := storetest.NewToken("alice", clock.Now())
	tok.Remaining, tok.Refill, tok.RefilledAt = aws.Int64(0), hourly, clock.Now()
	storetest.MustCreate(t, store, tok)
	counter.Take()
	lease, err := store.LeaseQuota(ctx, tok.ID, hourly, tok.RefilledAt, clock.Now(), 5)
	if err != nil || lease.Granted != 0 {
		t.Fatalf("lease of a spent quota: %+v %v", lease, err)
	}
	if calls := counter.Take(); calls["UpdateItem"] != 1 || len(calls) != 1 {
		t.Fatalf("a spent quota's lease made %v; want one UpdateItem", calls)
	}
	clock.Advance(time.Hour)
	if lease, err := store.LeaseQuota(ctx, tok.ID, hourly, tok.RefilledAt, clock.Now(), 5); err != nil || lease.Granted != 3 {
		t.Fatalf("lease after the refill: %+v %v; want the refill's 3", lease, err)
	}
	if calls := counter.Take(); calls["UpdateItem"] != 1 || len(calls) != 1 {
		t.Fatalf("a refill's lease made %v; want one UpdateItem", calls)
	}
}

// TestQuotaCounterKeepsItsTokensTTL: the counter expires with its token: an update that moves
// the token's purge time (a longer expiry, a revoke) moves the counter's, and one that removes it
// removes the counter's; so the counter never vanishes before its token, which would recreate it
// from the token's own remaining (the quota as set).
func TestQuotaCounterKeepsItsTokensTTL(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClock()
	store := New(client, table, Options{Now: clock.Now})
	tok := storetest.NewToken("alice", clock.Now())
	tok.Remaining, tok.RefilledAt, tok.AutoDelete = aws.Int64(9), clock.Now(), true
	tok.PurgeAt = tok.ExpiresAt
	storetest.MustCreate(t, store, tok)
	ttlOf := func() string {
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: quotaKey(tok.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := out.Item[attrTTL].(*types.AttributeValueMemberN); ok {
			return n.Value
		}
		return ""
	}
	if got, want := ttlOf(), fmt.Sprint(tok.PurgeAt.Unix()); got != want {
		t.Fatalf("counter ttl %q at creation; want %s", got, want)
	}
	read := storetest.MustFind(t, store, tok.ID)
	read.ExpiresAt = read.ExpiresAt.Add(30 * token.Day)
	read.PurgeAt = read.ExpiresAt
	storetest.MustUpdate(t, store, read)
	if got, want := ttlOf(), fmt.Sprint(read.PurgeAt.Unix()); got != want {
		t.Fatalf("counter ttl %q after the expiry moved; want %s", got, want)
	}
	read = storetest.MustFind(t, store, tok.ID)
	read.AutoDelete, read.PurgeAt = false, time.Time{}
	storetest.MustUpdate(t, store, read)
	if got := ttlOf(); got != "" {
		t.Fatalf("counter ttl %q after the token's was removed; want none", got)
	}
	if left := storetest.MustQuotaLeft(t, store, tok.ID); left != 9 {
		t.Fatalf("updates changed the counter: %d left", left)
	}
}
