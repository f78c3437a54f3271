package lifecycle

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/apitokens/apitokens/pkg/token"
)

// MaxBatch is the most entries one PutEvents call takes.
const MaxBatch = 10

// PutEventsAPI is the part of the EventBridge client EventBridge uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge publishes events to an EventBridge bus: source token.EventSource, the event's type
// as detail-type, its JSON as detail.
type EventBridge struct {
	client PutEventsAPI
	bus    string
}

var _ token.Publisher = (*EventBridge)(nil)

// NewEventBridge returns a publisher to the bus named bus ("default" for the account's default
// bus) through client.
func NewEventBridge(client PutEventsAPI, bus string) *EventBridge {
	return &EventBridge{client: client, bus: bus}
}

// Publish sends events in PutEvents calls of up to MaxBatch entries. Entries EventBridge refuses
// (FailedEntryCount) are sent once more, as EventBridge advises for throttling and internal
// failures. Returns an error naming how many events were not accepted and the first refusal,
// or the call's error; the events of other batches may have been sent.
func (p *EventBridge) Publish(ctx context.Context, events []token.Event) error {
	var errs []error
	for start := 0; start < len(events); start += MaxBatch {
		batch := events[start:min(start+MaxBatch, len(events))]
		entries := make([]types.PutEventsRequestEntry, len(batch))
		for i, e := range batch {
			entries[i] = types.PutEventsRequestEntry{
				Source:       aws.String(token.EventSource),
				DetailType:   aws.String(e.Type),
				Detail:       aws.String(detail(e)),
				EventBusName: aws.String(p.bus),
				Time:         aws.Time(e.Time),
			}
		}
		for attempt := 1; len(entries) > 0; attempt++ {
			out, err := p.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
			if err != nil {
				errs = append(errs, fmt.Errorf("eventbridge: PutEvents of %d events: %w", len(entries), err))
				break
			}
			if out.FailedEntryCount == 0 {
				break
			}
			var failed []types.PutEventsRequestEntry
			var first string
			for i, r := range out.Entries {
				if r.ErrorCode != nil && i < len(entries) {
					failed = append(failed, entries[i])
					if first == "" {
						first = aws.ToString(r.ErrorCode) + ": " + aws.ToString(r.ErrorMessage)
					}
				}
			}
			if attempt == 2 || len(failed) == 0 {
				errs = append(errs, fmt.Errorf("eventbridge: %d of %d events not accepted (%s)", out.FailedEntryCount, len(entries), first))
				break
			}
			entries = failed
		}
	}
	return errors.Join(errs...)
}

// NewEnvClient returns an EventBridge client configured from environment variables only, as
// dynamo.NewEnvClient does (AWS_REGION, the AWS_ACCESS_KEY_ID pair, AWS_SESSION_TOKEN), with
// AWS_ENDPOINT_URL_EVENTBRIDGE (or AWS_ENDPOINT_URL) for another endpoint such as moto. Returns an
// error naming what is missing.
func NewEnvClient(getenv func(string) string) (*eventbridge.Client, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return nil, errors.New("eventbridge: AWS_REGION is not set")
	}
	key, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return nil, errors.New("eventbridge: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
	}
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(key, secret, getenv("AWS_SESSION_TOKEN")),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	endpoint := getenv("AWS_ENDPOINT_URL_EVENTBRIDGE")
	if endpoint == "" {
		endpoint = getenv("AWS_ENDPOINT_URL")
	}
	return eventbridge.NewFromConfig(cfg, func(o *eventbridge.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
