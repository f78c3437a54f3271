package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// useEndpoint points the SDK's standard configuration at endpoint, as a user would with
// AWS_ENDPOINT_URL_DYNAMODB.
func useEndpoint(t *testing.T, endpoint string) {
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
}

// startServe runs `apitokens serve` with args and returns its base URL, what it printed and a
// stop function.
func startServe(t *testing.T, args ...string) (string, *syncBuffer, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), os.Getenv, noInput(), &stdout, &stderr)
	}()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], &stdout, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("serve: %v", err)
				}
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not start:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
}

func call(t *testing.T, method, url, bearer, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDynamoDBBootstrap is the README's path for a real deployment: create the table, create the
// first admin token in it, serve on it.
func TestDynamoDBBootstrap(t *testing.T) {
	useEndpoint(t, dynamotest.MustEndpoint(t))
	table := fmt.Sprintf("apitokens-cli-%d", time.Now().UnixNano())
	ctx := context.Background()
	for range 2 { // idempotent
		if err := run(ctx, []string{"table", "create", "--table", table}, os.Getenv, noInput(), io.Discard, io.Discard); err != nil {
			t.Fatalf("table create: %v", err)
		}
	}
	var out strings.Builder
	if err := run(ctx, []string{"create", "--table", table, "--owner", "ops", "--name", "root", "--permissions", "admin,manage"}, os.Getenv, noInput(), &out, io.Discard); err != nil {
		t.Fatalf("create: %v", err)
	}
	m := regexp.MustCompile(`(?m)^Token: (\S+)$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("create printed %q", out.String())
	}
	root := m[1]

	base, _, stop := startServe(t, "--store", "dynamodb", "--table", table)
	defer stop()
	if status, body := call(t, "POST", base+"/tokens", root, `{"name":"ci","owner":"team-a","permissions":["upload"]}`); status != 201 {
		t.Fatalf("create through the API: %d %s", status, body)
	}
	if status, body := call(t, "GET", base+"/tokens?owner=team-a", root, ""); status != 200 || !strings.Contains(body, `"name":"ci"`) {
		t.Fatalf("list: %d %s", status, body)
	}
}

// TestStoppedDynamoDBIsAnInternalError: a store call against a server that is not there answers
// 500 "Internal error.", never 401, 404 or success.
func TestStoppedDynamoDBIsAnInternalError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	useEndpoint(t, endpoint)

	base, _, stop := startServe(t, "--store", "dynamodb", "--table", "gone")
	defer stop()
	tok := token.Format(token.DefaultPrefix, "", token.NewID(), token.NewSecret())
	for _, tc := range []struct{ method, path, bearer, body string }{
		{"GET", "/tokens", tok, ""},
		{"POST", "/verify", "", `{"token":"` + tok + `"}`},
	} {
		status, body := call(t, tc.method, base+tc.path, tc.bearer, tc.body)
		if status != 500 || body != `{"code":"internal","message":"Internal error."}`+"\n" {
			t.Fatalf("%s %s against a stopped DynamoDB: %d %s; want 500 Internal error.", tc.method, tc.path, status, body)
		}
	}
}
