// Package lambdaext lets a Go Lambda function finish work after it has answered: an internal
// extension (Lambda Extensions API, 2020-01-01) registered for INVOKE events holds each
// invocation open until the work the handler left behind is done, while the response is already
// on its way to the caller.
//
// Lambda ends an invocation, and may freeze the execution environment, only once the runtime
// and every registered extension have asked for their next event. aws-lambda-go asks as soon as
// it has posted the handler's response, so a goroutine still writing then would be frozen
// mid-request. The extension asks only after the handler has returned and drain has come back:
// the caller waits for the handler, not for the drain; the instance takes its next event after
// both (Lambda bills the drain as post-runtime extension duration).
//
// Internal extensions must register during init, before the runtime's first request for an
// event, and cannot subscribe to SHUTDOWN: Start catches the SIGTERM Lambda sends instead. Start registers before it hands over to lambda.Start;
// when registration fails (no Extensions API, as in some emulators), the handler drains before
// it returns, so the work is done either way, only on the caller's time.
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
	apiVersion        = "2020-01-01"
	headerName        = "Lambda-Extension-Name"
	headerIdentifier  = "Lambda-Extension-Identifier"
	eventTypeInvoke   = "INVOKE"
	eventTypeShutdown = "SHUTDOWN"
)

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
// until the handler has returned (Wrap) and drain has come back, or the invocation's deadline
// passes, before it asks for the next event. Run it in its own goroutine.
func (e *Extension) Run(ctx context.Context, drain func()) error {
	for {
		ev, err := e.next(ctx)
		if err != nil {
			return err
		}
		switch ev.EventType {
		case eventTypeInvoke:
			e.finish(ev, drain)
		case eventTypeShutdown:
			return nil
		}
	}
}

// finish waits for the handler of the invocation ev and then for drain, bounded by the
// invocation's deadline: past it Lambda ends the invocation anyway.
func (e *Extension) finish(ev event, drain func()) {
	deadline := time.UnixMilli(ev.DeadlineMs)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-e.returnedChan(ev.RequestID):
	case <-timer.C:
		return
	}
	drained := make(chan struct{})
	go func() {
		drain()
		close(drained)
	}()
	select {
	case <-drained:
	case <-timer.C:
	}
	e.mu.Lock()
	delete(e.returned, ev.RequestID)
	e.mu.Unlock()
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

// Wrap returns handler, telling the extension when it has returned, so that the drain of its
// invocation starts then.
func Wrap[E, R any](e *Extension, handler func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		defer e.handlerReturned(ctx)
		return handler(ctx, ev)
	}
}

// DrainBefore returns handler, running drain after it and before the response: the fallback
// when no extension could register.
func DrainBefore[E, R any](handler func(context.Context, E) (R, error), drain func()) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		defer drain()
		return handler(ctx, ev)
	}
}

// Start registers an internal extension called name and starts the Lambda runtime with handler:
// after each invocation's response it runs afterEach (see the package comment), and when Lambda
// shuts the execution environment down it runs atShutdown. Registering an extension is what
// makes Lambda send the runtime SIGTERM before it ends the process, with 500 ms to spare for
// internal extensions; atShutdown must fit in that. Start does not return.
func Start[E, R any](name string, handler func(context.Context, E) (R, error), afterEach, atShutdown func(), logger *slog.Logger) {
	ext, err := Register(context.Background(), os.Getenv("AWS_LAMBDA_RUNTIME_API"), name)
	if err != nil {
		logger.Warn("no internal extension: work after each answer is done before it", "error", err)
		lambda.Start(DrainBefore(handler, afterEach))
		return
	}
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		atShutdown()
		os.Exit(0)
	}()
	go func() {
		if err := ext.Run(context.Background(), afterEach); err != nil {
			// Lambda will not end invocations without this extension; nothing to fall back to.
			logger.Error("internal extension stopped", "error", err)
		}
	}()
	lambda.Start(Wrap(ext, handler))
}
