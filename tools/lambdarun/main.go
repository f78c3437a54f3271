// Command lambdarun runs a Lambda function's real bootstrap binary on this machine, without
// Docker or the SAM CLI: it serves the Lambda Runtime API on 127.0.0.1, starts the binary with
// AWS_LAMBDA_RUNTIME_API pointing at it, hands it an event (as many times as asked), and prints
// each response on stdout, the function's logs on stderr, and Lambda-style REPORT lines with the
// init and invoke durations.
//
//	lambdarun [flags] <bootstrap> [args...]
//
// The function inherits lambdarun's environment (TABLE_NAME, AWS_REGION,
// AWS_ENDPOINT_URL_DYNAMODB, credentials, ...) plus the variables Lambda itself sets
// (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_LOG_FORMAT, ...). The exit status is 0 when every
// invocation answered, 1 when init or an invocation failed, 2 for a usage error.
//
// Init runs from starting the process to its first request for an event (and, for extensions
// the function registers, theirs); an invocation's Duration runs from handing over the event to
// receiving the response: what the caller waits for. A function with an internal extension
// (Lambda Extensions API, see extensionsapi.go) gets each INVOKE event there too, and its
// Post-response figure is how long the extension kept the invocation open after the response
// (Lambda counts it in its billed duration); at the end of a run such a function gets SIGTERM
// and 500 ms, as on Lambda. Invocations after the first (-n) are warm, as in a reused Lambda execution
// environment; -runs repeats the whole cold start, for init figures that are not one sample.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr))
}

// shutdownGrace is how long Lambda lets a runtime with internal extensions run after SIGTERM.
const shutdownGrace = 500 * time.Millisecond

// Exit statuses of run.
const (
	exitOK       = 0
	exitFunction = 1 // init or an invocation failed
	exitUsage    = 2
)

type envFlags []string

func (e *envFlags) String() string { return strings.Join(*e, " ") }
func (e *envFlags) Set(kv string) error {
	if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", kv)
	}
	*e = append(*e, kv)
	return nil
}

type config struct {
	bootstrap   string
	args        []string
	event       []byte
	events      [][]byte // with -events: invocation i of each run gets events[i % len(events)]
	invocations int
	runs        int
	timeout     time.Duration
	initTimeout time.Duration
	name        string
	memoryMB    int
	logFormat   string
	env         []string
	reportPath  string
	noExt       bool // refuse extension registrations, as an environment without the Extensions API
}

// run is the whole command; environ is the environment the function inherits.
func run(ctx context.Context, args, environ []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdin, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "lambdarun:", err)
		}
		return exitUsage
	}
	rep := &report{Function: cfg.name}
	for i := 0; i < cfg.runs && !rep.failed(); i++ {
		r, err := invoke(ctx, cfg, environ, stdout, stderr)
		if r != nil {
			rep.Runs = append(rep.Runs, *r)
		}
		if err != nil {
			fmt.Fprintln(stderr, "lambdarun:", err)
			return exitFunction
		}
	}
	if line := rep.summary(); line != "" {
		fmt.Fprintln(stderr, line)
	}
	if cfg.reportPath != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(cfg.reportPath, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "lambdarun:", err)
			return exitFunction
		}
	}
	if rep.failed() {
		return exitFunction
	}
	return exitOK
}

func parseFlags(args []string, stdin io.Reader, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("lambdarun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lambdarun [flags] <bootstrap> [args...]")
		fs.PrintDefaults()
	}
	var cfg config
	var eventPath string
	var env envFlags
	var eventsPath string
	fs.StringVar(&eventPath, "event", "-", "event JSON file; - reads stdin")
	fs.StringVar(&eventsPath, "events", "", "file of JSON events, one per line: invocation i of each run gets event i (cycling); replaces -event")
	fs.IntVar(&cfg.invocations, "n", 1, "invocations of the event per run; the ones after the first are warm")
	fs.IntVar(&cfg.runs, "runs", 1, "cold starts: each run starts a new process and invokes it -n times")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "function timeout (Lambda-Runtime-Deadline-Ms)")
	fs.DurationVar(&cfg.initTimeout, "init-timeout", 10*time.Second, "longest init, as Lambda allows")
	fs.StringVar(&cfg.name, "name", "", "function name (default: the name of the bootstrap's directory)")
	fs.IntVar(&cfg.memoryMB, "memory", 256, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE in MB")
	fs.StringVar(&cfg.logFormat, "log-format", "JSON", "AWS_LAMBDA_LOG_FORMAT: JSON or Text")
	fs.Var(&env, "env", "KEY=VALUE for the function's environment (repeatable); wins over the inherited one")
	fs.BoolVar(&cfg.noExt, "no-extensions", false, "refuse extension registrations (403), to run a function without its extensions")
	fs.StringVar(&cfg.reportPath, "report", "", "also write the durations, responses and errors as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return cfg, errors.New("no bootstrap binary given")
	}
	if cfg.invocations < 1 || cfg.runs < 1 {
		return cfg, errors.New("-n and -runs: want at least 1")
	}
	if cfg.logFormat != "JSON" && cfg.logFormat != "Text" {
		return cfg, errors.New("-log-format: want JSON or Text")
	}
	cfg.bootstrap, cfg.args, cfg.env = fs.Arg(0), fs.Args()[1:], env
	if cfg.name == "" {
		cfg.name = filepath.Base(filepath.Dir(cfg.bootstrap))
	}
	var err error
	if eventsPath != "" {
		b, err := os.ReadFile(eventsPath)
		if err != nil {
			return cfg, err
		}
		for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if !json.Valid([]byte(line)) {
				return cfg, fmt.Errorf("%s: line %d is not a JSON event", eventsPath, i+1)
			}
			cfg.events = append(cfg.events, []byte(line))
		}
		cfg.event = cfg.events[0]
		return cfg, nil
	}
	if eventPath == "-" {
		cfg.event, err = io.ReadAll(stdin)
	} else {
		cfg.event, err = os.ReadFile(eventPath)
	}
	if err != nil {
		return cfg, err
	}
	if !json.Valid(cfg.event) {
		return cfg, fmt.Errorf("event %s is not valid JSON", eventPath)
	}
	return cfg, nil
}

// report is what -report writes: one runReport per cold start.
type report struct {
	Function string      `json:"function"`
	Runs     []runReport `json:"runs"`
}

type runReport struct {
	InitDurationMs float64            `json:"initDurationMs"`
	InitError      json.RawMessage    `json:"initError,omitempty"`
	Invocations    []invocationReport `json:"invocations"`
}

type invocationReport struct {
	RequestID  string  `json:"requestId"`
	DurationMs float64 `json:"durationMs"` // until the runtime posted the response: what the caller waits for
	// PostResponseMs is how long the function's extensions kept the invocation open after the
	// response (Lambda's post-runtime extension duration); nil without extensions.
	PostResponseMs *float64        `json:"postResponseMs,omitempty"`
	Response       json.RawMessage `json:"response,omitempty"`
	ErrorType      string          `json:"errorType,omitempty"`
	Error          json.RawMessage `json:"error,omitempty"`
}

func (r *report) failed() bool {
	return slices.ContainsFunc(r.Runs, func(run runReport) bool { return run.failed() })
}

func (r *runReport) failed() bool {
	if r.InitError != nil || len(r.Invocations) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Invocations, func(i invocationReport) bool { return i.ErrorType != "" })
}

// summary returns the line that sums up several invocations or runs: medians of init, first
// and warm invocations, or "" for a single invocation or a failure.
func (r *report) summary() string {
	var inits, firsts, warm, post []float64
	for _, run := range r.Runs {
		if run.failed() {
			return ""
		}
		inits = append(inits, run.InitDurationMs)
		firsts = append(firsts, run.Invocations[0].DurationMs)
		for _, inv := range run.Invocations[1:] {
			warm = append(warm, inv.DurationMs)
			if inv.PostResponseMs != nil {
				post = append(post, *inv.PostResponseMs)
			}
		}
	}
	if len(inits)+len(warm) < 2 {
		return ""
	}
	line := fmt.Sprintf("lambdarun: %s: %d run(s): init %s; first invoke %s", r.Function, len(inits), stats(inits), stats(firsts))
	if len(warm) > 0 {
		line += fmt.Sprintf("; warm invoke %s over %d", stats(warm), len(warm))
	}
	if len(post) > 0 {
		line += fmt.Sprintf("; warm post-response %s", stats(post))
	}
	return line
}

// stats formats the median, minimum and maximum of some durations in milliseconds.
func stats(ms []float64) string {
	s := slices.Clone(ms)
	slices.Sort(s)
	if len(s) == 1 {
		return fmt.Sprintf("%.2f ms", s[0])
	}
	return fmt.Sprintf("median %.2f ms (min %.2f, max %.2f)", s[len(s)/2], s[0], s[len(s)-1])
}

// invoke starts the function once for cfg, invokes it cfg.invocations times and reports what
// happened. It returns an error only when lambdarun itself cannot work (no port, no binary);
// failures of the function are in the report.
func invoke(ctx context.Context, cfg config, environ []string, stdout, stderr io.Writer) (*runReport, error) {
	// The function's logs and lambdarun's lines share stderr.
	stderr = &lockedWriter{w: stderr}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	region := lookup(append(environ, cfg.env...), "AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	arn := fmt.Sprintf("arn:aws:lambda:%s:123456789012:function:%s", region, cfg.name)
	api := newAPI(arn, cfg.name)
	api.ext.closed = cfg.noExt
	srv := &http.Server{Handler: api.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	bootstrap, err := filepath.Abs(cfg.bootstrap)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bootstrap, cfg.args...)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.Env = append(slices.Clone(environ),
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME="+cfg.name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		fmt.Sprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%d", cfg.memoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+cfg.name,
		"AWS_LAMBDA_LOG_STREAM_NAME=lambdarun",
		"AWS_LAMBDA_LOG_FORMAT="+cfg.logFormat,
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"LAMBDA_TASK_ROOT="+cmd.Dir,
		"_HANDLER=bootstrap",
		"AWS_REGION="+region,
	)
	if lookup(cmd.Env, "AWS_DEFAULT_REGION") == "" {
		cmd.Env = append(cmd.Env, "AWS_DEFAULT_REGION="+region)
	}
	cmd.Env = append(cmd.Env, cfg.env...)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	var exts []*extension
	defer func() {
		// With extensions registered, Lambda sends the runtime SIGTERM and allows it 500 ms (for
		// internal extensions) before SIGKILL.
		select {
		case <-exited:
			return // it ended on its own (a crash, an exit)
		default:
		}
		if len(exts) > 0 {
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				fmt.Fprintf(stderr, "lambdarun: shut down after SIGTERM\n")
				return
			case <-time.After(shutdownGrace):
				fmt.Fprintf(stderr, "lambdarun: still running %s after SIGTERM: killed\n", shutdownGrace)
			}
		}
		cmd.Process.Kill()
		<-exited
	}()

	rep := &runReport{}
	fail := func(inv *invocation, errType, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		body := errorJSON(errType, msg)
		if inv == nil {
			rep.InitError = body
		} else {
			rep.Invocations = append(rep.Invocations, invocationReport{RequestID: inv.id, ErrorType: errType, Error: body})
		}
		fmt.Fprintf(stdout, "%s\n", body)
	}

	select {
	case <-api.initDone:
	case <-exited:
		fail(nil, "Runtime.ExitError", "Error: Runtime exited during init: %v", exitErr)
		return rep, nil
	case <-time.After(cfg.initTimeout):
		fail(nil, "Sandbox.Timedout", "Error: Init timed out after %s", cfg.initTimeout)
		return rep, nil
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	initEnd, initErrType, initErrBody := api.initState()
	if initErrBody != nil {
		// The runtime reported its init error and should exit; Lambda answers it to the invoke.
		rep.InitError = initErrBody
		fmt.Fprintf(stdout, "%s\n", initErrBody)
		fmt.Fprintf(stderr, "lambdarun: init error %s after %s\n", initErrType, ms(time.Since(start)))
		return rep, nil
	}
	// Init also waits for the extensions the function registered to ask for their first event.
	exts = api.ext.closeInit()
	if len(exts) > 0 {
		end, ok := waitReady(exts, time.After(cfg.initTimeout-time.Since(start)))
		if !ok {
			fail(nil, "Sandbox.Timedout", "Error: Init timed out after %s: an extension never asked for its first event", cfg.initTimeout)
			return rep, nil
		}
		initEnd = later(initEnd, end)
	}
	rep.InitDurationMs = millis(initEnd.Sub(start))

	for i := 0; i < cfg.invocations; i++ {
		event := cfg.event
		if len(cfg.events) > 0 {
			event = cfg.events[i%len(cfg.events)]
		}
		inv := &invocation{id: newRequestID(), event: event, deadline: time.Now().Add(cfg.timeout), done: make(chan struct{})}
		extDone := deliver(exts, inv, arn)
		select {
		case api.pending <- inv:
		case <-exited:
			fail(inv, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %v", inv.id, exitErr)
			return rep, nil
		case <-ctx.Done():
			return rep, ctx.Err()
		}
		select {
		case <-inv.done:
		case <-exited:
			fail(inv, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %v", inv.id, exitErr)
			return rep, nil
		case <-time.After(time.Until(inv.deadline)):
			fail(inv, "Sandbox.Timedout", "RequestId: %s Error: Task timed out after %.2f seconds", inv.id, cfg.timeout.Seconds())
			return rep, nil
		case <-ctx.Done():
			return rep, ctx.Err()
		}

		// The caller has the answer; the next invocation waits for the extensions too.
		var post time.Duration
		if holding(exts) {
			select {
			case <-extDone:
				post = time.Since(inv.finished)
			case <-exited:
				fail(inv, "Runtime.ExitError", "RequestId: %s Error: Runtime exited with error: %v", inv.id, exitErr)
				return rep, nil
			case <-time.After(time.Until(inv.deadline)):
				fail(inv, "Sandbox.Timedout", "RequestId: %s Error: Task timed out after %.2f seconds: an extension did not ask for its next event", inv.id, cfg.timeout.Seconds())
				return rep, nil
			case <-ctx.Done():
				return rep, ctx.Err()
			}
		}

		d := inv.finished.Sub(inv.delivered)
		ir := invocationReport{RequestID: inv.id, DurationMs: millis(d), ErrorType: inv.errorType}
		if holding(exts) {
			ir.PostResponseMs = ptr(millis(post))
		}
		out := inv.response
		if inv.errorType != "" {
			out = inv.errorBody
			ir.Error = asJSON(inv.errorBody)
		} else {
			ir.Response = asJSON(inv.response)
		}
		rep.Invocations = append(rep.Invocations, ir)
		stdout.Write(out)
		if !strings.HasSuffix(string(out), "\n") {
			io.WriteString(stdout, "\n")
		}
		line := fmt.Sprintf("REPORT RequestId: %s\tDuration: %s", inv.id, ms(d))
		if ir.PostResponseMs != nil {
			line += "\tPost-response: " + ms(post)
		}
		if i == 0 {
			line += "\tInit Duration: " + ms(initEnd.Sub(start))
		}
		if inv.errorType != "" {
			line += "\tError: " + inv.errorType
		}
		fmt.Fprintln(stderr, line)
	}
	return rep, nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// lookup returns the last value of key in an environment list, as exec uses it.
func lookup(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func asJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// holding reports whether one of exts takes INVOKE events, and so may hold invocations open.
func holding(exts []*extension) bool {
	return slices.ContainsFunc(exts, func(e *extension) bool { return e.invoke })
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func ptr[T any](v T) *T { return &v }

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", millis(d)) }
