package app

import "github.com/apitokens/apitokens/pkg/authorizer"

// NewAuthorizer builds the Lambda authorizer from the environment: the authorizer's variables
// (authorizer.ConfigFromEnv) and the DynamoDB store of TABLE_NAME (required). Returns an error
// naming the variable at fault, so a misconfigured function fails at init. Its uses are buffered
// for the function to write with FlushUsage after its responses (lambdaext.Start does).
func NewAuthorizer(getenv func(string) string) (*authorizer.Authorizer, error) {
	cfg, err := authorizer.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	store, err := lambdaStore(getenv)
	if err != nil {
		return nil, err
	}
	cfg.WritesAfterResponse = true
	return authorizer.New(store, cfg), nil
}
