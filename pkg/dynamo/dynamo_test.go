package dynamo

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

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

// MustEndpoint returns DYNAMODB_ENDPOINT. Without it the test is skipped, or fails when
// APITOKENS_REQUIRE_DYNAMODB is set (as `make test` does), so the suite never skips silently.
func MustEndpoint(tb testing.TB) string {
	tb.Helper()
	endpoint := os.Getenv("DYNAMODB_ENDPOINT")
	if endpoint == "" {
		if os.Getenv("APITOKENS_REQUIRE_DYNAMODB") != "" {
			tb.Fatal("APITOKENS_REQUIRE_DYNAMODB is set but DYNAMODB_ENDPOINT is empty")
		}
		tb.Skip("DYNAMODB_ENDPOINT is not set: run `make test`, which starts DynamoDB Local")
	}
	return endpoint
}

// MustClient returns a client of the server at DYNAMODB_ENDPOINT with fixed local credentials.
func MustClient(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	return newClient(MustEndpoint(tb), optFns...)
}

func newClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...)
}

var tableSeq atomic.Int64

// MustTable creates a table of its own for the calling test with CreateTable, and deletes it
// when the test ends.
func MustTable(tb testing.TB, client *dynamodb.Client) string {
	tb.Helper()
	name := fmt.Sprintf("apitokens-test-%d-%d", os.Getpid(), tableSeq.Add(1))
	if err := CreateTable(context.Background(), client, name); err != nil {
		tb.Fatalf("CreateTable(%s): %v", name, err)
	}
	tb.Cleanup(func() {
		_, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		if err != nil {
			tb.Errorf("DeleteTable(%s): %v", name, err)
		}
	})
	return name
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

// callCounter counts the DynamoDB operations a client performs, by name, once per call
// whatever its retries.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

// Register is a client option that installs the counter.
func (c *callCounter) Register(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.calls[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// Take returns the counts since the last Take and starts again from zero.
func (c *callCounter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = map[string]int{}
	return calls
}
