package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The Lambda Runtime API, version 2018-06-01, as documented in
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html and as aws-lambda-go's
// lambda/runtime_api_client.go uses it.
const (
	apiPrefix = "/2018-06-01/runtime"

	headerRequestID   = "Lambda-Runtime-Aws-Request-Id"
	headerDeadline    = "Lambda-Runtime-Deadline-Ms"
	headerFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
	headerTraceID     = "Lambda-Runtime-Trace-Id"
	headerErrorType   = "Lambda-Runtime-Function-Error-Type"
	// aws-lambda-go sends these as trailers when reading a streamed response fails midway.
	trailerErrorType = "Lambda-Runtime-Function-Error-Type"
	trailerErrorBody = "Lambda-Runtime-Function-Error-Body"

	// maxResponse is Lambda's limit on a synchronous response payload (6 MB).
	maxResponse = 6 * 1024 * 1024
)

// invocation is one event handed to the function and what became of it.
type invocation struct {
	id        string
	event     []byte
	deadline  time.Time
	delivered time.Time // when /next answered with the event

	done      chan struct{} // closed when the response or error arrived
	finished  time.Time
	response  []byte
	errorType string // "" for a response
	errorBody []byte
}

// runtimeAPI serves the Runtime API to one function process, one invocation at a time, as
// Lambda does for a function without a multi-concurrency setting.
type runtimeAPI struct {
	functionARN string
	traceID     func() string

	pending chan *invocation // the next event, taken by a GET /next

	mu          sync.Mutex
	firstNext   time.Time // when the runtime first asked for an event: the end of init
	current     *invocation
	initError   []byte
	initErrType string

	initDone chan struct{} // closed by the first /next or by /init/error
	initOnce sync.Once

	ext extensions // the Extensions API, for extensions the function registers
}

func newRuntimeAPI(functionARN string) *runtimeAPI {
	return &runtimeAPI{
		functionARN: functionARN,
		traceID:     newTraceID,
		pending:     make(chan *invocation),
		initDone:    make(chan struct{}),
	}
}

// newAPI returns the Runtime and Extensions APIs for a function called name.
func newAPI(functionARN, name string) *runtimeAPI {
	a := newRuntimeAPI(functionARN)
	a.ext.functionName = name
	return a
}

func (a *runtimeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"/invocation/next", a.next)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/response", a.response)
	mux.HandleFunc("POST "+apiPrefix+"/invocation/{id}/error", a.invocationError)
	mux.HandleFunc("POST "+apiPrefix+"/init/error", a.initErr)
	mux.HandleFunc("POST "+extensionPrefix+"/register", a.ext.register)
	mux.HandleFunc("GET "+extensionPrefix+"/event/next", a.ext.next)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusNotFound, "InvalidRequest", fmt.Sprintf("no Runtime API endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// next blocks until there is an event for the runtime, like the real API: the runtime is frozen
// between invocations there, and here it simply waits.
func (a *runtimeAPI) next(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.firstNext.IsZero() {
		a.firstNext = time.Now()
	}
	a.mu.Unlock()
	a.initOnce.Do(func() { close(a.initDone) })

	select {
	case inv := <-a.pending:
		a.mu.Lock()
		a.current = inv
		inv.delivered = time.Now()
		a.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set(headerRequestID, inv.id)
		h.Set(headerDeadline, strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set(headerFunctionARN, a.functionARN)
		h.Set(headerTraceID, a.traceID())
		w.WriteHeader(http.StatusOK)
		w.Write(inv.event)
	case <-r.Context().Done():
	}
}

func (a *runtimeAPI) response(w http.ResponseWriter, r *http.Request) {
	inv, ok := a.inFlight(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResponse))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeStatus(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", fmt.Sprintf("response payload exceeds %d bytes", maxResponse))
		a.finish(inv, nil, "Function.ResponseSizeTooLarge", errorJSON("Function.ResponseSizeTooLarge", "Response payload size exceeded maximum allowed payload size (6291556 bytes)."))
		return
	case err != nil:
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	// A failure while streaming the response arrives in trailers, after the body.
	if t := r.Trailer.Get(trailerErrorType); t != "" {
		writeStatus(w, http.StatusAccepted, "", "")
		a.finish(inv, nil, t, decodeTrailerBody(r.Trailer.Get(trailerErrorBody), t))
		return
	}
	writeStatus(w, http.StatusAccepted, "", "")
	a.finish(inv, body, "", nil)
}

func (a *runtimeAPI) invocationError(w http.ResponseWriter, r *http.Request) {
	inv, ok := a.inFlight(w, r)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResponse))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	errType := r.Header.Get(headerErrorType)
	if errType == "" {
		errType = errorTypeOf(body)
	}
	writeStatus(w, http.StatusAccepted, "", "")
	a.finish(inv, nil, errType, body)
}

func (a *runtimeAPI) initErr(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxResponse))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, "InvalidRequest", err.Error())
		return
	}
	a.mu.Lock()
	if !a.firstNext.IsZero() {
		a.mu.Unlock()
		writeStatus(w, http.StatusForbidden, "InvalidStateTransition", "init/error after the first invocation/next")
		return
	}
	a.initError = body
	a.initErrType = r.Header.Get(headerErrorType)
	if a.initErrType == "" {
		a.initErrType = errorTypeOf(body)
	}
	a.mu.Unlock()
	writeStatus(w, http.StatusAccepted, "", "")
	a.initOnce.Do(func() { close(a.initDone) })
}

// inFlight returns the invocation the request's id names, answering 400 when it is not the one in
// flight (unknown, or already answered).
func (a *runtimeAPI) inFlight(w http.ResponseWriter, r *http.Request) (*invocation, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	inv := a.current
	if inv == nil || inv.id != r.PathValue("id") {
		writeStatus(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("no invocation %q in flight", r.PathValue("id")))
		return nil, false
	}
	a.current = nil
	return inv, true
}

func (a *runtimeAPI) finish(inv *invocation, response []byte, errType string, errBody []byte) {
	inv.finished = time.Now()
	inv.response, inv.errorType, inv.errorBody = response, errType, errBody
	close(inv.done)
}

// initState returns when init ended (zero if it has not) and the init error, if the runtime
// reported one.
func (a *runtimeAPI) initState() (end time.Time, errType string, errBody []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstNext, a.initErrType, a.initError
}

// writeStatus answers the runtime as the real API does: a StatusResponse for 202, an
// ErrorResponse otherwise.
func writeStatus(w http.ResponseWriter, code int, errType, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code == http.StatusAccepted {
		io.WriteString(w, `{"status":"OK"}`)
		return
	}
	w.Write(errorJSON(errType, msg))
}

func errorJSON(errType, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, errType})
	return b
}

func errorTypeOf(body []byte) string {
	var e struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal(body, &e) == nil && e.ErrorType != "" {
		return e.ErrorType
	}
	return "Unhandled"
}

func decodeTrailerBody(b64, errType string) []byte {
	if b, err := base64.StdEncoding.DecodeString(b64); err == nil && json.Valid(b) {
		return b
	}
	return errorJSON(errType, "the function failed while streaming its response")
}

// newRequestID returns a random id in the UUID form Lambda uses.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceID returns an X-Ray trace header, unsampled.
func newTraceID() string {
	var b [20]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[24:40])
}
