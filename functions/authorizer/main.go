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

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	a, err := app.NewAuthorizer(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	flush := func(ctx context.Context, final bool) { a.FlushUsage(ctx, final) }
	lambdaext.Start("apitokens-usage-writes", a.Handle, flush, slog.Default())
}
