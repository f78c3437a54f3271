package app

import (
	"fmt"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
)

// NewAuthorizer builds the Lambda authorizer from the environment: TABLE_NAME (required), the
// authorizer's variables (authorizer.ConfigFromEnv) and the DynamoDB store, reached with
// dynamo.NewEnvClient. Returns an error naming
// the variable at fault, so a misconfigured function fails at init.
func NewAuthorizer(getenv func(string) string) (*authorizer.Authorizer, error) {
	table := getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is required", EnvTableName)
	}
	cfg, err := authorizer.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	client, err := dynamo.NewEnvClient(getenv)
	if err != nil {
		return nil, err
	}
	return authorizer.New(dynamo.New(client, table, dynamo.Options{}), cfg), nil
}
