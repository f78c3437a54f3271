package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/syncbuf"

	"github.com/spf13/cobra"
)

// TestMain runs the program itself, main and all, when APITOKENS_TEST_MAIN is set: runMain
// executes this test binary that way to see the real exit status and streams.
func TestMain(m *testing.M) {
	if os.Getenv("APITOKENS_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// runMain runs `apitokens args...` as a process with an empty environment and returns what it
// printed and its exit status.
func runMain(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	// A command line that should fail but serves would run until killed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = []string{"APITOKENS_TEST_MAIN=1", "HOME=" + t.TempDir()}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run apitokens %q: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

// syncBuffer is a bytes.Buffer safe to read while the server writes.
type syncBuffer = syncbuf.Buffer

func noEnv(string) string { return "" }

func noInput() io.Reader { return strings.NewReader("") }

// TestServe runs `apitokens serve` as make run does, uses the printed admin token, and stops it
// with a cancelled context, as SIGINT does.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, noEnv, noInput(), &stdout, &stderr)
	}()

	re := regexp.MustCompile(`(?m)^apitokens listening on (http://\S+)[\s\S]*^Admin token: (tok_\S+)$`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; {
		select {
		case err := <-done:
			t.Fatalf("serve stopped early: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if m = re.FindStringSubmatch(stdout.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no admin token printed:\n%s", stdout.String())
		}
	}
	base, admin := m[1], m[2]
	if !strings.Contains(stdout.String(), "curl") {
		t.Errorf("no curl example printed:\n%s", stdout.String())
	}

	req, _ := http.NewRequest("POST", base+"/tokens", strings.NewReader(`{"name":"from test","permissions":["upload"]}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Token, Owner string }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 || created.Owner != "admin" || !strings.HasPrefix(created.Token, "tok_") {
		t.Fatalf("create with the printed admin token: %d %+v %v", resp.StatusCode, created, err)
	}
	if strings.Contains(stderr.String(), created.Token) || strings.Contains(stderr.String(), admin) {
		t.Fatal("the server log shows a token")
	}

	// GET /events: the lifecycle events, to an admin token only; the log shows them too.
	for _, tc := range []struct {
		bearer string
		status int
	}{{"", 401}, {created.Token, 403}, {admin, 200}} {
		req, _ := http.NewRequest("GET", base+"/events", nil)
		if tc.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tc.bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Events []struct {
				Source     string `json:"source"`
				DetailType string `json:"detail-type"`
				Detail     struct{ Name, Owner string }
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status {
			t.Fatalf("GET /events with %q: %d %v", tc.bearer, resp.StatusCode, err)
		}
		if tc.status == 200 {
			n := len(body.Events)
			if n != 2 || body.Events[n-1].Source != "apitokens" || body.Events[n-1].DetailType != "token.created" ||
				body.Events[n-1].Detail.Name != "from test" || body.Events[n-1].Detail.Owner != "admin" {
				t.Errorf("GET /events: %+v", body.Events)
			}
		} else if len(body.Events) != 0 {
			t.Errorf("GET /events with %q answered events", tc.bearer)
		}
	}
	if !strings.Contains(stderr.String(), "detailType=token.created") {
		t.Errorf("the server log shows no lifecycle event:\n%s", stderr.String())
	}

	// Quota events on the memory store: the server's limiter publishes them itself (on AWS the
	// table's stream does). A quota of one use, spent by a verify: token.quota_exhausted, once.
	call := func(method, path, bearer, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp = call("POST", "/tokens", admin, `{"name":"metered","remaining":1}`)
	var metered struct{ ID, Token string }
	err = json.NewDecoder(resp.Body).Decode(&metered)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create a metered token: %d %v", resp.StatusCode, err)
	}
	for range 2 {
		call("POST", "/verify", "", `{"token":"`+metered.Token+`"}`).Body.Close()
	}
	resp = call("GET", "/events", admin, "")
	var evs struct {
		Events []struct {
			DetailType string `json:"detail-type"`
			Detail     struct {
				TokenID string
				Quota   *struct{ Remaining, Size int64 }
			}
		}
	}
	err = json.NewDecoder(resp.Body).Decode(&evs)
	resp.Body.Close()
	spent := 0
	for _, e := range evs.Events {
		if e.DetailType == "token.quota_exhausted" && e.Detail.TokenID == metered.ID && e.Detail.Quota != nil && e.Detail.Quota.Size == 1 {
			spent++
		}
	}
	if err != nil || spent != 1 {
		t.Errorf("GET /events after a quota of one was spent: %d token.quota_exhausted (%v); want 1: %+v", spent, err, evs.Events)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
}

// TestCreateCommandText: the text form starts with "Token: <plaintext>" on a line of its own,
// which the Makefile's measure target and scripts/measure-authorizer.sh read with
// sed -n 's/^Token: //p', then the record as aligned "name: value" lines.
func TestCreateCommandText(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"create", "--store", "memory", "--owner", "ops", "--name", "root",
		"--permissions", "admin,manage", "--expires-in", "7", "--env", "live"}, noEnv, noInput(), &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if !regexp.MustCompile(`^Token: tok_live_\w{65}$`).MatchString(lines[0]) {
		t.Fatalf("create printed %q first, want Token: <plaintext>:\n%s", lines[0], stdout.String())
	}
	checkAligned(t, lines[1:])
	for _, want := range []string{"Permissions: +admin,manage$", "Owner: +ops$", "Expires: +\\S+Z$", "Name: +root$"} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(stdout.String()) {
			t.Errorf("create printed no line matching %q:\n%s", want, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "not shown again") || !strings.Contains(stderr.String(), "memory store") {
		t.Errorf("create warned %q; want the plaintext and memory store warnings", stderr.String())
	}
}

// checkAligned: every "name: value" line has its value at the same column.
func checkAligned(t *testing.T, lines []string) {
	t.Helper()
	col := -1
	for _, l := range lines {
		i := strings.Index(l, ":")
		if i < 0 {
			t.Errorf("line %q is not name: value", l)
			continue
		}
		v := i + 1 + len(l[i+1:]) - len(strings.TrimLeft(l[i+1:], " "))
		if col >= 0 && v != col {
			t.Errorf("value of %q at column %d, others at %d:\n%s", l, v, col, strings.Join(lines, "\n"))
		}
		col = v
	}
}

// TestUsageErrors: a command line that cannot run is a usage error (exit 2) that names what is
// wrong; a value the service refuses is a failure of the command (exit 1).
func TestUsageErrors(t *testing.T) {
	id := "4f9Xa1bC2dE3fG4h"
	mem := []string{"--store", "memory"}
	for _, tc := range []struct {
		args  []string
		usage bool
		names string // the error names this
	}{
		{nil, true, "missing command"},
		{[]string{"frobnicate"}, true, `"frobnicate"`},
		{[]string{"help", "frobnicate"}, true, `"frobnicate"`},
		{[]string{"create", "--store", "memory", "--name", "x"}, true, `"owner"`},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--permissions", "a", "extra"}, true, `"extra"`},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--expires-in", "forever"}, true, "--expires-in"},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--rate-limit", "100"}, true, "--rate-limit"},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--frobnicate"}, true, "--frobnicate"},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--permissions", "Bad Perm"}, false, "permission"},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--expires-in", "0"}, false, "expiresIn"},
		{[]string{"create", "--stack", "apitokens", "--table", "t", "--owner", "o", "--name", "x"}, true, "stack"},
		{[]string{"create", "--stack", "apitokens", "--store", "memory", "--owner", "o", "--name", "x"}, true, "--stack"},
		{[]string{"serve", "--store", "dynamodb"}, true, "table"},
		{[]string{"serve", "--store", "sqlite"}, true, `"sqlite"`},
		{[]string{"serve", "--port", "80"}, true, "--port"},
		{[]string{"serve", "extra", "--addr", "127.0.0.1:0"}, true, `"extra"`},
		{[]string{"table"}, true, "missing command"},
		{[]string{"table", "drop"}, true, `"drop"`},
		{[]string{"table", "create"}, true, "--table"},
		{[]string{"table", "create", "--table", "t", "extra"}, true, `"extra"`},
		{append([]string{"list"}, mem...), true, "--owner"},
		{append([]string{"list", "--owner", "o", "--limit", "0"}, mem...), true, "--limit"},
		{append([]string{"list", "--owner", "o", "--status", "gone"}, mem...), false, "status"},
		{append([]string{"show"}, mem...), true, "token ID"},
		{append([]string{"show", id, "extra"}, mem...), true, `"extra"`},
		{append([]string{"show", id}, mem...), false, "not found"},
		{append([]string{"update", id}, mem...), true, "nothing to change"},
		{append([]string{"update", id, "--expires-in", "soon"}, mem...), true, "--expires-in"},
		{append([]string{"update", id, "--refill", "daily"}, mem...), true, "--refill"},
		{append([]string{"update", id, "--remaining", "many"}, mem...), true, "--remaining"},
		{append([]string{"rotate", id, "--grace", "soon"}, mem...), true, "--grace"},
		{append([]string{"rotate", id, "--grace", "200h"}, mem...), false, "gracePeriod"},
		{append([]string{"rotate", id, "--until-first-use"}, mem...), true, "--grace"},
		{append([]string{"revoke", "--cascade"}, mem...), true, "token ID"},
		{append([]string{"verify"}, mem...), true, "token"},
		{append([]string{"verify", "tok_x", "--ip", "nowhere"}, mem...), true, "--ip"},
		{[]string{"completion", "tcsh"}, true, `"tcsh"`},
	} {
		// A command line that should fail but serves returns when the context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out syncBuffer
		err := run(ctx, tc.args, noEnv, noInput(), &out, &out)
		cancel()
		switch {
		case err == nil:
			t.Errorf("apitokens %q succeeded; want an error", tc.args)
		case errors.As(err, new(usageError)) != tc.usage:
			t.Errorf("apitokens %q = %v: usage error %v, want %v", tc.args, err, !tc.usage, tc.usage)
		case !strings.Contains(err.Error(), tc.names):
			t.Errorf("apitokens %q = %v; want the error to name %s", tc.args, err, tc.names)
		}
	}
}

// TestExitStatus runs the program as a process: help and version exit 0 on stdout, usage errors
// exit 2 with the error and a hint on stderr, failures exit 1.
func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		code             int
		stdout, stderr   string // regular expressions the streams match
		noStdout, noBind bool
	}{
		{args: []string{"--help"}, stdout: `(?s)Usage:.*Token commands:.*Environment variables:`},
		{args: []string{"-h"}, stdout: `Usage:`},
		{args: []string{"help"}, stdout: `Usage:`},
		{args: []string{"help", "table", "create"}, stdout: `(?s)^Create makes the token table.*apitokens table create --table`},
		{args: []string{"create", "-h"}, stdout: `(?s)Examples:.*--expires-in`},
		{args: []string{"serve", "--help"}, stdout: `(?s)Examples:.*ADDR`},
		{args: []string{"--version"}, stdout: `^apitokens dev \(.*go1`},
		{args: nil, code: 2, stderr: `(?s)Usage:.*apitokens: missing command\nRun 'apitokens --help' for usage\.`, noStdout: true},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`, noStdout: true},
		{args: []string{"serve", "--port", "80"}, code: 2, stderr: `unknown flag: --port\nRun 'apitokens serve --help' for usage\.`, noStdout: true},
		{args: []string{"serve", "extra", "--addr", "127.0.0.1:0"}, code: 2, stderr: `unexpected argument "extra"`, noStdout: true},
		{args: []string{"show", "--store", "memory"}, code: 2, stderr: `show: missing token ID\nRun 'apitokens show --help'`, noStdout: true},
		{args: []string{"help", "frobnicate"}, code: 2, stderr: `unknown help topic "frobnicate"`, noStdout: true},
		{args: []string{"create", "--store", "memory", "--owner", "o", "--name", "n", "--permissions", "Bad Perm"}, code: 1, stderr: `apitokens: permission`, noStdout: true},
		{args: []string{"create", "--store", "memory", "--owner", "o", "--name", "n"}, stdout: `(?m)^Token: tok_\w+$`},
		{args: []string{"verify", "tok_notatoken", "--store", "memory"}, code: 1, stdout: `Code: +MALFORMED`, stderr: `token is not valid: MALFORMED`},
	} {
		stdout, stderr, code := runMain(t, tc.args...)
		if code != tc.code {
			t.Errorf("apitokens %q exited %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.code, stdout, stderr)
			continue
		}
		if tc.stdout != "" && !regexp.MustCompile(tc.stdout).MatchString(stdout) {
			t.Errorf("apitokens %q printed %q, want it to match %q", tc.args, stdout, tc.stdout)
		}
		if tc.stderr != "" && !regexp.MustCompile(tc.stderr).MatchString(stderr) {
			t.Errorf("apitokens %q printed %q on stderr, want it to match %q", tc.args, stderr, tc.stderr)
		}
		if tc.noStdout && stdout != "" {
			t.Errorf("apitokens %q printed %q on stdout; want nothing", tc.args, stdout)
		}
	}
}

// commandPaths lists every command of the tree under cmd, as the words that run it.
func commandPaths(cmd *cobra.Command) [][]string {
	var paths [][]string
	for _, sub := range cmd.Commands() {
		if sub.Hidden {
			continue
		}
		path := strings.Fields(sub.CommandPath())[1:]
		paths = append(paths, path)
		for _, p := range commandPaths(sub) {
			paths = append(paths, p)
		}
	}
	return paths
}

// TestHelp: every command answers help, -h and --help with status 0 on stdout: its one-line
// description, usage, examples, flags and environment variables.
func TestHelp(t *testing.T) {
	root := (&cli{getenv: noEnv, stdin: noInput(), stdout: io.Discard, stderr: io.Discard}).rootCommand()
	root.InitDefaultHelpCmd()
	paths := commandPaths(root)
	for _, want := range []string{"serve", "table create", "create", "list", "show", "update", "rotate", "revoke", "verify", "audit", "help", "completion"} {
		if !slices.ContainsFunc(paths, func(p []string) bool { return strings.Join(p, " ") == want }) {
			t.Errorf("no command %q in %q", want, paths)
		}
	}
	for _, path := range paths {
		cmd, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if cmd.Short == "" || strings.Contains(cmd.Short, "\n") || cmd.Example == "" {
			t.Errorf("%q: description %q and examples %q; want one line and at least one example", path, cmd.Short, cmd.Example)
		}
		for _, args := range [][]string{append(slices.Clone(path), "-h"), append(slices.Clone(path), "--help"), append([]string{"help"}, path...)} {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, noEnv, noInput(), &stdout, &stderr); err != nil {
				t.Errorf("apitokens %q: %v", args, err)
				continue
			}
			out := stdout.String()
			for _, want := range []string{"Usage:", "Examples:", cmd.Example} {
				if !strings.Contains(out, want) {
					t.Errorf("apitokens %q printed no %q:\n%s", args, want, out)
				}
			}
			if cmd.Long == "" && !strings.Contains(out, cmd.Short) {
				t.Errorf("apitokens %q does not describe the command:\n%s", args, out)
			}
			if cmd.Flags().Lookup("table") != nil && !strings.Contains(out, "TABLE_NAME") {
				t.Errorf("apitokens %q lists no environment variables:\n%s", args, out)
			}
			if cmd.Flags().Lookup("stack") != nil && !strings.Contains(out, "TOKEN_PREFIX") {
				t.Errorf("apitokens %q does not list the token settings' variables:\n%s", args, out)
			}
			if stderr.Len() > 0 {
				t.Errorf("apitokens %q printed %q on stderr", args, stderr.String())
			}
		}
	}

	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"help"}, noEnv, noInput(), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"TABLE_NAME", "TOKEN_PREFIX", "DEFAULT_EXPIRY_DAYS", "MAX_EXPIRY_DAYS", "ALLOWED_PERMISSIONS",
		"DEFAULT_PERMISSIONS", "REVOKED_RETENTION_DAYS", "AUDIT_RETENTION_DAYS", "STORE", "ADDR", "AWS_REGION",
		"AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "--version",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("apitokens help does not mention %s:\n%s", want, stdout.String())
		}
	}
	for _, sub := range root.Commands() {
		if !sub.Hidden && !regexp.MustCompile(`(?m)^  `+sub.Name()+` +`+regexp.QuoteMeta(sub.Short)+`$`).MatchString(stdout.String()) {
			t.Errorf("apitokens help does not list %s with its description:\n%s", sub.Name(), stdout.String())
		}
	}
}

// TestVersion: --version prints the version set by -ldflags "-X main.version=...", and the Go
// release the binary was built with.
func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, noEnv, noInput(), &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout.String(), "apitokens v1.2.3 (") || !strings.Contains(stdout.String(), runtime.Version()) {
		t.Errorf("--version printed %q; want apitokens v1.2.3 (... %s)", stdout.String(), runtime.Version())
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		var stdout bytes.Buffer
		if err := run(context.Background(), []string{"completion", shell}, noEnv, noInput(), &stdout, io.Discard); err != nil || !strings.Contains(stdout.String(), "apitokens") {
			t.Errorf("completion %s: %v, printed %d bytes", shell, err, stdout.Len())
		}
	}
}
