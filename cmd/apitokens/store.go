package main

import (
	"context"
	"fmt"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// memoryStore is the memory store of this process: empty at start, shared by the commands run
// in it (so a test can create a token with one command and read its audit trail with another),
// gone when it exits.
var memoryStore = sync.OnceValue(func() *memstore.Store { return memstore.New(nil) })

// openStore returns the store of the given kind: "memory" (embedded, see memoryStore) or
// "dynamodb" (the table, reached through the SDK's standard configuration). A kind it does not
// know, or no table, is a usageError.
func openStore(ctx context.Context, kind, table string) (token.Store, error) {
	switch kind {
	case "memory":
		return memoryStore(), nil
	case "dynamodb":
		if table == "" {
			return nil, usagef("the dynamodb store needs a table: set --table or %s", app.EnvTableName)
		}
		client, err := newDynamoClient(ctx)
		if err != nil {
			return nil, err
		}
		return dynamo.New(client, table, dynamo.Options{}), nil
	}
	return nil, usagef("unknown store %q: use memory or dynamodb", kind)
}

// newDynamoClient loads the SDK's standard configuration (AWS_REGION, AWS_PROFILE, shared files,
// SSO, AWS_ENDPOINT_URL_DYNAMODB, ...), so the same binary reaches AWS or DynamoDB Local. The
// buildable HTTP client lets AWS_CA_BUNDLE apply.
func newDynamoClient(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(awshttp.NewBuildableClient()))
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}
