// Command authorizer is the API Gateway Lambda authorizer: REST TOKEN and REQUEST authorizers and
// HTTP API payload 2.0, configured from the environment (see pkg/authorizer.ConfigFromEnv).
//
// Its usage writes go out after an answer, at most once per usage interval per instance, and at
// shutdown: an internal extension (pkg/lambdaext) holds the invocation open until they are done,
// so a token's first sight costs the caller one GetItem and nothing else.
package main

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	a, err := app.NewAuthorizer(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	flush := func() { a.FlushUsage(context.Background(), false) }
	atShutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		a.FlushUsage(ctx, true)
	}
	lambdaext.Start("apitokens-usage-writes", a.Handle, flush, atShutdown, slog.Default())
}
