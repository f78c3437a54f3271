package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binaries builds the testdata functions once per test binary, as make build does but for the
// host.
var binaries = struct {
	once sync.Once
	dir  string
	err  error
}{}

func mustBootstrap(t *testing.T, name string) string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "lambdarun-test-")
		for _, fn := range []string{"minimal", "faulty", "afterresponse", "alongside"} {
			if binaries.err != nil {
				return
			}
			cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o",
				filepath.Join(binaries.dir, fn, "bootstrap"), "./testdata/"+fn)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", fn, err, out)
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return filepath.Join(binaries.dir, name, "bootstrap")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

type result struct {
	code   int
	stdout string
	stderr string
	report report
}

// mustRun runs lambdarun in-process with a report file and returns what it produced.
func mustRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	reportPath := filepath.Join(t.TempDir(), "report.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"-report", reportPath}, args...), env,
		strings.NewReader(`{"hello":"world"}`), &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	if b, err := os.ReadFile(reportPath); err == nil {
		if err := json.Unmarshal(b, &r.report); err != nil {
			t.Fatalf("report: %v\n%s", err, b)
		}
	}
	return r
}

func TestInvokeResponses(t *testing.T) {
	r := mustRun(t, os.Environ(), "-n", "3", mustBootstrap(t, "minimal"))
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if want := strings.Repeat(`{"hello":"world"}`+"\n", 3); r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if len(r.report.Runs) != 1 || r.report.Function != "minimal" {
		t.Fatalf("report %+v", r.report)
	}
	run := r.report.Runs[0]
	if len(run.Invocations) != 3 || run.InitDurationMs <= 0 {
		t.Fatalf("run %+v", run)
	}
	ids := map[string]bool{}
	for _, inv := range run.Invocations {
		var resp bytes.Buffer
		json.Compact(&resp, inv.Response)
		if inv.DurationMs <= 0 || resp.String() != `{"hello":"world"}` || inv.ErrorType != "" {
			t.Errorf("invocation %s: %.3f ms, response %s, error %s", inv.RequestID, inv.DurationMs, inv.Response, inv.Error)
		}
		ids[inv.RequestID] = true
	}
	if len(ids) != 3 {
		t.Errorf("request ids %v: want 3 distinct", ids)
	}
	if strings.Count(r.stderr, "REPORT RequestId: ") != 3 || strings.Count(r.stderr, "Init Duration: ") != 1 || !strings.Contains(r.stderr, "warm invoke median") {
		t.Errorf("stderr lacks the REPORT lines or the warm summary:\n%s", r.stderr)
	}
}

// TestInvokeRuns: each run is a cold start of its own.
func TestInvokeRuns(t *testing.T) {
	r := mustRun(t, os.Environ(), "-runs", "3", "-n", "2", mustBootstrap(t, "minimal"))
	if r.code != exitOK || len(r.report.Runs) != 3 {
		t.Fatalf("exit %d, %d runs; stderr:\n%s", r.code, len(r.report.Runs), r.stderr)
	}
	for _, run := range r.report.Runs {
		if run.InitDurationMs <= 0 || len(run.Invocations) != 2 {
			t.Errorf("run %+v", run)
		}
	}
	if strings.Count(r.stderr, "Init Duration: ") != 3 || !strings.Contains(r.stderr, "3 run(s): init median") || !strings.Contains(r.stderr, "over 3") {
		t.Errorf("stderr lacks a cold start per run or the summary:\n%s", r.stderr)
	}
}

func TestInvokeFailures(t *testing.T) {
	faulty := mustBootstrap(t, "faulty")
	for _, tc := range []struct {
		fault     string
		args      []string
		init      bool   // the failure is an init failure
		errorType string // of the init error or the invocation
	}{
		{fault: "init-error", init: true, errorType: "InitFailed"},
		{fault: "exit-init", init: true, errorType: "Runtime.ExitError"},
		{fault: "error", errorType: "errorString"},
		{fault: "panic", errorType: "string"}, // aws-lambda-go reports a panic by the type of its value
		{fault: "sleep", args: []string{"-timeout", "300ms"}, errorType: "Sandbox.Timedout"},
		{fault: "big", errorType: "Function.ResponseSizeTooLarge"},
	} {
		t.Run(tc.fault, func(t *testing.T) {
			r := mustRun(t, append(os.Environ(), "LAMBDARUN_FAULT="+tc.fault), append(tc.args, faulty)...)
			if r.code != exitFunction {
				t.Errorf("exit %d, want %d", r.code, exitFunction)
			}
			if len(r.report.Runs) != 1 {
				t.Fatalf("%d runs, want 1", len(r.report.Runs))
			}
			var got []byte
			if run := r.report.Runs[0]; tc.init {
				got = run.InitError
			} else if len(run.Invocations) == 1 {
				got = run.Invocations[0].Error
			}
			var e struct{ ErrorType, ErrorMessage string }
			if err := json.Unmarshal(got, &e); err != nil || e.ErrorType != tc.errorType {
				t.Errorf("error %s (%v), want type %s\nstderr:\n%s", got, err, tc.errorType, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.errorType) {
				t.Errorf("stdout %q does not show the error", r.stdout)
			}
		})
	}
}

// TestInvokeEnvironment: the function inherits the environment, gets Lambda's variables, and
// -env wins over both.
func TestInvokeEnvironment(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "TABLE_NAME=inherited", "AWS_REGION=eu-west-1", "LAMBDARUN_FAULT=none"}
	r := mustRun(t, env, "-env", "LAMBDARUN_FAULT=", "-name", "probe", mustBootstrap(t, "minimal"))
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	// The minimal function cannot print its environment, so check what lambdarun hands it.
	cmdEnv := lambdaEnv(t, env)
	for _, want := range []string{"TABLE_NAME=inherited", "AWS_REGION=eu-west-1", "AWS_LAMBDA_FUNCTION_NAME=probe", "AWS_LAMBDA_LOG_FORMAT=JSON", "LAMBDARUN_FAULT="} {
		k, v, _ := strings.Cut(want, "=")
		if got := lookup(cmdEnv, k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(lookup(cmdEnv, "AWS_LAMBDA_RUNTIME_API"), "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API=%q", lookup(cmdEnv, "AWS_LAMBDA_RUNTIME_API"))
	}
}

// lambdaEnv runs lambdarun on a shell script that prints its environment.
func lambdaEnv(t *testing.T, env []string) []string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "probe")
	os.MkdirAll(dir, 0o755)
	script := filepath.Join(dir, "bootstrap")
	// A bootstrap may be any executable; this one reports its environment as an init error.
	body := "#!/bin/sh\nenv > env.txt\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, env, "-env", "LAMBDARUN_FAULT=", "-name", "probe", script)
	if r.code != exitFunction {
		t.Fatalf("exit %d", r.code)
	}
	b, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestRuntimeAPIProtocol(t *testing.T) {
	api := newRuntimeAPI("arn:aws:lambda:us-east-1:123456789012:function:f")
	srv := httptest.NewServer(api.handler())
	defer srv.Close()
	base := srv.URL + apiPrefix

	post := func(path, body string) int {
		t.Helper()
		resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if got := post("/invocation/nope/response", "{}"); got != http.StatusBadRequest {
		t.Errorf("response for an unknown request id: %d, want 400", got)
	}

	inv := &invocation{id: newRequestID(), event: []byte(`{"a":1}`), deadline: time.Now().Add(time.Minute), done: make(chan struct{})}
	go func() { api.pending <- inv }()
	resp, err := http.Get(base + "/invocation/next")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, h := range []string{headerRequestID, headerDeadline, headerFunctionARN, headerTraceID} {
		if resp.Header.Get(h) == "" {
			t.Errorf("next: no %s header", h)
		}
	}
	if resp.Header.Get(headerRequestID) != inv.id {
		t.Errorf("request id %q, want %q", resp.Header.Get(headerRequestID), inv.id)
	}
	if got := post("/init/error", `{"errorType":"Late"}`); got != http.StatusForbidden {
		t.Errorf("init/error after next: %d, want 403", got)
	}
	if got := post("/invocation/"+inv.id+"/response", `{"ok":true}`); got != http.StatusAccepted {
		t.Errorf("response: %d, want 202", got)
	}
	<-inv.done
	if string(inv.response) != `{"ok":true}` {
		t.Errorf("response %s", inv.response)
	}
	if got := post("/invocation/"+inv.id+"/response", `{}`); got != http.StatusBadRequest {
		t.Errorf("second response for one invocation: %d, want 400", got)
	}
	if got := post("/invocation/"+inv.id+"/nonsense", `{}`); got != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d, want 404", got)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"-n", "0", "x"}, {"-log-format", "XML", "x"}, {"-event", "/does/not/exist", "x"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, nil, strings.NewReader("{}"), &bytes.Buffer{}, &stderr); code != exitUsage {
			t.Errorf("run(%q) = %d, want %d", args, code, exitUsage)
		}
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"x"}, nil, strings.NewReader("not json"), &bytes.Buffer{}, &stderr); code != exitUsage {
		t.Errorf("an event that is not JSON: exit %d, want %d", code, exitUsage)
	}
}

// TestInvokeEvents: with -events, invocation i of every run gets line i of the file, cycling, so
// a measurement can present a token the function has not seen at each call.
func TestInvokeEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, os.Environ(), "-events", path, "-n", "4", "-runs", "2", mustBootstrap(t, "minimal"))
	if r.code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if want := strings.Repeat("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":1}\n", 2); r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if err := os.WriteFile(path, []byte("{\"n\":1}\nnot json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, os.Environ(), "-events", path, mustBootstrap(t, "minimal")); r.code != exitUsage || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("a bad events file: exit %d, %s; want a usage error naming line 2", r.code, r.stderr)
	}
}

// TestExtensionsAPI: a function that registers an internal extension gets each invocation's
// event on it; the caller's duration ends with the response, the post-response duration covers
// the extension's work, and the next invocation starts only after it (each answer counts the
// drains finished before it). Registering after init is refused, as Lambda refuses it.
func TestExtensionsAPI(t *testing.T) {
	bin := mustBootstrap(t, "afterresponse")
	r := mustRun(t, os.Environ(), "-n", "3", "-env", "DRAIN_MS=150", "-env", "REGISTER_LATE=1", bin)
	if r.code != exitOK || len(r.report.Runs) != 1 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for i, inv := range r.report.Runs[0].Invocations {
		var got struct {
			DrainedBefore       int  `json:"drainedBefore"`
			LateRegisterRefused bool `json:"lateRegisterRefused"`
		}
		if err := json.Unmarshal(inv.Response, &got); err != nil {
			t.Fatal(err)
		}
		if got.DrainedBefore != i {
			t.Errorf("invocation %d started after %d drains; want %d", i, got.DrainedBefore, i)
		}
		if !got.LateRegisterRefused {
			t.Errorf("invocation %d: registering after init was accepted", i)
		}
		// The drain starts once the handler has returned, a moment before the response reaches
		// lambdarun, so the invocation as a whole lasts at least its 150 ms.
		if inv.PostResponseMs == nil {
			t.Errorf("invocation %d: no post-response duration", i)
		} else if total := inv.DurationMs + *inv.PostResponseMs; total < 150 {
			t.Errorf("invocation %d: duration + post-response %.2f ms; want at least the drain's 150", i, total)
		}
	}
	if !strings.Contains(r.stderr, "Post-response: ") {
		t.Errorf("no Post-response in the REPORT lines:\n%s", r.stderr)
	}
	// At the end of the run the function gets SIGTERM, as on Lambda, and its handler runs.
	if !strings.Contains(r.stderr, "afterresponse: SIGTERM after 3 drains") || !strings.Contains(r.stderr, "shut down after SIGTERM") {
		t.Errorf("no graceful shutdown:\n%s", r.stderr)
	}
}

// TestNoExtensionNoPostResponse: without extensions nothing changes: no post-response figure.
func TestNoExtensionNoPostResponse(t *testing.T) {
	r := mustRun(t, os.Environ(), "-n", "2", mustBootstrap(t, "minimal"))
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	for _, inv := range r.report.Runs[0].Invocations {
		if inv.PostResponseMs != nil {
			t.Errorf("post-response %v ms without an extension", *inv.PostResponseMs)
		}
	}
}

// TestShutdownWork: a function under lambdaext.Start (the authorizer's wiring) registers an
// extension subscribed to no event, which makes lambdarun, like Lambda, send SIGTERM at the end;
// its work ran alongside each invocation and its final work runs at SIGTERM. No extension holds
// the invocations open, so there is no post-response figure.
func TestShutdownWork(t *testing.T) {
	r := mustRun(t, os.Environ(), "-n", "3", mustBootstrap(t, "alongside"))
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "alongside: final work after 3 works alongside 3 invocations") || !strings.Contains(r.stderr, "shut down after SIGTERM") {
		t.Errorf("no final work at SIGTERM:\n%s", r.stderr)
	}
	for _, inv := range r.report.Runs[0].Invocations {
		if inv.PostResponseMs != nil {
			t.Errorf("post-response %v ms without an extension subscribed to INVOKE", *inv.PostResponseMs)
		}
	}
}
