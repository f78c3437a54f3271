// Command expiry-reminders is the scheduled Lambda function of the expiry reminders: each run
// publishes the token.expiring events that fell due (README "Expiry reminders").
package main

import (
	"log"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/apitokens/apitokens/pkg/app"
)

func main() {
	h, err := app.LambdaReminders(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambda.Start(h)
}
