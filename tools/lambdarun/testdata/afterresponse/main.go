// Command afterresponse registers an internal extension (pkg/lambdaext) and leaves work behind
// each invocation: a drain that takes DRAIN_MS milliseconds. Its answer is the number of drains
// finished before the invocation started, which shows that the next invocation waits for the
// previous one's drain. With REGISTER_LATE=1 it tries to register after init too, and answers
// whether that was refused. At SIGTERM it prints how many drains it finished.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	delay, _ := strconv.Atoi(os.Getenv("DRAIN_MS"))
	var drained atomic.Int64
	handler := func(ctx context.Context, _ json.RawMessage) (map[string]any, error) {
		out := map[string]any{"drainedBefore": drained.Load()}
		if os.Getenv("REGISTER_LATE") == "1" {
			_, err := lambdaext.Register(ctx, os.Getenv("AWS_LAMBDA_RUNTIME_API"), "late")
			out["lateRegisterRefused"] = err != nil
		}
		return out, nil
	}
	work := func(_ context.Context, final bool) {
		if final {
			fmt.Fprintln(os.Stderr, "afterresponse: final work after", drained.Load(), "drains")
			return
		}
		time.Sleep(time.Duration(delay) * time.Millisecond)
		drained.Add(1)
	}
	lambdaext.Start("afterresponse", handler, work, slog.Default())
}
