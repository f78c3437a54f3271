package authzenv

import (
	"fmt"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/token"
)

// NewAuthorizer builds the Lambda authorizer from the environment: the authorizer's variables
// (authorizer.ConfigFromEnv), the DynamoDB store of TABLE_NAME (required), and in the management
// role the sign-in of people (SignInFromEnv). Returns an error naming the variable at fault, so
// a misconfigured function fails at init: a consumer authorizer with OIDC_ISSUER set is one
// (people sign in to the management API only). Its uses are buffered for the function to write
// with FlushUsage (lambdaext.Start runs it alongside each invocation, and at SIGTERM).
func NewAuthorizer(getenv func(string) string) (*authorizer.Authorizer, error) {
	store, err := StoreFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return NewAuthorizerWithStore(store, getenv)
}

// NewAuthorizerWithStore is NewAuthorizer on a given store, so that tests run the function's
// exact wiring without AWS. Returns an error naming the variable at fault.
func NewAuthorizerWithStore(store token.Store, getenv func(string) string) (*authorizer.Authorizer, error) {
	cfg, err := authorizer.ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	if cfg.People, err = People(getenv); err != nil {
		return nil, err
	}
	cfg.BufferUses = true
	return authorizer.New(store, cfg), nil
}

// People returns the sign-in of people of the management authorizer (AUTHORIZER_ROLE
// management, or apitokens serve, which sets that role): nil when OIDC_ISSUER is unset. Returns an
// error naming the variable at fault, or when sign-in is configured on another role.
func People(getenv func(string) string) (authorizer.PersonVerifier, error) {
	s, err := SignInFromEnv(getenv)
	if err != nil || !s.Enabled() {
		return nil, err
	}
	if role := getenv(authorizer.EnvRole); role != authorizer.RoleManagement {
		return nil, fmt.Errorf("%s is set, but people sign in to the management API only (%s=%s, not %q)",
			EnvOIDCIssuer, authorizer.EnvRole, authorizer.RoleManagement, role)
	}
	v, err := s.Verifier()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvOIDCIssuer, err)
	}
	return v, nil
}

// EnvTableName names the DynamoDB table of tokens.
const EnvTableName = "TABLE_NAME"

// StoreFromEnv returns the DynamoDB store of TABLE_NAME, with the client Lambda functions use
// (dynamo.NewEnvClient).
func StoreFromEnv(getenv func(string) string) (token.Store, error) {
	table := getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is not set: it names the DynamoDB table of tokens", EnvTableName)
	}
	client, err := dynamo.NewEnvClient(getenv)
	if err != nil {
		return nil, err
	}
	return dynamo.New(client, table, dynamo.Options{}), nil
}
