// Command afterresponse exercises lambdarun's Extensions API with an internal extension
// subscribed to INVOKE: after each invocation's handler has returned, the extension works for
// DRAIN_MS milliseconds before it asks for its next event, which holds the invocation open. The
// answer is the number of drains finished before the invocation started, which shows that the
// next invocation waits for the previous one's drain. With REGISTER_LATE=1 it tries to register
// another extension after init too, and answers whether that was refused. At SIGTERM it prints
// how many drains it finished.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/apitokens/apitokens/pkg/lambdaext"
)

func main() {
	delay, _ := strconv.Atoi(os.Getenv("DRAIN_MS"))
	addr := os.Getenv("AWS_LAMBDA_RUNTIME_API")
	ext, err := lambdaext.Register(context.Background(), addr, "afterresponse", "INVOKE")
	if err != nil {
		fmt.Fprintln(os.Stderr, "afterresponse:", err)
		os.Exit(1)
	}
	var drained atomic.Int64
	returned := make(chan string, 1) // request ids of handlers that returned
	go func() {
		for {
			ev, err := ext.Next(context.Background()) // the first call ends the extension's init
			if err != nil {
				fmt.Fprintln(os.Stderr, "afterresponse:", err)
				os.Exit(1)
			}
			for id := range returned {
				if id == ev.RequestID {
					break
				}
			}
			time.Sleep(time.Duration(delay) * time.Millisecond)
			drained.Add(1)
		}
	}()
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		fmt.Fprintln(os.Stderr, "afterresponse: SIGTERM after", drained.Load(), "drains")
		os.Exit(0)
	}()
	lambda.Start(func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		defer func() { returned <- lc.AwsRequestID }()
		out := map[string]any{"drainedBefore": drained.Load()}
		if os.Getenv("REGISTER_LATE") == "1" {
			_, err := lambdaext.Register(ctx, addr, "late")
			out["lateRegisterRefused"] = err != nil
		}
		return out, nil
	})
}
