package app

import "github.com/apitokens/apitokens/pkg/authorizer"

// NewAuthorizer builds the Lambda authorizer from the environment: the authorizer's variables
// (authorizer.ConfigFromEnv) and the DynamoDB store of TABLE_NAME (required). Returns an error
// naming the variable at fault, so a misconfigured function fails at init. Its usage writes wait
// in a queue for the function to call WaitForWrites after each response (lambdaext.Start does).
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
