package lifecycle_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// startMoto runs moto_server on a free port of 127.0.0.1 for the test and returns its URL. It
// fails, naming the install command, when moto_server is missing (scripts/prerequisites.sh).
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatal("moto_server not found: pip install 'moto[server]'")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://127.0.0.1:" + port
	for range 300 { // up to 30 s for python to start on a busy machine
		if resp, err := http.Get(url + "/moto-api/"); err == nil {
			resp.Body.Close()
			return url
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("moto_server did not start")
	return ""
}

// logsCall calls a CloudWatch Logs action on moto (which does not check signatures) and decodes
// its answer into out.
func logsCall(t *testing.T, url, action string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, url+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Logs_20140328."+action)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20261122/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logs %s: %s", action, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

// Events published through the EventBridge API reach a rule that routes token.revoked to a log
// group, as the template's example rule does: source, detail-type and detail arrive as sent,
// and the rule's pattern keeps the other types out.
func TestEventBridgeMoto(t *testing.T) {
	url := startMoto(t)
	env := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": url}
	client, err := lifecycle.NewEnvClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	bus, group := "apitokens-test", "/apitokens/events"
	if _, err := client.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	logsCall(t, url, "CreateLogGroup", map[string]string{"logGroupName": group}, nil)
	if _, err := client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("revoked"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["apitokens"],"detail-type":["token.revoked"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("revoked"), EventBusName: aws.String(bus),
		Targets: []types.Target{{Id: aws.String("log"), Arn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + group)}}}); err != nil {
		t.Fatal(err)
	}

	events := sample(12) // 6 created, 6 revoked, in two PutEvents calls
	if err := lifecycle.NewEventBridge(client, bus).Publish(ctx, events); err != nil {
		t.Fatal(err)
	}
	var out struct{ Events []struct{ Message string } }
	logsCall(t, url, "FilterLogEvents", map[string]string{"logGroupName": group}, &out)
	var got []string
	for _, e := range out.Events {
		var msg struct {
			Source     string          `json:"source"`
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal([]byte(e.Message), &msg); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s", msg.Source, msg.DetailType, canonical(t, string(msg.Detail))))
	}
	var want []string
	for _, e := range events {
		if e.Type == token.EventRevoked {
			b, _ := json.Marshal(e)
			want = append(want, "apitokens token.revoked "+canonical(t, string(b)))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routed events\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A bus that does not exist: the call fails, and Publish says so.
	if err := lifecycle.NewEventBridge(client, "no-such-bus").Publish(ctx, sample(1)); err == nil {
		t.Error("publishing to a missing bus succeeded")
	}
}
