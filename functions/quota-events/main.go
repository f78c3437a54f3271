// Command quota-events is the Lambda function of the table's stream that publishes the quota
// events (token.quota_low, token.quota_exhausted) the enforcement points record as QUOTAEVENT#
// items (README "Lifecycle events").
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaQuotaEvents(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(h)
}
