package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// EnvTableName names the DynamoDB table; required wherever the DynamoDB store is used.
const EnvTableName = "TABLE_NAME"

// OpenStore returns the store of the given kind: "memory" (embedded, empty) or "dynamodb" (the
// table, reached through the SDK's standard configuration: AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB,
// profiles). now is the stores' clock (nil: time.Now).
func OpenStore(ctx context.Context, kind, table string, now func() time.Time) (token.Store, error) {
	switch kind {
	case "memory":
		return memstore.New(now), nil
	case "dynamodb":
		if table == "" {
			return nil, fmt.Errorf("the dynamodb store needs a table: set --table or %s", EnvTableName)
		}
		client, err := dynamo.NewClient(ctx)
		if err != nil {
			return nil, fmt.Errorf("dynamodb client: %w", err)
		}
		return dynamo.New(client, table, dynamo.Options{Now: now}), nil
	}
	return nil, fmt.Errorf("unknown store %q: use memory or dynamodb", kind)
}

// CreateTable creates the DynamoDB table with its index and TTL, or checks an existing one.
func CreateTable(ctx context.Context, table string) error {
	if table == "" {
		return errors.New("no table name")
	}
	client, err := dynamo.NewClient(ctx)
	if err != nil {
		return fmt.Errorf("dynamodb client: %w", err)
	}
	return dynamo.CreateTable(ctx, client, table)
}
