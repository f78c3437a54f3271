package samtest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The real binaries, built for this machine as make invoke builds them, once per test run.
var binaries = struct {
	mu    sync.Mutex
	dir   string
	built map[string]error
}{built: map[string]error{}}

func TestMain(m *testing.M) {
	code := m.Run()
	if binaries.dir != "" {
		os.RemoveAll(binaries.dir)
	}
	os.Exit(code)
}

// mustBinary builds the main package at pkg (relative to the repository) and returns the path of
// its binary, named bootstrap in a directory named after the package, as make invoke does.
func mustBinary(t *testing.T, pkg string) string {
	t.Helper()
	binaries.mu.Lock()
	defer binaries.mu.Unlock()
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "samtest-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir = dir
	}
	out := filepath.Join(binaries.dir, filepath.Base(pkg), "bootstrap")
	err, done := binaries.built[pkg]
	if !done {
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, "./"+pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, buildErr := cmd.CombinedOutput(); buildErr != nil {
			err = fmt.Errorf("go build ./%s: %v\n%s", pkg, buildErr, b)
		}
		binaries.built[pkg] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lambdarunReport is what tools/lambdarun -report writes.
type lambdarunReport struct {
	Runs []struct {
		InitDurationMs float64         `json:"initDurationMs"`
		InitError      json.RawMessage `json:"initError"`
		Invocations    []struct {
			DurationMs float64         `json:"durationMs"`
			Response   json.RawMessage `json:"response"`
			ErrorType  string          `json:"errorType"`
			Error      json.RawMessage `json:"error"`
		} `json:"invocations"`
	} `json:"runs"`
}

// mustInvoke runs bootstrap under tools/lambdarun, as make invoke does, with event and the
// environment env (added to this process's), and returns the responses of its n invocations.
// It fails the test when init or an invocation fails.
func mustInvoke(t *testing.T, bootstrap string, event []byte, env []string, n int) []json.RawMessage {
	t.Helper()
	rep := runLambda(t, bootstrap, event, env, n)
	var out []json.RawMessage
	for i, inv := range rep.Runs[0].Invocations {
		if rep.Runs[0].InitError != nil || inv.ErrorType != "" {
			t.Fatalf("lambdarun %s: init error %s; invocation %d: %s %s", bootstrap, rep.Runs[0].InitError, i, inv.ErrorType, inv.Error)
		}
		out = append(out, inv.Response)
	}
	return out
}

// runLambda runs bootstrap under tools/lambdarun with event and the environment env (added to
// this process's) for n invocations, and returns lambdarun's report, whatever the function
// answered (a REST authorizer's "Unauthorized" is an invocation error).
func runLambda(t *testing.T, bootstrap string, event []byte, env []string, n int) lambdarunReport {
	t.Helper()
	dir := t.TempDir()
	eventPath, reportPath := filepath.Join(dir, "event.json"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(eventPath, event, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mustBinary(t, "tools/lambdarun"), "-event", eventPath, "-report", reportPath, "-n", fmt.Sprint(n), bootstrap)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	b, readErr := os.ReadFile(reportPath)
	if readErr != nil {
		t.Fatalf("lambdarun %s: %v %v\nstdout: %s\nstderr: %s", bootstrap, err, readErr, stdout, stderr.String())
	}
	var rep lambdarunReport
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("lambdarun report %s (%v)\nstderr: %s", b, err, stderr.String())
	}
	if r := rep.Runs[0]; r.InitError == nil && len(r.Invocations) != n {
		t.Fatalf("lambdarun: %d invocations, want %d\nstderr: %s", len(r.Invocations), n, stderr.String())
	}
	if r := rep.Runs[0]; r.InitError == nil {
		t.Logf("%s: init %.2f ms, first invoke %.2f ms", filepath.Base(filepath.Dir(bootstrap)), r.InitDurationMs, r.Invocations[0].DurationMs)
	}
	return rep
}

// proxyResponse is the part of an API Gateway proxy response (REST or HTTP API) the tests read.
type proxyResponse struct {
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
	IsBase64Encoded bool              `json:"isBase64Encoded"`
}

func mustProxyResponse(t *testing.T, raw json.RawMessage) proxyResponse {
	t.Helper()
	var r proxyResponse
	if err := json.Unmarshal(raw, &r); err != nil || r.StatusCode == 0 {
		t.Fatalf("not a proxy response: %s (%v)", raw, err)
	}
	return r
}

// text is the body as the client reads it: base64 decoded, then gunzipped when it says so.
func (r proxyResponse) text(t *testing.T) string {
	t.Helper()
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(r.Body); err != nil {
			t.Fatalf("isBase64Encoded, but: %v", err)
		}
	}
	if r.Headers["Content-Encoding"] == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return string(body)
}

// TestOtherFunctionEvents runs the binaries of the functions that serve no route of the table
// on their events: the example API's backend and the dashboard (whose answers, binary when
// gzipped, API Gateway gets base64 encoded).
func TestOtherFunctionEvents(t *testing.T) {
	for _, dir := range []string{"example-whoami", "dashboard"} {
		bootstrap := mustBinary(t, "functions/"+dir)
		for _, tc := range eventCases {
			if tc.function != dir {
				continue
			}
			t.Run(tc.file, func(t *testing.T) {
				event, err := os.ReadFile(filepath.Join(root, "events", tc.file))
				if err != nil {
					t.Fatal(err)
				}
				resp := mustProxyResponse(t, mustInvoke(t, bootstrap, event, nil, 1)[0])
				checkAnswer(t, tc, resp.StatusCode, resp.text(t))
			})
		}
	}
}
