// Package dynamotest connects tests to the DynamoDB-compatible server at DYNAMODB_ENDPOINT, which
// scripts/dynamodb-local.sh (and so `make test`) starts: DynamoDB Local, AWS's own engine. It
// also counts the operations a client performs, for the cost assertions.
package dynamotest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

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
	return NewClient(MustEndpoint(tb), optFns...)
}

// NewClient returns a client of the server at endpoint with fixed local credentials.
func NewClient(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
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

// MustTable creates a table of its own for the calling test with create (dynamo.CreateTable),
// and deletes it when the test ends.
func MustTable(tb testing.TB, client *dynamodb.Client, create func(context.Context, *dynamodb.Client, string) error) string {
	tb.Helper()
	name := fmt.Sprintf("apitokens-test-%d-%d", os.Getpid(), tableSeq.Add(1))
	if err := create(context.Background(), client, name); err != nil {
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

// CallCounter counts the DynamoDB operations a client performs, by name, once per call whatever
// its retries.
type CallCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

// Register is a client option that installs the counter.
func (c *CallCounter) Register(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("countCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				if c.calls == nil {
					c.calls = map[string]int{}
				}
				c.calls[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

// Take returns the counts since the last Take and starts again from zero.
func (c *CallCounter) Take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = map[string]int{}
	return calls
}
