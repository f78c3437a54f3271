// Package lambdaext runs a Go Lambda function with work that keeps an instance's books: work
// that runs alongside each invocation's handler (the answer waits for both), and a final round
// when Lambda shuts the instance down.
//
// Lambda sends the runtime SIGTERM before it ends an execution environment only when an
// extension is registered; without one the process gets SIGKILL and whatever it buffered is
// lost. Start registers an internal extension (Lambda Extensions API, 2020-01-01) subscribed to
// no event, as aws-lambda-go's WithEnableSIGTERM does: its only effect is that SIGTERM, with
// 500 ms to spare, which Start catches to do the final work. An extension subscribed to INVOKE
// could instead hold each invocation open after its response, but every invocation would then
// pay the extension's handshake (measured under tools/lambdarun: 0.7 ms on a 3 ms invocation),
// and a failed extension loop would time every invocation out; work that is due only now and
// then is cheaper run in parallel with the handler.
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
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

const (
	apiVersion       = "2020-01-01"
	headerName       = "Lambda-Extension-Name"
	headerIdentifier = "Lambda-Extension-Identifier"

	// shutdownBudget is the part of Lambda's 500 ms after SIGTERM given to the final work.
	shutdownBudget = 400 * time.Millisecond
)

// Work is what a function does besides its handler: final is false alongside an invocation (the
// work may find there is nothing to do yet), true when nothing may be left behind (at SIGTERM,
// after a panic, or on every invocation when no extension could register). ctx ends when the
// time for it has run out.
type Work func(ctx context.Context, final bool)

// Extension is a registered internal extension.
type Extension struct {
	base   string
	id     string
	client *http.Client
}

// Register registers an internal extension called name with the Extensions API at addr (the
// value of AWS_LAMBDA_RUNTIME_API), subscribed to events (none: only SIGTERM at shutdown). Call
// it during init, before lambda.Start: Lambda refuses internal extensions after that.
func Register(ctx context.Context, addr, name string, events ...string) (*Extension, error) {
	if addr == "" {
		return nil, errors.New("lambdaext: AWS_LAMBDA_RUNTIME_API is not set")
	}
	e := &Extension{
		base:   "http://" + addr + "/" + apiVersion + "/extension/",
		client: &http.Client{}, // event/next blocks until the next event: no timeout
	}
	if events == nil {
		events = []string{}
	}
	body, _ := json.Marshal(map[string][]string{"events": events})
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

// Event is what event/next answers; only the fields used here.
type Event struct {
	EventType  string `json:"eventType"`
	RequestID  string `json:"requestId"`
	DeadlineMs int64  `json:"deadlineMs"`
}

// Next tells Lambda the extension is done with its last event (or with its init) and waits for
// the next one. An extension subscribed to no event calls it once, and it never returns.
func (e *Extension) Next(ctx context.Context) (Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"event/next", nil)
	if err != nil {
		return Event{}, err
	}
	req.Header.Set(headerIdentifier, e.id)
	res, err := e.client.Do(req)
	if err != nil {
		return Event{}, fmt.Errorf("lambdaext: event/next: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		io.Copy(io.Discard, res.Body)
		return Event{}, fmt.Errorf("lambdaext: event/next: %s", res.Status)
	}
	var ev Event
	if err := json.NewDecoder(res.Body).Decode(&ev); err != nil {
		return Event{}, fmt.Errorf("lambdaext: event/next: %w", err)
	}
	return ev, nil
}

// Alongside returns handler, running work(ctx, final) in parallel with it: the answer waits for
// both, so the work never outlives its invocation (Lambda may freeze the instance right after),
// and work that overlaps the handler's own I/O adds no round trip of latency. A panicking
// handler does the final work before the panic goes on: aws-lambda-go then ends the process,
// with no SIGTERM.
func Alongside[E, R any](handler func(context.Context, E) (R, error), work Work, final bool) func(context.Context, E) (R, error) {
	return func(ctx context.Context, ev E) (R, error) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			work(ctx, final)
		}()
		defer func() {
			if r := recover(); r != nil {
				<-done
				finalWork(work)
				panic(r)
			}
		}()
		resp, err := handler(ctx, ev)
		<-done
		return resp, err
	}
}

// finalWork does the work with nothing left behind, within shutdownBudget.
func finalWork(work Work) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
	defer cancel()
	work(ctx, true)
}

// Start starts the Lambda runtime with handler, work(ctx, false) alongside each invocation
// (Alongside), and work(ctx, true) at SIGTERM, which it enables by registering an internal
// extension called name. Without the Extensions API (registration fails) there is no SIGTERM, so
// every invocation does the final work instead. It does not return.
func Start[E, R any](name string, handler func(context.Context, E) (R, error), work Work, logger *slog.Logger) {
	ext, err := Register(context.Background(), os.Getenv("AWS_LAMBDA_RUNTIME_API"), name)
	if err != nil {
		logger.Warn("no internal extension, so no SIGTERM at shutdown: every invocation does the final work", "error", err)
		lambda.Start(Alongside(handler, work, true))
		return
	}
	sigterm := make(chan os.Signal, 1)
	signal.Notify(sigterm, syscall.SIGTERM)
	go func() {
		<-sigterm
		finalWork(work)
		os.Exit(0)
	}()
	go ext.Next(context.Background()) // the end of the extension's init; never answered
	lambda.Start(Alongside(handler, work, false))
}
