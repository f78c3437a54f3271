// Package lambdaext lets a Go Lambda function finish work after its handler has returned: an
// internal extension (Lambda Extensions API, 2020-01-01) registered for INVOKE events holds each
// invocation open until that work is done, while the response is already on its way.
//
// Lambda ends an invocation, and may freeze the execution environment, only once the runtime
// and every registered extension have asked for their next event. aws-lambda-go asks as soon as
// it has posted the handler's response, so a goroutine still writing then would be frozen
// mid-request. The extension asks only after the handler has returned and the work has come back:
// the caller waits for the handler, not for the work; the instance takes its next event after
// both (Lambda bills the work as post-runtime extension duration).
//
// Internal extensions must register during init, before the runtime's first request for an
// event, and cannot subscribe to SHUTDOWN; registering one makes Lambda send the runtime SIGTERM
// before it ends the process, with 500 ms to spare, which Start catches instead.
package lambdaext

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

const (
	apiVersion       = "2020-01-01"
	headerName       = "Lambda-Extension-Name"
	headerIdentifier = "Lambda-Extension-Identifier"
	eventTypeInvoke  = "INVOKE"

	// shutdownBudget is the part of Lambda's 500 ms after SIGTERM given to the final work.
	shutdownBudget = 400 * time.Millisecond
	// deadlineMargin is kept free before an invocation's deadline: work after the handler stops
	// then, so that a slow store makes the invocation end on time rather than time out.
	deadlineMargin = 200 * time.Millisecond
)

// Work is what a function does after its handler: final is false after an invocation (the work
// may decide there is nothing to do yet), true when nothing may be left behind (at SIGTERM,
// after a panic, or on every invocation when no extension could register). ctx ends when the
// time for it has run out.
type Work func(ctx context.Context, final bool)

// Extension is a registered internal extension.
type Extension struct {
	base   string
	id     string
	client *http.Client

	mu       sync.Mutex
	returned map[string]chan struct{} // request id -> closed when the handler has returned
}

// Register registers an internal extension called name with the Extensions API at addr (the
// value of AWS_LAMBDA_RUNTIME_API), subscribed to INVOKE events. Call it during init, before
// lambda.Start.
func Register(ctx context.Context, addr, name string) (*Extension, error) {
	if addr == "" {
		return nil, errors.New("lambdaext: AWS_LAMBDA_RUNTIME_API is not set")
	}
	e := &Extension{
		base:     "http://" + addr + "/" + apiVersion + "/extension/",
		client:   &http.Client{}, // event/next blocks until the next invocation: no timeout
		returned: make(map[string]chan struct{}),
	}
	body, _ := json.Marshal(map[string][]string{"events": {eventTypeInvoke}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"register", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(headerName, name)
	res, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("lambdaext: register: %w", err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("lambdaext: register: %s", res.Status)
	}
	if e.id = res.Header.Get(headerIdentifier); e.id == "" {
		return nil, errors.New("lambdaext: register: no " + headerIdentifier + " in the answer")
	}
	return e, nil
}

// event is what event/next answers; only the fields used here.
type event struct {
	EventType  string `json:"eventType"`
	RequestID  string `json:"requestId"`
	DeadlineMs int64  `json:"deadlineMs"`
}

// Run takes the extension's events until ctx ends or the API fails: for each invocation it waits
// until the handler has returned (Wrap) and work(ctx, false) has come back, both bounded by the
// invocation's deadline, before it asks for the next event. Run it in its own goroutine.
func (e *Extension) Run(ctx context.Context, work Work) error {
	for {
		ev, err := e.next(ctx)
		if err != nil {
			return err
		}
		if ev.EventType == eventTypeInvoke {
			e.finish(ctx, ev, work)
		}
	}
}

// finish waits for the handler of the invocation ev, then does the work, with a context that
// ends deadlineMargin before the invocation's deadline.
func (e *Extension) finish(ctx context.Context, ev event, work Work) {
	defer func() {
		e.mu.Lock()
		delete(e.returned, ev.RequestID)
		e.mu.Unlock()
	}()
	ctx, cancel := context.WithDeadline(ctx, time.UnixMilli(ev.DeadlineMs).Add(-deadlineMargin))
	defer cancel()
	select {
	case <-e.returnedChan(ev.RequestID):
	case <-ctx.Done():
		return
	}
	work(ctx, false)
}

func (e *Extension) returnedChan(requestID string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.returned[requestID]
	if !ok {
		c = make(chan struct{})
		e.returned[requestID] = c
	}
	return c
}

// handlerReturned tells the extension the handler of the invocation in ctx has returned.
func (e *Extension) handlerReturned(ctx context.Context) {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		close(e.returnedChan(lc.AwsRequestID))
	}
}

func (e *Extension) next(ctx context.Context) (event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"event/next", nil)
	if err != nil {
		return event{}, err
	}
	req.Header.Set(headerIdentifier, e.id)
	res, err := e.client.Do(req)
	if err != nil {
		return event{}, fmt.Errorf("lambdaext: event/next: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return event{}, fmt.Errorf("lambdaext: event/next: %s", res.Status)
	}
	var ev event
	if err := json.NewDecoder(res.Body).Decode(&ev); err != nil {
		return event{}, fmt.Errorf("lambdaext: event/next: %w", err)
	}
	return ev, nil
}

// Wrap returns handler, answering its response already encoded (so that only posting it overlaps
// the work) and telling the extension when it has returned. A panicking handler does the final
// work before the panic goes on: aws-lambda-go then ends the process, with no SIGTERM.
func Wrap[E, R any](e *Extension, handler func(context.Context, E) (R, error), work Work) func(context.Context, E) (json.RawMessage, error) {
	return func(ctx context.Context, ev E) (json.RawMessage, error) {
		defer func() {
			if r := recover(); r != nil {
				final(work)
				panic(r)
			}
		}()
		defer e.handlerReturned(ctx)
		resp, err := handler(ctx, ev)
		if err != nil {
			return nil, err
		}
		return json.Marshal(resp)
	}
}

// DrainBefore returns handler, doing the final work after it and before the response: the
// fallback when no extension could register, where nothing may be left behind at any return.
func DrainBefore[E, R any](handler func(context.Context, E) (R, error), work Work) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		defer work(context.WithoutCancel(ctx), true)
		return handler(ctx, ev)
	}
}

// final does the work with nothing left behind, within shutdownBudget.
func final(work Work) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	work(ctx, true)
}

// Start registers an internal extension called name and starts the Lambda runtime with handler:
// after each invocation's handler has returned it does work(ctx, false) (see the package
// comment), and at SIGTERM or after a panic work(ctx, true) within shutdownBudget. It does not
// return.
func Start[E, R any](name string, handler func(context.Context, E) (R, error), work Work, logger *slog.Logger) {
	ext, err := Register(context.Background(), os.Getenv("AWS_LAMBDA_RUNTIME_API"), name)
	if err != nil {
		logger.Warn("no internal extension: the work after each answer is done before it, on the caller's time", "error", err)
		lambda.Start(DrainBefore(handler, work))
		return
	}
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		final(work)
		os.Exit(0)
	}()
	go func() {
		err := ext.Run(context.Background(), work)
		// Lambda ends no invocation without this extension: end the process, so that Lambda
		// starts a new execution environment instead of timing every invocation out.
		logger.Error("internal extension stopped", "error", err)
		final(work)
		os.Exit(1)
	}()
	lambda.Start(Wrap(ext, handler, work))
}
