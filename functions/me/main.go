// Command me is the Lambda function of the route GET /me (see httpapi.Routes): the caller, as the
// management authorizer's context names it. It reads nothing from the table: its role grants none.
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaRoute(os.Getenv, "GET /me")
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
