// Command dashboard is the Lambda function of the dashboard's routes (dashboard.RouteKeys: GET /
// and GET /ui/{proxy+}, no authorizer): the web page and its files, embedded in the binary, on the
// same HTTP API as the management API it calls. It touches no table: its role grants nothing.
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.Dashboard(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
