package lifecycle_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// recorder is a Publisher that keeps what it was given.
type recorder struct{ got []token.Event }

func (r *recorder) Publish(_ context.Context, evs []token.Event) error {
	r.got = append(r.got, evs...)
	return nil
}

// TestPublishQuotaEvents: the stream function publishes the event an inserted QUOTAEVENT# item
// holds (events/quota-events.json, the example of make invoke), and nothing for other records.
func TestPublishQuotaEvents(t *testing.T) {
	b, err := os.ReadFile("../../events/quota-events.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	// Records the function's filter would not pass: a modification, another kind of item.
	other := ev.Records[0]
	other.EventName = "MODIFY"
	counter := ev.Records[0]
	counter.Change.NewImage = map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("QUOTA#4f9Xa1bC2dE3fG4h")}
	ev.Records = append(ev.Records, other, counter)

	pub := &recorder{}
	if err := lifecycle.PublishQuotaEvents(pub)(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if len(pub.got) != 1 {
		t.Fatalf("published %d events; want 1: %+v", len(pub.got), pub.got)
	}
	e := pub.got[0]
	if e.Type != token.EventQuotaLow || e.TokenID != "4f9Xa1bC2dE3fG4h" || e.Quota == nil || e.Quota.Remaining != 1 || e.Quota.Size != 10 || e.Quota.NextRefillAt == nil {
		t.Fatalf("event %+v (quota %+v)", e, e.Quota)
	}
}

// TestQuotaEventsRefusesBadItems: an item that is not a quota event fails the batch (Lambda
// retries it, and its failure shows) rather than publishing something else.
func TestQuotaEventsRefusesBadItems(t *testing.T) {
	rec := func(typ, detail string) events.DynamoDBEvent {
		return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
			NewImage: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute("QUOTAEVENT#x"), "type": events.NewStringAttribute(typ), "detail": events.NewStringAttribute(detail),
			}}}}}
	}
	for _, ev := range []events.DynamoDBEvent{rec("token.revoked", `{"tokenId":"x"}`), rec(token.EventQuotaLow, `{`)} {
		if _, err := lifecycle.QuotaEvents(ev); err == nil {
			t.Errorf("%+v: no error", ev.Records[0].Change.NewImage)
		}
	}
}
