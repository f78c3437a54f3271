package app

import (
	"context"
	"fmt"

	"github.com/apitokens/apitokens/pkg/authorizer"
)

// NewAuthorizer builds the Lambda authorizer from the environment: TABLE_NAME (required), the
// authorizer's variables (authorizer.ConfigFromEnv) and the DynamoDB store. Returns an error naming
// the variable at fault, so a misconfigured function fails at init.
func NewAuthorizer(ctx context.Context, getenv func(string) string) (*authorizer.Authorizer, error) {
	table := getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is required", EnvTableName)
	}
	cfg, err := authorizer.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(ctx, "dynamodb", table, nil)
	if err != nil {
		return nil, err
	}
	return authorizer.New(store, cfg), nil
}
