// Command alongside runs under lambdaext.Start, as the authorizer does: work alongside each
// invocation (it counts them), and the final work at SIGTERM, which prints the count.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	var invocations, works atomic.Int64
	handler := func(context.Context, map[string]any) (map[string]int64, error) {
		return map[string]int64{"invocation": invocations.Add(1)}, nil
	}
	work := func(_ context.Context, final bool) {
		if final {
			fmt.Fprintln(os.Stderr, "alongside: final work after", works.Load(), "works alongside", invocations.Load(), "invocations")
			return
		}
		works.Add(1)
	}
	lambdaext.Start("alongside", handler, work, slog.Default())
}
