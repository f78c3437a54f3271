package samtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// warmFunction is one execution environment of a function's real bootstrap, kept warm between
// invocations as Lambda keeps it, so that a test can change the table between two calls. It
// serves the Lambda Runtime API itself (tools/lambdarun hands one event file to a run, with no
// pause between invocations).
type warmFunction struct {
	events  chan []byte
	results chan invokeResult
	initErr chan []byte
	logs    bytes.Buffer
}

type invokeResult struct {
	response json.RawMessage
	errBody  []byte // the function's error (for REST authorizers, "Unauthorized")
}

func startWarm(t *testing.T, bootstrap string, env []string) *warmFunction {
	t.Helper()
	w := &warmFunction{events: make(chan []byte), results: make(chan invokeResult, 1), initErr: make(chan []byte, 1)}
	var seq atomic.Int64
	const api = "/2018-06-01/runtime"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api+"/invocation/next", func(rw http.ResponseWriter, r *http.Request) {
		select {
		case ev := <-w.events:
			h := rw.Header()
			h.Set("Lambda-Runtime-Aws-Request-Id", fmt.Sprintf("request-%d", seq.Add(1)))
			h.Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(10*time.Second).UnixMilli()))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:authorizer")
			h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
			rw.Write(ev)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST "+api+"/invocation/{id}/response", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rw.WriteHeader(http.StatusAccepted)
		w.results <- invokeResult{response: b}
	})
	mux.HandleFunc("POST "+api+"/invocation/{id}/error", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rw.WriteHeader(http.StatusAccepted)
		w.results <- invokeResult{errBody: b}
	})
	mux.HandleFunc("POST "+api+"/init/error", func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rw.WriteHeader(http.StatusAccepted)
		w.initErr <- b
	})
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bootstrap)
	cmd.Env = append(append(os.Environ(), env...),
		"AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"),
		"AWS_LAMBDA_FUNCTION_NAME="+filepath.Base(filepath.Dir(bootstrap)), "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256", "AWS_LAMBDA_LOG_FORMAT=JSON")
	cmd.Stdout, cmd.Stderr = &w.logs, &w.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		srv.Close()
	})
	return w
}

// invoke hands event to the function and returns its answer.
func (w *warmFunction) invoke(t *testing.T, event []byte) invokeResult {
	t.Helper()
	timeout := time.After(10 * time.Second)
	select {
	case w.events <- event:
	case b := <-w.initErr:
		t.Fatalf("init failed: %s\n%s", b, w.logs.String())
	case <-timeout:
		t.Fatalf("the function never asked for an event\n%s", w.logs.String())
	}
	select {
	case r := <-w.results:
		return r
	case <-timeout:
		t.Fatalf("no answer within 10 s\n%s", w.logs.String())
	}
	return invokeResult{}
}

// authorized reports whether an HTTP API simple response admits the caller.
func (r invokeResult) authorized(t *testing.T) bool {
	t.Helper()
	if r.errBody != nil {
		t.Fatalf("authorizer error: %s", r.errBody)
	}
	var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err := json.Unmarshal(r.response, &resp); err != nil {
		t.Fatalf("not a simple response: %s (%v)", r.response, err)
	}
	return resp.IsAuthorized
}

// TestRevocationBound shows the revocation bounds the README states, on the real authorizer
// binary with the environment its template gives it, against DynamoDB Local, in one warm
// execution environment: the management API's authorizer refuses a revoked token on the next
// call; a consumer API's refuses it at most MemoryCacheTtlSeconds after the revoke (here 1 s;
// the API's authorizer result TTL, API Gateway's cache, comes on top and is 0 in the README's
// snippets).
func TestRevocationBound(t *testing.T) {
	client := dynamotest.MustClient(t)
	endpoint := dynamotest.MustEndpoint(t)
	bootstrap := mustBinary(t, "functions/authorizer")
	const cacheTTL = time.Second

	for _, tc := range []struct {
		name  string
		env   func(table string) []string
		bound time.Duration // after the revoke, the token must be refused once this has passed
	}{
		{"management API", func(table string) []string {
			return functionEnv(t, mustTemplate(t), "ManagementAuthorizerFunction", nil, map[string]string{"Table": table})
		}, 0},
		{"consumer API", func(table string) []string {
			return functionEnv(t, mustTemplateFile(t, appTemplate), "AuthorizerFunction", map[string]string{
				"TableName": table, "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/" + table,
				"MemoryCacheTtlSeconds": fmt.Sprint(cacheTTL.Seconds()),
			}, nil)
		}, cacheTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := dynamotest.MustTable(t, client, dynamo.CreateTable)
			store := dynamo.New(client, table, dynamo.Options{})
			plaintext := mustSeedPlaintext(t, store, "acme", "manage")
			event := withToken(t, filepath.Join(root, "events", "authorizer-http-v2.json"), plaintext)
			fn := startWarm(t, bootstrap, append(tc.env(table), awsEnv(endpoint)...))

			if !fn.invoke(t, event).authorized(t) {
				t.Fatal("a valid token is refused")
			}
			revoked := mustRevoke(t, store, plaintext)
			if tc.bound > 0 {
				if fn.invoke(t, event).authorized(t) {
					t.Logf("%v after the revoke: still admitted from the memory cache", time.Since(revoked).Round(time.Millisecond))
				}
				time.Sleep(tc.bound - time.Since(revoked) + 50*time.Millisecond)
			}
			if fn.invoke(t, event).authorized(t) {
				t.Errorf("%v after the revoke (bound %v): the revoked token is still admitted", time.Since(revoked).Round(time.Millisecond), tc.bound)
			}
		})
	}
}

// mustRevoke revokes the token of plaintext in store, as the revoke function does, and returns
// when.
func mustRevoke(t *testing.T, store *dynamo.Store, plaintext string) time.Time {
	t.Helper()
	p, ok := token.Parse(token.DefaultPrefix, plaintext)
	if !ok {
		t.Fatalf("cannot parse %s", plaintext)
	}
	tok, err := store.FindToken(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	tok.RevokedAt, tok.UpdatedAt = now, now
	if err := store.UpdateToken(context.Background(), tok, nil); err != nil {
		t.Fatal(err)
	}
	return now
}
