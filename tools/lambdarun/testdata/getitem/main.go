// Command getitem is the baseline of the authorizer's latency: a function that does exactly one
// strongly consistent GetItem, with the same SDK client the functions use (dynamo.NewEnvClient),
// of the token an HTTP API authorizer event presents; with BASELINE_WRITE=1, exactly one usage
// UpdateItem of that token instead, the shape of the usage write (SET baselineAt ADD
// baselineCount: attributes of its own, so the tokens' real usage stays the authorizer's); with
// BASELINE_WRITE=after, the GetItem, and that UpdateItem of the previous invocation's token in
// parallel with it (pkg/lambdaext, as the authorizer writes its uses with
// USAGE_WRITE_INTERVAL_SECONDS=0). See scripts/measure-authorizer.sh; it is not deployed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/lambdaext"
	"github.com/apitokens/apitokens/pkg/token"
)

func main() {
	client, err := dynamo.NewEnvClient(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	table, write := os.Getenv("TABLE_NAME"), os.Getenv("BASELINE_WRITE") == "1"
	after := os.Getenv("BASELINE_WRITE") == "after"
	var queued []string
	update := func(ctx context.Context, id string) error {
		_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(table), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "TOKEN#" + id}},
			UpdateExpression:          aws.String("SET baselineAt = :at ADD baselineCount :one"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)}, ":one": &types.AttributeValueMemberN{Value: "1"}},
		})
		return err
	}
	drain := func(ctx context.Context, _ bool) {
		for _, id := range queued {
			update(ctx, id)
		}
		queued = nil
	}
	h := func(ctx context.Context, e struct {
		Headers map[string]string `json:"headers"`
	}) (json.RawMessage, error) {
		presented, _ := token.BearerToken(e.Headers["authorization"])
		p, ok := token.Parse(token.DefaultPrefix, strings.TrimSpace(presented))
		if !ok {
			return nil, errors.New("malformed token")
		}
		key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "TOKEN#" + p.ID}}
		if write {
			_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(table), Key: key,
				UpdateExpression:          aws.String("SET baselineAt = :at ADD baselineCount :one"),
				ConditionExpression:       aws.String("attribute_exists(pk)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberS{Value: time.Now().UTC().Format(time.RFC3339Nano)}, ":one": &types.AttributeValueMemberN{Value: "1"}},
			})
			return json.RawMessage(`{"written":true}`), err
		}
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, err
		}
		if after {
			queued = append(queued, p.ID)
		}
		return json.Marshal(map[string]bool{"found": len(out.Item) > 0})
	}
	if after {
		lambdaext.Start("baseline-write-after", h, drain, slog.Default())
	}
	lambda.Start(h)
}
