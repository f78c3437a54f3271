package dynamo

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// usageNow is noon UTC today: the counters' TTL lies in DynamoDB Local's future.
func usageNow() time.Time {
	y, m, d := time.Now().UTC().Date()
	return time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
}

// TestUsageItem: a verify writes the day's counters as one item USAGE#<id>#<day>, with valid
// uses and refusals by code, and a TTL 400 days after the day ends; tokens the store does not
// hold (an unknown id, a wrong secret) never get one.
func TestUsageItem(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	now := usageNow()
	clock := storetest.NewClockAt(now)
	store := New(client, table, Options{Now: clock.Now})
	svc, err := token.NewService(store, token.Config{Now: clock.Now, UsageInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	tok, plaintext := MustCreate(t, svc, token.CreateInput{Permissions: []string{"read"}})
	for range 2 {
		if v, err := svc.Verify(ctx, plaintext); err != nil || !v.Valid() {
			t.Fatalf("verify: %s %v", v.Code, err)
		}
	}
	if v, err := svc.Verify(ctx, plaintext, "write"); err != nil || v.Code != token.CodeInsufficientPermissions {
		t.Fatalf("verify with a lacking permission: %s %v", v.Code, err)
	}

	item := MustRawItem(t, client, table, usagePrefix+tok.ID+"#"+now.Format("2006-01-02"))
	number := func(name string) string {
		n, _ := item[name].(*types.AttributeValueMemberN)
		if n == nil {
			return ""
		}
		return n.Value
	}
	wantTTL := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Add(400 * token.Day).Unix()
	if number(attrValid) != "2" || number(token.CodeInsufficientPermissions) != "1" || number(attrTTL) != strconv.FormatInt(wantTTL, 10) {
		t.Fatalf("usage item %v; want valid 2, INSUFFICIENT_PERMISSIONS 1, ttl %d (400 days after the day)", item, wantTTL)
	}
	if len(item) != 4 {
		t.Fatalf("usage item has %d attributes; want pk, valid, ttl and one refusal code: %v", len(item), item)
	}

	// Junk: a well-formed token with an unknown id, and the right id with a wrong secret.
	unknownID := token.NewID()
	for _, junk := range []string{
		token.Format(svc.Prefix(), "", unknownID, token.NewSecret()),
		token.Format(svc.Prefix(), "", tok.ID, token.NewSecret()),
	} {
		if v, err := svc.Verify(ctx, junk); err != nil || v.Code != token.CodeNotFound {
			t.Fatalf("junk verify: %s %v", v.Code, err)
		}
	}
	if item := MustRawItem(t, client, table, usagePrefix+unknownID+"#"+now.Format("2006-01-02")); item != nil {
		t.Fatalf("an unknown id got usage counters: %v", item)
	}
	days, err := store.UsageDays(ctx, tok.ID, now, 1)
	if err != nil || days[0].Valid != 2 || len(days[0].Refused) != 1 {
		t.Fatalf("after junk: %+v %v; want the counters unchanged", days, err)
	}
}

// rendezvous holds each UpdateItem until a second one has been sent, so a test can tell that two
// writes are in flight at once (one round trip of latency) without timing anything: writes sent
// one after the other never meet and fail.
type rendezvous struct {
	mu      sync.Mutex
	waiting chan struct{} // closed by the second write; nil when no write waits
	alone   int           // writes that waited for a partner in vain
}

func (r *rendezvous) register(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("rendezvous",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "UpdateItem" {
					if err := r.meet(); err != nil {
						return middleware.InitializeOutput{}, middleware.Metadata{}, err
					}
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (r *rendezvous) meet() error {
	r.mu.Lock()
	if w := r.waiting; w != nil {
		r.waiting = nil
		r.mu.Unlock()
		close(w)
		return nil
	}
	w := make(chan struct{})
	r.waiting = w
	r.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-time.After(5 * time.Second):
		r.mu.Lock()
		r.alone++
		if r.waiting == w {
			r.waiting = nil
		}
		r.mu.Unlock()
		return errors.New("rendezvous: no second UpdateItem was sent while this one waited")
	}
}

// TestRecordUseWritesInParallel: the token's usage and the day's counters are two UpdateItems in
// flight at the same time, so the counters add no round trip to a usage write.
func TestRecordUseWritesInParallel(t *testing.T) {
	ctx := context.Background()
	r := &rendezvous{}
	client := MustClient(t, r.register)
	table := MustTable(t, client)
	now := usageNow()
	store := New(client, table, Options{Now: func() time.Time { return now }})
	tok := storetest.NewToken("alice", now)
	storetest.MustCreate(t, store, tok)
	if err := store.RecordUse(ctx, tok.ID, token.Usage{At: now, Valid: 3, Refused: map[string]int64{token.CodeRateLimited: 1}}); err != nil {
		t.Fatalf("RecordUse: %v", err)
	}
	if r.alone != 0 {
		t.Fatalf("%d writes of RecordUse were sent alone; want the token's and the counters' together", r.alone)
	}
	if got := storetest.MustFind(t, store, tok.ID); got.UsageCount != 3 {
		t.Fatalf("usageCount %d; want 3", got.UsageCount)
	}
	if days := storetest.MustUsageDays(t, store, tok.ID, now, 1); days[0].Valid != 3 || days[0].Refused[token.CodeRateLimited] != 1 {
		t.Fatalf("counters %+v; want 3 valid, 1 RATE_LIMITED", days[0])
	}
}
