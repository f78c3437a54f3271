// Command openapi is the Lambda function of the route GET /openapi.json (see httpapi.Routes). It
// is wired like every route function, though it never calls the table: its role grants none.
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaRoute(os.Getenv, "GET /openapi.json")
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
