package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/token"
)

// QuotaEventPrefix is the key prefix of the items that record quota events in the token table
// (token.Store.ClaimQuotaEvent on DynamoDB): QUOTAEVENT#<event id>, holding the event's type
// and its detail JSON.
const QuotaEventPrefix = "QUOTAEVENT#"

// QuotaEvents returns the quota events recorded by the items the table's stream inserted
// (records of other items, or of other changes, are skipped; the function's filter sends none).
// It reads only what the item holds: the detail was written whole by the instance that crossed
// the mark, so no token is read.
func QuotaEvents(ev events.DynamoDBEvent) ([]token.Event, error) {
	var out []token.Event
	for _, r := range ev.Records {
		img := r.Change.NewImage
		pk := img["pk"]
		if r.EventName != "INSERT" || pk.DataType() != events.DataTypeString || !strings.HasPrefix(pk.String(), QuotaEventPrefix) {
			continue
		}
		typ, detail := img["type"], img["detail"]
		if typ.DataType() != events.DataTypeString || detail.DataType() != events.DataTypeString {
			return nil, fmt.Errorf("quota event %s: type and detail must be strings", pk.String())
		}
		var e token.Event
		if err := json.Unmarshal([]byte(detail.String()), &e); err != nil {
			return nil, fmt.Errorf("quota event %s: detail: %w", pk.String(), err)
		}
		if e.Type = typ.String(); e.Type != token.EventQuotaLow && e.Type != token.EventQuotaSpent {
			return nil, fmt.Errorf("quota event %s: type %q is not a quota event", pk.String(), e.Type)
		}
		out = append(out, e)
	}
	return out, nil
}

// PublishQuotaEvents is the stream function's handler: it publishes the quota events of the
// stream records (the publisher batches them, MaxBatch a PutEvents call). An error makes Lambda
// retry the batch, so an event EventBridge accepted before a failure may be sent twice, with the
// same eventId.
func PublishQuotaEvents(pub token.Publisher) func(context.Context, events.DynamoDBEvent) error {
	return func(ctx context.Context, ev events.DynamoDBEvent) error {
		evs, err := QuotaEvents(ev)
		if err != nil || len(evs) == 0 {
			return err
		}
		return pub.Publish(ctx, evs)
	}
}
