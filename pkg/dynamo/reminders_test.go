package dynamo

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// ExpiringTokens reads one index partition per UTC day of its range, page after page: with
// pages of 4, 10 tokens on one day and 3 on the next are 3 + 1 Queries, and nothing else.
func TestExpiringTokensQueriesEachDayPageByPage(t *testing.T) {
	saved := expiryPageSize
	expiryPageSize = 4
	t.Cleanup(func() { expiryPageSize = saved })
	counter := &dynamotest.CallCounter{}
	client := MustClient(t, counter.Register)
	table := MustTable(t, client)
	clock := storetest.NewClockAt(time.Now().UTC())
	store := New(client, table, Options{Now: clock.Now})
	day := clock.Now().Truncate(token.Day).Add(30 * token.Day)
	var want []string
	for i := range 13 {
		tok := storetest.NewToken("alice", clock.Now())
		tok.ExpiresAt = day.Add(time.Duration(i) * 2 * time.Hour) // 0:00 ... 18:00
		if i >= 10 {
			tok.ExpiresAt = day.Add(token.Day + time.Duration(i-10)*2*time.Hour) // 0:00 ... 4:00 of the next day
		}
		storetest.MustCreate(t, store, tok)
		want = append(want, tok.ID)
	}
	counter.Take()
	tokens, err := store.ExpiringTokens(context.Background(), day, day.Add(token.Day+5*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range tokens {
		got = append(got, tok.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ExpiringTokens = %v, want %v", got, want)
	}
	if calls := counter.Take(); !maps.Equal(calls, map[string]int{"Query": 4}) {
		t.Errorf("calls %v, want 4 Queries (3 pages of one day, 1 of the next)", calls)
	}
}

// The expiry index holds only unrevoked tokens with an expiry, and of them only what a reminder
// needs: no secret hash, no hint, no permissions.
func TestExpiryIndexHoldsNoSecret(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClockAt(time.Now().UTC())
	svc := MustService(t, New(client, table, Options{Now: clock.Now}), clock.Now)
	tok, _ := MustCreate(t, svc, token.CreateInput{Lifetime: token.Lifetime{Days: ptr(30)}, Meta: []byte(`{"team":"a"}`)})
	MustCreate(t, svc, token.CreateInput{Lifetime: token.Lifetime{Never: true}})

	query := func() []map[string]types.AttributeValue {
		t.Helper()
		out, err := client.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(table),
			IndexName:                 aws.String(expiryIndex),
			KeyConditionExpression:    aws.String("expiryDay = :day"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":day": &types.AttributeValueMemberS{Value: expiryDay(tok.ExpiresAt)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Items
	}
	items := query()
	if len(items) != 1 {
		t.Fatalf("%d items in the day's partition, want the one token", len(items))
	}
	allowed := append([]string{attrPK, attrExpiryDay, attrExpiryAt}, expiryProjection...)
	for name := range items[0] {
		if !slices.Contains(allowed, name) {
			t.Errorf("the expiry index projects %q", name)
		}
	}
	raw := MustRawItem(t, client, table, tokenPrefix+tok.ID)
	if day, at := raw[attrExpiryDay], raw[attrExpiryAt]; day == nil || at == nil ||
		day.(*types.AttributeValueMemberS).Value != expiryDay(tok.ExpiresAt) || at.(*types.AttributeValueMemberS).Value != formatTime(tok.ExpiresAt) {
		t.Errorf("token item expiryDay %v expiryAt %v; want the UTC day and instant of %v", day, at, tok.ExpiresAt)
	}

	if _, err := svc.Revoke(ctx, admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if items := query(); len(items) != 0 {
		t.Errorf("a revoked token is still in the expiry index: %v", items)
	}
	raw = MustRawItem(t, client, table, tokenPrefix+tok.ID)
	if raw[attrExpiryDay] != nil || raw[attrExpiryAt] != nil || raw[attrExpiresAt] == nil {
		t.Errorf("revoked token item: expiryDay %v, expiryAt %v, expiresAt %v; want only expiresAt", raw[attrExpiryDay], raw[attrExpiryAt], raw[attrExpiresAt])
	}
}

// recordingPublisher keeps every event published.
type recordingPublisher struct {
	mu     sync.Mutex
	events []token.Event
}

func (p *recordingPublisher) Publish(_ context.Context, events []token.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, events...)
	return nil
}

// Exactly once under concurrent runs: 8 scheduled runs at once, each with its own client as
// separate Lambda invocations have, publish each due reminder exactly once between them.
func TestRemindersExactlyOnceUnderConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	table := MustTable(t, client)
	clock := storetest.NewClockAt(time.Now().UTC().Truncate(time.Second))
	store := New(client, table, Options{Now: clock.Now})
	now := clock.Now()
	due := map[string]int{} // token id -> threshold
	for i := range 24 {
		d := []int{30, 7}[i%2]
		tok := storetest.NewToken("alice", now)
		tok.ExpiresAt = now.Add(time.Duration(d)*token.Day - time.Duration(i+1)*5*time.Minute) // fell due 5 min to 2 h ago
		storetest.MustCreate(t, store, tok)
		due[tok.ID] = d
	}
	notDue := storetest.NewToken("alice", now)
	notDue.ExpiresAt = now.Add(20 * token.Day)
	storetest.MustCreate(t, store, notDue)

	pub := &recordingPublisher{}
	runs := make([]token.ReminderRun, 8)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range runs {
		r, err := token.NewReminders(New(newClient(MustEndpoint(t)), table, Options{Now: clock.Now}),
			token.ReminderConfig{Events: pub, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			<-start
			var err error
			if runs[i], err = r.Run(ctx); err != nil {
				t.Errorf("run %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()

	sent := map[string]int{}
	for _, e := range pub.events {
		sent[e.EventID]++
		if e.Type != token.EventExpiring || e.DaysBefore != due[e.TokenID] {
			t.Errorf("event %s: %s daysBefore %d, want token.expiring %d", e.EventID, e.Type, e.DaysBefore, due[e.TokenID])
		}
	}
	for id, n := range sent {
		if n != 1 {
			t.Errorf("reminder %s published %d times", id, n)
		}
	}
	if len(sent) != len(due) {
		t.Errorf("%d reminders published, want %d", len(sent), len(due))
	}
	var total token.ReminderRun
	for _, r := range runs {
		total.Due, total.Sent, total.Skipped = total.Due+r.Due, total.Sent+r.Sent, total.Skipped+r.Skipped
	}
	if total.Sent != len(due) || total.Due != 8*len(due) || total.Skipped != 7*len(due) {
		t.Errorf("runs %+v add up to %+v; want %d sent, %d due, %d skipped", runs, total, len(due), 8*len(due), 7*len(due))
	}
}
