// Command faulty is an aws-lambda-go function that fails the way LAMBDARUN_FAULT says, so that
// lambdarun's tests see each failure Lambda reports: init-error (reports through
// /runtime/init/error, then exits), exit-init, error, panic, sleep (past its deadline), big (a
// response over 6 MB). Otherwise it answers its event unchanged.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	fault := os.Getenv("LAMBDARUN_FAULT")
	switch fault {
	case "init-error":
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"errorMessage":"no config","errorType":"InitFailed"}`))
		req.Header.Set("Lambda-Runtime-Function-Error-Type", "InitFailed")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			log.Fatalf("init/error: %v %v", resp, err)
		}
		os.Exit(1)
	case "exit-init":
		log.Fatal("init: exiting on purpose")
	}
	lambda.Start(func(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
		switch fault {
		case "error":
			return nil, errors.New("failing on purpose")
		case "panic":
			panic("panicking on purpose")
		case "sleep":
			<-ctx.Done()
			time.Sleep(time.Hour) // Lambda stops a function at its deadline; it does not return

		case "big":
			return json.Marshal(strings.Repeat("x", 7<<20))
		}
		return event, nil
	})
}
