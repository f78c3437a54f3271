// Command authorizer is the API Gateway Lambda authorizer: REST TOKEN and REQUEST authorizers and
// HTTP API payload 2.0, configured from the environment (see pkg/authorizer.ConfigFromEnv).
//
// Its decisions only count uses; the instance writes them at most once per usage interval, in
// parallel with an invocation's own read (pkg/lambdaext runs the flush alongside the handler),
// and at SIGTERM, which an internal extension enables. So a token's first sight costs the caller
// one GetItem of latency.
package main

import (
	"context"
	"log"
	"log/slog"
	"os"

	"github.com/apitokens/apitokens/pkg/app/authzenv"
	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	a, err := authzenv.NewAuthorizer(os.Getenv)
	if err != nil {
		log.Fatalf("init: %v", err)
	}
	flush := func(ctx context.Context, final bool) { a.FlushUsage(ctx, final) }
	lambdaext.Start("apitokens-usage-writes", a.Handle, flush, slog.Default())
}
