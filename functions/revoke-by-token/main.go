// Command revoke-by-token is the Lambda function of the route POST /revoke (see
// httpapi.Routes): whoever holds a token revokes it by presenting it.
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaRoute(os.Getenv, "POST /revoke")
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
