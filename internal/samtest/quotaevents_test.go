package samtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestQuotaEventsThroughTheStream: a quota spent on DynamoDB Local records its quota_low and
// quota_exhausted events as QUOTAEVENT# items; the table's stream (as CreateTable and the
// template enable it) carries them; the real bootstrap of functions/quota-events, given the
// stream's records as Lambda's event source mapping would (the template's filter applied),
// with the environment template.yaml gives it, publishes exactly those two events, once each,
// to a fake EventBridge, and no secret.
func TestQuotaEventsThroughTheStream(t *testing.T) {
	ctx := context.Background()
	endpoint := dynamotest.MustEndpoint(t)
	client := dynamotest.MustClient(t)
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	store := dynamo.New(client, table, dynamo.Options{})

	secret := token.NewSecret()
	tok := newToken(token.NewID(), "acme", []string{"read"}, secret)
	left := int64(10)
	tok.Remaining, tok.RefilledAt = &left, tok.CreatedAt
	mustCreate(t, store, tok)
	now := time.Now()
	for i := range 11 { // an instance each: 10 uses and a refusal
		l := token.NewLimiter(store, token.LimiterConfig{})
		v, err := l.Enforce(ctx, tok, netip.Addr{}, now.Add(time.Duration(i)*time.Second))
		if err != nil || (v.Code == token.CodeValid) != (i < 10) {
			t.Fatalf("use %d: %s %v", i+1, v.Code, err)
		}
	}

	// The stream's records, filtered as the template's event source mapping filters them.
	streams := dynamodbstreams.NewFromConfig(aws.Config{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), HTTPClient: awshttp.NewBuildableClient(),
	}, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(endpoint) })
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil || desc.Table.LatestStreamArn == nil {
		t.Fatalf("the table has no stream: %v", err)
	}
	var records []map[string]any
	for shards, start := (*dynamodbstreams.DescribeStreamOutput)(nil), (*string)(nil); ; {
		shards, err = streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: desc.Table.LatestStreamArn, ExclusiveStartShardId: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards.StreamDescription.Shards {
			it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: desc.Table.LatestStreamArn, ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				pk, _ := r.Dynamodb.Keys["pk"].(*streamtypes.AttributeValueMemberS)
				if r.EventName != streamtypes.OperationTypeInsert || pk == nil || !strings.HasPrefix(pk.Value, "QUOTAEVENT#") {
					continue
				}
				records = append(records, map[string]any{"eventName": "INSERT", "eventSource": "aws:dynamodb",
					"dynamodb": map[string]any{"Keys": lambdaImage(t, r.Dynamodb.Keys), "NewImage": lambdaImage(t, r.Dynamodb.NewImage), "StreamViewType": "NEW_IMAGE"}})
			}
		}
		if start = shards.StreamDescription.LastEvaluatedShardId; start == nil {
			break
		}
	}
	if len(records) != 2 {
		t.Fatalf("%d quota event records in the stream; want 2 (quota_low, quota_exhausted)", len(records))
	}
	event, err := json.Marshal(map[string]any{"Records": records})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var puts []string
	bus := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		puts = append(puts, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"FailedEntryCount":0,"Entries":[{"EventId":"1"},{"EventId":"2"}]}`)
	}))
	t.Cleanup(bus.Close)
	env := functionEnv(t, mustTemplate(t), quotaEventsFunction, nil, map[string]string{"Table": table, "EventBus": "apitokens-test"})
	env = append(env, awsEnv(endpoint)...)
	env = append(env, "AWS_ENDPOINT_URL_EVENTBRIDGE="+bus.URL)
	rep := runLambda(t, mustBinary(t, "functions/quota-events"), event, env, 1)
	if rep.Runs[0].InitError != nil {
		t.Fatalf("init failed with the template's environment %q: %s", env, rep.Runs[0].InitError)
	}
	if inv := rep.Runs[0].Invocations; len(inv) != 1 || inv[0].ErrorType != "" {
		t.Fatalf("invocation %+v", inv)
	}
	if len(puts) != 1 {
		t.Fatalf("%d PutEvents calls; want 1", len(puts))
	}
	var sent struct {
		Entries []struct{ Source, DetailType, EventBusName, Detail string }
	}
	if err := json.Unmarshal([]byte(puts[0]), &sent); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range sent.Entries {
		types = append(types, e.DetailType)
		if e.Source != token.EventSource || e.EventBusName != "apitokens-test" || !strings.Contains(e.Detail, `"tokenId":"`+tok.ID+`"`) ||
			!strings.Contains(e.Detail, `"size":10`) || strings.Contains(e.Detail, secret) {
			t.Errorf("entry %+v", e)
		}
	}
	if strings.Join(types, ",") != token.EventQuotaLow+","+token.EventQuotaSpent {
		t.Fatalf("published %v; want quota_low, quota_exhausted", types)
	}
}

// lambdaImage writes an item of a stream record as Lambda's DynamoDB event does: {"S": ...} and
// {"N": ...} (the only types quota event items hold).
func lambdaImage(t *testing.T, item map[string]streamtypes.AttributeValue) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range item {
		switch v := v.(type) {
		case *streamtypes.AttributeValueMemberS:
			out[k] = map[string]string{"S": v.Value}
		case *streamtypes.AttributeValueMemberN:
			out[k] = map[string]string{"N": v.Value}
		default:
			t.Fatalf("attribute %s: %T", k, v)
		}
	}
	return out
}
