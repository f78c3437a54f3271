package samtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// invokeEnv is the environment make invoke gets here: this process's PATH, HOME, temporary
// directory, Java and Go settings (for the caches), and no AWS, table or authorizer variable of
// the machine running the test, plus env.
func invokeEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "HOME", name == "TMPDIR", name == "JAVA_HOME", strings.HasPrefix(name, "GO"):
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// makeInvoke runs make invoke with the make arguments args and the environment env, and returns
// what it printed and its exit status (make's: 2 when the recipe failed).
func makeInvoke(t *testing.T, env []string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "--no-print-directory", "invoke"}, args...)...)
	cmd.Dir = root
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatalf("make invoke %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), status
}

// mustMakeInvoke is makeInvoke of one invocation that must succeed; it returns the response.
func mustMakeInvoke(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, status := makeInvoke(t, env, args...)
	if status != 0 || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("make invoke %s: exit %d, want 0 and one response\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), status, stdout, stderr)
	}
	return stdout
}

// TestMakeInvoke runs make invoke as the README documents it: without TABLE_NAME it starts
// DynamoDB Local (or uses the one DYNAMODB_ENDPOINT names) with a table holding the tokens the
// event names; with TABLE_NAME it runs on that table with the environment as it is, and names the
// variables that environment lacks in one error.
func TestMakeInvoke(t *testing.T) {
	t.Run("TABLE_NAME set, variables missing", func(t *testing.T) {
		start := time.Now()
		_, stderr, status := makeInvoke(t, invokeEnv("TABLE_NAME=apitokens"), "FUNCTION=authorizer", "EVENT=events/authorizer-http-v2.json")
		first, _, _ := strings.Cut(stderr, "\n")
		if status == 0 || first != "make invoke FUNCTION=authorizer: set AUTHORIZER_ROLE, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, TOKEN" {
			t.Fatalf("exit %d, stderr:\n%s\nwant one error naming every missing variable first", status, stderr)
		}
		// scripts/dynamodb-local.sh announces "DynamoDB Local <dir> on <url> (pid N)".
		if time.Since(start) > 10*time.Second || strings.Contains(stderr, "(pid ") {
			t.Errorf("make invoke took %s or started DynamoDB Local before naming what is missing:\n%s", time.Since(start), stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{"FUNCTION=create"}, {"FUNCTION=nothing", "EVENT=events/create.json"}, {"FUNCTION=create", "EVENT=events/nothing.json"}} {
			if _, stderr, status := makeInvoke(t, invokeEnv(), args...); status == 0 || stderr == "" {
				t.Errorf("make invoke %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), status, stderr)
			}
		}
	})

	endpoint := dynamotest.MustEndpoint(t)
	t.Run("create, DynamoDB Local started for it", func(t *testing.T) {
		resp := mustProxyResponse(t, json.RawMessage(mustMakeInvoke(t, invokeEnv(), "FUNCTION=create", "EVENT=events/create.json")))
		// The caller of the event's authorizer context exists: the new token is its child.
		if resp.StatusCode != 201 || !strings.Contains(resp.Body, `"token":"tok_live_`) || !strings.Contains(resp.Body, `"createdBy":"Q7mZ2xK9pL4wN8rT"`) {
			t.Fatalf("create: %d %s; want 201 with a token created by the event's caller", resp.StatusCode, resp.Body)
		}
	})

	onEndpoint := invokeEnv("DYNAMODB_ENDPOINT=" + endpoint)
	for _, tc := range []struct{ event, want string }{
		{"get.json", `"status":"active"`},
		{"get-not-found.json", `"code":"not_found"`},
	} {
		t.Run(tc.event, func(t *testing.T) {
			resp := mustProxyResponse(t, json.RawMessage(mustMakeInvoke(t, onEndpoint, "FUNCTION=get", "EVENT=events/"+tc.event)))
			if !strings.Contains(resp.Body, tc.want) {
				t.Fatalf("%d %s; want %s", resp.StatusCode, resp.Body, tc.want)
			}
		})
	}
	for _, role := range []string{"management", "consumer"} {
		t.Run("authorizer-http-v2.json, "+role, func(t *testing.T) {
			var simple struct {
				IsAuthorized bool              `json:"isAuthorized"`
				Context      map[string]string `json:"context"`
			}
			out := mustMakeInvoke(t, append(onEndpoint, "AUTHORIZER_ROLE="+role), "FUNCTION=authorizer", "EVENT=events/authorizer-http-v2.json")
			if err := json.Unmarshal([]byte(out), &simple); err != nil || !simple.IsAuthorized || simple.Context["tokenId"] == "" {
				t.Fatalf("%s (%v); want isAuthorized with the seeded token's context", out, err)
			}
		})
	}
	t.Run("authorizer-rest-request.json", func(t *testing.T) {
		out := mustMakeInvoke(t, append(onEndpoint, "AUTHORIZER_ROLE=consumer"), "FUNCTION=authorizer", "EVENT=events/authorizer-rest-request.json")
		if !strings.Contains(out, `"Effect":"Allow"`) {
			t.Fatalf("%s; want an Allow", out)
		}
	})

	t.Run("TABLE_NAME set, environment as it is", func(t *testing.T) {
		client := dynamotest.NewClient(endpoint)
		table := dynamotest.MustTable(t, client, dynamo.CreateTable)
		svc, err := token.NewService(dynamo.New(client, table, dynamo.Options{}), token.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, plaintext, err := svc.Create(context.Background(), token.Principal{Owner: "ops", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "invoked", Owner: "ops"})
		if err != nil {
			t.Fatal(err)
		}
		env := invokeEnv("TABLE_NAME="+table, "AWS_ENDPOINT_URL_DYNAMODB="+endpoint, "AWS_REGION=us-east-1",
			"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AUTHORIZER_ROLE=management")
		for _, tc := range []struct {
			token string
			want  bool
		}{
			{plaintext, true},
			{token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()), false},
		} {
			out := mustMakeInvoke(t, append(env, "TOKEN="+tc.token), "FUNCTION=authorizer", "EVENT=events/authorizer-http-v2.json")
			if want := fmt.Sprintf(`{"isAuthorized":%v`, tc.want); !strings.HasPrefix(out, want) {
				t.Errorf("TOKEN of the table: %v: %s; want %s...", tc.want, out, want)
			}
		}
	})
}
