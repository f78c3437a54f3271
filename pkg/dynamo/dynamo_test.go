package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// The tests run against the DynamoDB-compatible server at DYNAMODB_ENDPOINT, which
// scripts/dynamodb-local.sh (and so `make test`) starts: DynamoDB Local, AWS's own engine.

func TestContract(t *testing.T) {
	client := MustClient(t)
	storetest.Run(t, func(t *testing.T, now func() time.Time) token.Store {
		return New(client, MustTable(t, client), Options{Now: now})
	})
}

// MustClient, MustEndpoint and newClient reach DynamoDB Local through dynamotest.
var (
	MustClient   = dynamotest.MustClient
	MustEndpoint = dynamotest.MustEndpoint
	newClient    = dynamotest.NewClient
)

// MustTable creates a table of the test's own with CreateTable, deleted when the test ends.
func MustTable(tb testing.TB, client *dynamodb.Client) string {
	tb.Helper()
	return dynamotest.MustTable(tb, client, CreateTable)
}

// MustService returns a Service with the default configuration on store and the clock now.
func MustService(tb testing.TB, store token.Store, now func() time.Time) *token.Service {
	tb.Helper()
	svc, err := token.NewService(store, token.Config{Now: now})
	if err != nil {
		tb.Fatalf("NewService: %v", err)
	}
	return svc
}

// admin may manage every owner's tokens; tests act as admin of owner "o".
var admin = token.Principal{TokenID: "admin", Owner: "o", Permissions: []string{token.PermAdmin, token.PermManage}}

// MustCreate creates a token through svc and returns it with its plaintext.
func MustCreate(tb testing.TB, svc *token.Service, in token.CreateInput) (*token.Token, string) {
	tb.Helper()
	if in.Name == "" {
		in.Name = "test token"
	}
	tok, plaintext, err := svc.Create(context.Background(), admin, in)
	if err != nil {
		tb.Fatalf("Create(%+v): %v", in, err)
	}
	return tok, plaintext
}

// MustRawItem reads an item as stored, bypassing the Store; nil when there is none.
func MustRawItem(tb testing.TB, client *dynamodb.Client, table, pk string) map[string]types.AttributeValue {
	tb.Helper()
	out, err := client.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]types.AttributeValue{attrPK: &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		tb.Fatalf("GetItem(%s): %v", pk, err)
	}
	return out.Item
}
