package readmetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
)

// needsAWS marks the README commands no test can run: they need an AWS account, or AWS's own
// tools. A comment line starting with it marks the commands under it up to the next blank line;
// a trailing comment starting with it marks its own command.
const needsAWS = "# needs AWS"

// readmeCommand says how a README command outside the walkthrough is exercised: run here, run by
// another test, or not run, and why. Exactly one field is set.
type readmeCommand struct {
	run    func(t *testing.T, command string) // runs the command as written, adapted as its comment says
	ranBy  string                             // what runs it, when it is not run here
	notRun string                             // why no test runs it
}

// readmeCommands lists every command of the README's shell blocks that is neither in the
// walkthrough nor marked needsAWS, by its text with white space collapsed. A README command
// missing here, or an entry no longer in the README, fails TestEveryREADMECommandIsRunOrNeedsAWS.
var readmeCommands = map[string]readmeCommand{
	"make run":  {ranBy: "TestWalkthrough, which starts apitokens with the arguments make -n run prints"},
	"make test": {ranBy: "itself: it is what runs this test"},
	"AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local go run ./cmd/apitokens table create --table apitokens": {
		run: runOnDynamoDBLocal,
	},
	"make invoke FUNCTION=create EVENT=events/create.json": {
		ranBy: "TestMakeInvoke (internal/samtest), as on a fresh clone: make invoke starts DynamoDB Local for it",
	},
	"AUTHORIZER_ROLE=consumer make invoke FUNCTION=authorizer EVENT=events/authorizer-http-v2.json": {
		ranBy: "TestMakeInvoke (internal/samtest), in both roles, on the DynamoDB Local of make test",
	},
	"go test ./pkg/token/ ./pkg/authorizer/ ./pkg/oidc/ -run '^$' -bench 'Verify|ParseMalformed|Authorize$|Create' -benchmem -count 5": {
		run: runBenchmarksOnce,
	},
	"scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench 'ListFirstPage|FirstSight' -count 3": {
		run: runBenchmarksOnce, // about 20 s: it fills DynamoDB Local with 5,000 tokens first
	},
	"scripts/dynamodb-local.sh go test ./pkg/authorizer/ -run '^$' -bench AgainstDynamoDB -count 3": {
		run: runBenchmarksOnce,
	},
	"scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench VerifyAgainstDynamoDB -benchmem": {
		run: runBenchmarksOnce,
	},
	"CORS_ALLOWED_ORIGINS=https://dashboard.example.com,http://localhost:5173 go run ./cmd/apitokens serve": {
		ranBy: "TestServeSignIn (cmd/apitokens), which runs serve with CORS_ALLOWED_ORIGINS and sends preflights from a listed and another origin",
	},
	"go test ./pkg/dashboard/ -run '^$' -bench DashboardList100 -benchtime 20x": {
		run: runBenchmarksOnce, // a few seconds: one headless Chromium, 100 tokens
	},
	"scripts/dynamodb-local.sh go test ./pkg/dynamo/ -run '^$' -bench ReportLeaks -benchtime 20x -count 3": {
		run: runBenchmarksOnce,
	},
	"make build":   {run: runMakeBuild},
	"make measure": {run: runMakeMeasure},
}

// shellCommand is a command of a README shell block outside the walkthrough.
type shellCommand struct {
	line      int
	command   string // white space collapsed
	awsMarked bool
}

// outsideWalkthrough returns the commands of the shell blocks that are not walkthrough blocks,
// each with whether it is marked needsAWS.
func outsideWalkthrough(blocks []block) ([]shellCommand, error) {
	var out []shellCommand
	for _, b := range blocks {
		if !b.shell() || b.marker == walkthroughMarker {
			continue
		}
		items, err := splitShell(b.text, b.line)
		if err != nil {
			return nil, err
		}
		group := false
		for _, it := range items {
			switch {
			case it.blank():
				group = false
			case it.code == "":
				group = group || strings.HasPrefix(it.comment, needsAWS)
			default:
				out = append(out, shellCommand{
					line:      it.line,
					command:   strings.Join(strings.Fields(it.code), " "),
					awsMarked: group || strings.HasPrefix(it.comment, needsAWS),
				})
			}
		}
	}
	return out, nil
}

// TestEveryREADMECommandIsRunOrNeedsAWS accounts for every command of the README's shell blocks:
// the walkthrough's run in TestWalkthrough; the others are marked "# needs AWS", or listed in
// readmeCommands, which runs them here or says what runs them or why nothing does.
func TestEveryREADMECommandIsRunOrNeedsAWS(t *testing.T) {
	commands, err := outsideWalkthrough(mustREADME(t))
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	seen := map[string]bool{}
	aws := 0
	for _, c := range commands {
		if c.awsMarked {
			aws++
			continue
		}
		rc, ok := readmeCommands[c.command]
		if !ok {
			t.Errorf("README.md:%d: %q is neither run by a test nor marked %q: add it to the walkthrough (a <!-- walkthrough --> sh block), mark it, or list it in readmeCommands (internal/readmetest) with what runs it", c.line, c.command, needsAWS)
			continue
		}
		if seen[c.command] {
			continue
		}
		seen[c.command] = true
		switch {
		case rc.run != nil:
			t.Run(fmt.Sprintf("line %d", c.line), func(t *testing.T) { rc.run(t, c.command) })
		case rc.ranBy != "":
			t.Logf("README.md:%d: %s: run by %s", c.line, c.command, rc.ranBy)
		default:
			t.Logf("README.md:%d: %s: NOT RUN: %s", c.line, c.command, rc.notRun)
		}
	}
	var stale []string
	for command := range readmeCommands {
		if !seen[command] {
			stale = append(stale, command)
		}
	}
	sort.Strings(stale)
	for _, command := range stale {
		t.Errorf("readmeCommands lists %q, which the README no longer has (outside a %q block): remove or update the entry", command, needsAWS)
	}
	t.Logf("%d commands marked %q", aws, needsAWS)
}

func TestNeedsAWSMarksItsGroupOrItsLine(t *testing.T) {
	src := "```sh\nmake run   # serves\n# needs AWS: a stack\naws one \\\n  --flag\naws two\n\naws three   # needs AWS too\nlocal four\n```\n" +
		"```yaml\nnot: a command\n```\n" +
		"<!-- walkthrough -->\n```sh\ncurl -s \"$API/tokens\"\n```\n"
	blocks, err := readmeBlocks(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := outsideWalkthrough(blocks)
	if err != nil {
		t.Fatal(err)
	}
	want := []shellCommand{
		{line: 2, command: "make run"},
		{line: 4, command: "aws one --flag", awsMarked: true},
		{line: 6, command: "aws two", awsMarked: true},
		{line: 8, command: "aws three", awsMarked: true},
		{line: 9, command: "local four"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outsideWalkthrough:\n got %v\nwant %v", got, want)
	}
}

// runBenchmarksOnce runs a README benchmark command with -benchtime 1x -count 1 appended (go
// test takes the last value of a flag): every package it names must run at least one benchmark.
// runMakeBuild runs make build and checks that it made a zip of every function it lists.
func runMakeBuild(t *testing.T, command string) {
	out := runInRoot(t, nil, command)
	zips, _ := filepath.Glob(filepath.Join(root, ".build", "lambda", "*.zip"))
	if len(zips) == 0 || !strings.Contains(out, "zipped") {
		t.Fatalf("%s made no zips:\n%s", command, out)
	}
}

// runMakeMeasure runs make measure with the fewest cold starts and invocations that still give
// each figure (2 and 3), and checks that it prints every ratio.
func runMakeMeasure(t *testing.T, command string) {
	out := runInRoot(t, []string{"MEASURE_RUNS=2", "MEASURE_N=3", "MEASURE_TOKENS=3"}, command)
	for _, want := range []string{"first sight (per call, median)", "repeat miss", "init (median of 2 cold starts)"} {
		if !strings.Contains(out, want) {
			t.Errorf("%s prints no %q:\n%s", command, want, out)
		}
	}
	if strings.Contains(out, "inf") || strings.Contains(out, "nan") {
		t.Errorf("%s printed a ratio of nothing:\n%s", command, out)
	}
}

// runInRoot runs a command in the repository with the environment and extra variables.
func runInRoot(t *testing.T, env []string, command string) string {
	t.Helper()
	cmd := exec.Command("bash", "-c", command)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

func runBenchmarksOnce(t *testing.T, command string) {
	cmd := exec.Command("bash", "-c", command+" -benchtime 1x -count 1")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s -benchtime 1x -count 1: %v\n%s", command, err, out)
	}
	packages, ran := 0, 0
	for _, w := range strings.Fields(command) {
		if strings.HasPrefix(w, "./") {
			packages++
		}
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "pkg: ") {
			ran++
		}
	}
	if packages == 0 || ran != packages {
		t.Errorf("%s: benchmarks ran in %d of %d packages:\n%s", command, ran, packages, out)
	}
}

// runOnDynamoDBLocal runs the README's DynamoDB Local command against the DynamoDB Local of make
// test (DYNAMODB_ENDPOINT) instead of :8000, on a table of its own instead of apitokens, with
// the binary of cmd/apitokens instead of go run; the table must then be active with TTL on ttl.
func runOnDynamoDBLocal(t *testing.T, command string) {
	endpoint := dynamotest.MustEndpoint(t)
	table := fmt.Sprintf("apitokens-readme-%d", os.Getpid())
	client := dynamotest.NewClient(endpoint)
	t.Cleanup(func() {
		client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	for _, r := range []struct{ old, new string }{
		{"http://127.0.0.1:8000", endpoint},
		{"--table apitokens", "--table " + table},
		{"go run ./cmd/apitokens", mustBinary(t)},
	} {
		if !strings.Contains(command, r.old) {
			t.Fatalf("%s: no %q to replace: update runOnDynamoDBLocal", command, r.old)
		}
		command = strings.ReplaceAll(command, r.old, r.new)
	}
	cmd := exec.Command("bash", "-c", command)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	desc, err := client.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if desc.Table.TableStatus != types.TableStatusActive {
		t.Errorf("table %s is %s, want ACTIVE", table, desc.Table.TableStatus)
	}
	ttl, err := client.DescribeTimeToLive(context.Background(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "ttl" {
		t.Errorf("table %s: TTL %+v, want enabled on ttl", table, d)
	}
}

// apitokensBinary is cmd/apitokens built once per test run.
var apitokensBinary struct {
	once sync.Once
	path string
	err  error
}

// mustBinary returns the path of cmd/apitokens built for this machine; the binary is removed
// when the test run ends.
func mustBinary(t *testing.T) string {
	t.Helper()
	apitokensBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "readmetest-")
		if err != nil {
			apitokensBinary.err = err
			return
		}
		apitokensBinary.path = filepath.Join(dir, "apitokens")
		build := exec.Command("go", "build", "-o", apitokensBinary.path, "./cmd/apitokens")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			apitokensBinary.err = fmt.Errorf("go build ./cmd/apitokens: %v\n%s", err, out)
		}
	})
	if apitokensBinary.err != nil {
		t.Fatal(apitokensBinary.err)
	}
	return apitokensBinary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apitokensBinary.path != "" {
		os.RemoveAll(filepath.Dir(apitokensBinary.path))
	}
	os.Exit(code)
}
