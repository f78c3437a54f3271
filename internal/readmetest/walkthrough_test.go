package readmetest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/internal/syncbuf"
)

// step is one curl command of the walkthrough with the answer the README shows under it.
type step struct {
	line    int    // README line of the command
	command string // as written, continuations joined
	status  int    // the status of "# -> 201 ..."
	excerpt string // what follows the status, continuation lines joined
}

var (
	// curlCall finds curl run as a command, also inside $(...) or after a pipe.
	curlCall = regexp.MustCompile(`(^|[\s(|;&])curl\s`)
	// expectation is the line under a curl command: "# -> STATUS excerpt".
	expectation = regexp.MustCompile(`^# -> ([1-5][0-9][0-9])(?: (.*))?$`)
	// expectationMore continues an excerpt on the next comment line, indented.
	expectationMore = regexp.MustCompile(`^#\s{4,}(\S.*)$`)
)

// walkthroughSteps pairs each curl command of the walkthrough with the "# -> STATUS excerpt"
// comment that follows it before the next command that runs curl. A curl command without one,
// one without a curl command, or a command running curl twice is an error.
func walkthroughSteps(items []shellItem) ([]step, error) {
	var (
		steps   []step
		pending *step
		more    bool // the previous item was an expectation or its continuation
	)
	for _, it := range items {
		if it.code != "" {
			more = false
			n := len(curlCall.FindAllString(it.code, -1))
			if n > 1 {
				return nil, fmt.Errorf("line %d: one curl per command, so that each answer has its own # -> line: %s", it.line, it.code)
			}
			if n == 1 {
				if pending != nil {
					return nil, fmt.Errorf("line %d: curl command without a # -> STATUS line before the next one: %s", pending.line, pending.command)
				}
				pending = &step{line: it.line, command: it.code}
			}
			continue
		}
		if m := expectation.FindStringSubmatch(it.comment); m != nil {
			if pending == nil {
				return nil, fmt.Errorf("line %d: %q follows no curl command", it.line, it.comment)
			}
			pending.status, _ = strconv.Atoi(m[1])
			pending.excerpt = m[2]
			steps = append(steps, *pending)
			pending, more = nil, true
			continue
		}
		if m := expectationMore.FindStringSubmatch(it.comment); more && m != nil {
			steps[len(steps)-1].excerpt += m[1]
			continue
		}
		more = false
	}
	if pending != nil {
		return nil, fmt.Errorf("line %d: curl command without a # -> STATUS line: %s", pending.line, pending.command)
	}
	return steps, nil
}

// excerptLiteral is a "key":value pair of an excerpt whose value is a JSON string, number,
// boolean, null, or an array of those.
var excerptLiteral = regexp.MustCompile(`"[A-Za-z][A-Za-z0-9]*":(?:"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|true|false|null|\[(?:[^\[\]{}"]|"(?:[^"\\]|\\.)*")*\])`)

// excerptMismatches returns the "key":value pairs of excerpt that body does not contain as
// written. Pairs with "..." in their value are run-specific (ids, times, tokens) and not checked.
func excerptMismatches(excerpt, body string) []string {
	var missing []string
	for _, lit := range excerptLiteral.FindAllString(excerpt, -1) {
		if !strings.Contains(lit, "...") && !strings.Contains(body, lit) {
			missing = append(missing, lit)
		}
	}
	return missing
}

func TestWalkthroughSteps(t *testing.T) {
	items := func(t *testing.T, text string) []shellItem {
		t.Helper()
		it, err := splitShell(text, 1)
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	t.Run("paired", func(t *testing.T) {
		got, err := walkthroughSteps(items(t, `X=$(curl -s "$API/tokens" \
  -d '{}')
echo "$X"
# -> 201 {"a":1,
#      "b":2}
Y=$(echo "$X" | field id)
curl -s "$API/tokens/$Y"   # a note
# -> 404
`))
		want := []step{
			{line: 1, command: `X=$(curl -s "$API/tokens"    -d '{}')`, status: 201, excerpt: `{"a":1,"b":2}`},
			{line: 7, command: `curl -s "$API/tokens/$Y"`, status: 404},
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("walkthroughSteps = %v, %v; want %v", got, err, want)
		}
	})
	for name, text := range map[string]string{
		"curl without status":   "curl -s \"$API/a\"\ncurl -s \"$API/b\"\n# -> 200\n",
		"last curl unchecked":   "curl -s \"$API/a\"\n# -> 200\ncurl -s \"$API/b\"\n",
		"status without curl":   "echo hi\n# -> 200\n",
		"two curls in one line": "curl -s \"$API/a\" && curl -s \"$API/b\"\n# -> 200\n",
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := walkthroughSteps(items(t, text)); err == nil {
				t.Errorf("walkthroughSteps = %v, want an error", got)
			}
		})
	}
}

func TestExcerptMismatches(t *testing.T) {
	body := `{"id":"Ab12","name":"Upload Script","permissions":["upload","list"],"apis":null,"rateLimit":{"limit":2,"windowSeconds":3600},"message":"A \"quoted\" id."}`
	for _, tc := range []struct {
		excerpt string
		missing []string
	}{
		{`{"id":"...","name":"Upload Script","permissions":["upload","list"],"apis":null,...}`, nil},
		{`{"rateLimit":{"limit":2,"windowSeconds":3600},"message":"A \"quoted\" id."}`, nil},
		{`{"name":"Upload","permissions":["list","upload"],"apis":[],"rateLimit":{"limit":3}}`,
			[]string{`"name":"Upload"`, `"permissions":["list","upload"]`, `"apis":[]`, `"limit":3`}},
	} {
		if got := excerptMismatches(tc.excerpt, body); fmt.Sprint(got) != fmt.Sprint(tc.missing) {
			t.Errorf("excerptMismatches(%s) = %q, want %q", tc.excerpt, got, tc.missing)
		}
	}
}

// curlRecorder is put before the walkthrough: curl runs as the README writes it (without the
// user's ~/.curlrc: -q), and its status and body are kept in $READMETEST_STEPS, numbered in the
// order the calls ran. set -e: a command that fails ends the script and fails the test.
const curlRecorder = `set -euo pipefail
shopt -s inherit_errexit
curl() {
	local n status
	n=$(($(cat "$READMETEST_STEPS/count") + 1))
	echo "$n" >"$READMETEST_STEPS/count"
	: >"$READMETEST_STEPS/$n.body"
	status=$(command curl -q -o "$READMETEST_STEPS/$n.body" -w '%{http_code}' "$@") || return
	echo "$status" >"$READMETEST_STEPS/$n.status"
	cat "$READMETEST_STEPS/$n.body"
}
`

// TestWalkthrough runs the README's walkthrough blocks, as written, against apitokens serve
// started with the arguments of make run, and checks every answer against the status and
// excerpt the README shows under its command.
func TestWalkthrough(t *testing.T) {
	var script strings.Builder
	var items []shellItem
	for _, b := range mustREADME(t) {
		if b.marker != walkthroughMarker {
			continue
		}
		if !b.shell() {
			t.Fatalf("README.md:%d: a %s block must be a sh block", b.line, walkthroughMarker)
		}
		it, err := splitShell(b.text, b.line)
		if err != nil {
			t.Fatalf("README.md: %v", err)
		}
		items = append(items, it...)
		script.WriteString(b.text)
	}
	steps, err := walkthroughSteps(items)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if len(steps) == 0 {
		t.Fatalf("README.md has no %s sh block with curl commands", walkthroughMarker)
	}

	api, adminToken := mustServe(t)
	dir := t.TempDir()
	stepsDir := filepath.Join(dir, "steps")
	if err := os.Mkdir(stepsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stepsDir, "count"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	scriptPath := filepath.Join(dir, "walkthrough.sh")
	if err := os.WriteFile(scriptPath, []byte(curlRecorder+script.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", scriptPath)
	// Only what the walkthrough tells the reader to set, and no proxy, curlrc or locale of the
	// machine running the test.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C", "TOKEN=" + adminToken, "API=" + api, "READMETEST_STEPS=" + stepsDir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	countText, err := os.ReadFile(filepath.Join(stepsDir, "count"))
	if err != nil {
		t.Fatal(err)
	}
	ran, err := strconv.Atoi(strings.TrimSpace(string(countText)))
	if err != nil {
		t.Fatalf("curl count %q: %v", countText, err)
	}
	for i, s := range steps {
		if i >= ran {
			t.Errorf("README.md:%d: never ran (%d of %d curl commands ran): %s", s.line, ran, len(steps), s.command)
			continue
		}
		statusText, statusErr := os.ReadFile(filepath.Join(stepsDir, fmt.Sprintf("%d.status", i+1)))
		body, bodyErr := os.ReadFile(filepath.Join(stepsDir, fmt.Sprintf("%d.body", i+1)))
		if statusErr != nil || bodyErr != nil {
			t.Errorf("README.md:%d: curl failed (%v %v): %s", s.line, statusErr, bodyErr, s.command)
			continue
		}
		if got := strings.TrimSpace(string(statusText)); got != strconv.Itoa(s.status) {
			t.Errorf("README.md:%d: %s\n  README: %d %s\n  server: %s %s", s.line, s.command, s.status, s.excerpt, got, body)
			continue
		}
		if missing := excerptMismatches(s.excerpt, string(body)); len(missing) > 0 {
			t.Errorf("README.md:%d: %s\n  the answer has not %s\n  README: %d %s\n  server: %s", s.line, s.command, strings.Join(missing, ", "), s.status, s.excerpt, body)
		}
	}
	if ran > len(steps) {
		t.Errorf("the walkthrough ran curl %d times for %d curl commands: a curl in a loop or function has no # -> line of its own", ran, len(steps))
	}
	if runErr != nil {
		t.Errorf("the walkthrough failed after %d of %d curl commands: %v\nstdout:\n%s\nstderr:\n%s", ran, len(steps), runErr, stdout.String(), stderr.String())
	}
}

var (
	listeningOn = regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+`)
	adminLine   = regexp.MustCompile(`(?i)^admin token:\s*(\S+)\s*$`)
)

// mustServe starts cmd/apitokens with the arguments make run passes it (its
// address changed to a free port), and returns the base URL and the admin token it prints. The
// server is killed by its PID when the test ends.
func mustServe(t *testing.T) (api, adminToken string) {
	t.Helper()
	args := makeRunArgs(t, "127.0.0.1:0")
	cmd := exec.Command(mustBinary(t), args...)
	// The deployment's defaults, as a fresh clone has them: no TOKEN_PREFIX or other setting of
	// the machine running the test.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("apitokens %s, stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
	})

	type printed struct{ api, token string }
	found := make(chan printed, 1)
	var output syncBuffer
	go func() {
		var p printed
		sent := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			output.Write(append(sc.Bytes(), '\n'))
			if m := listeningOn.FindString(sc.Text()); m != "" && p.api == "" {
				p.api = m
			}
			if m := adminLine.FindStringSubmatch(sc.Text()); m != nil && p.token == "" {
				p.token = m[1]
			}
			if p.api != "" && p.token != "" && !sent {
				found <- p
				sent = true
			}
		}
	}()
	select {
	case p := <-found:
		return p.api, p.token
	case <-time.After(30 * time.Second):
		t.Fatalf("apitokens %s printed no http://127.0.0.1:PORT and no \"Admin token: ...\" line within 30 s; stdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), output.String(), stderr.String())
	}
	return "", ""
}

// makeRunArgs returns the arguments make run passes to apitokens with ADDR=addr, from the
// command make prints (make -n): go run ./cmd/apitokens ARGS.
func makeRunArgs(t *testing.T, addr string) []string {
	t.Helper()
	out, err := exec.Command("make", "-s", "-n", "--no-print-directory", "-C", root, "run", "GO=go", "ADDR="+addr).Output()
	if err != nil {
		t.Fatalf("make -n run: %v", err)
	}
	fields := strings.Fields(strings.TrimSpace(string(out)))
	const prefix = "go run ./cmd/apitokens"
	if !strings.HasPrefix(strings.Join(fields, " "), prefix+" ") || !strings.Contains(string(out), addr) {
		t.Fatalf("make run runs %q, not %s ... --addr %s: the walkthrough test starts what make run does", out, prefix, addr)
	}
	return fields[len(strings.Fields(prefix)):]
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test reading it.
type syncBuffer = syncbuf.Buffer
