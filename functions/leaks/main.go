// Command leaks is the Lambda function of the route POST /leaks (see httpapi.Routes): the
// endpoint GitHub's secret scanning partner program calls with tokens it found in public.
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaRoute(os.Getenv, "POST /leaks")
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
