// Command verify is the Lambda function of the route POST /verify (see httpapi.Routes).
//
// Its verifications only count uses; the instance writes them at most once per usage interval,
// in parallel with an invocation (pkg/lambdaext runs the flush alongside the handler), and at
// SIGTERM, which an internal extension enables.
package main

import (
	"log"
	"log/slog"
	"os"

	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	h, err := app.LambdaRoute(os.Getenv, "POST /verify")
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	lambdaext.Start("apitokens-usage-writes", httpadapter.NewV2(h).ProxyWithContext, h.FlushUsage, slog.Default())
}
