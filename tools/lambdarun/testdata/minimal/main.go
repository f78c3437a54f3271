// Command minimal is the smallest aws-lambda-go function: it answers its event unchanged. It is
// the baseline the functions' init and invoke durations are compared with (see the Makefile's
// measure target); it is not deployed.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, event json.RawMessage) (json.RawMessage, error) {
		return event, nil
	})
}
