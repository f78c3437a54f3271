// Command authorizer is the API Gateway Lambda authorizer: REST TOKEN and REQUEST authorizers and
// HTTP API payload 2.0, configured from the environment (see pkg/authorizer.ConfigFromEnv).
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	a, err := app.NewAuthorizer(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(a.Handle)
}
