package lifecycle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

var ctx = context.Background()

// sample returns n events of alternating types, the i-th for token id%02d.
func sample(n int) []token.Event {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	exp := at.Add(30 * 24 * time.Hour)
	var out []token.Event
	for i := range n {
		e := token.Event{Type: token.EventCreated, Version: token.EventVersion, EventID: fmt.Sprintf("ev%02d", i), Time: at,
			TokenID: fmt.Sprintf("id%02d", i), Owner: "alice", Name: "ci", ExpiresAt: &exp,
			Actor: token.EventActor{TokenID: "parent", Owner: "alice", SourceIP: "192.0.2.1"}, RequestID: "req-1"}
		if i%2 == 1 {
			e.Type, e.CascadeFrom, e.ExpiresAt = token.EventRevoked, "root", nil
		}
		out = append(out, e)
	}
	return out
}

// putEventsFake records the body of every PutEvents request and answers with the failures
// fail gives (entry index → error code) for the first call.
type putEventsFake struct {
	mu     sync.Mutex
	bodies []string
	fail   map[int]string
}

func (f *putEventsFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		http.Error(w, "unexpected target "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
		return
	}
	f.bodies = append(f.bodies, string(b))
	var in struct{ Entries []json.RawMessage }
	_ = json.Unmarshal(b, &in)
	var entries []map[string]string
	failed := 0
	for i := range in.Entries {
		if code, ok := f.fail[i]; ok && len(f.bodies) == 1 {
			entries = append(entries, map[string]string{"ErrorCode": code, "ErrorMessage": "try again"})
			failed++
			continue
		}
		entries = append(entries, map[string]string{"EventId": fmt.Sprintf("e%d", i)})
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(map[string]any{"FailedEntryCount": failed, "Entries": entries})
}

func fakeClient(t *testing.T, h http.Handler) *lifecycle.EventBridge {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	env := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_ENDPOINT_URL_EVENTBRIDGE": srv.URL}
	client, err := lifecycle.NewEnvClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return lifecycle.NewEventBridge(client, "apitokens-test")
}

// The exact PutEvents payload: batches of 10, source, detail-type, detail JSON, bus, time.
func TestEventBridgePayload(t *testing.T) {
	fake := &putEventsFake{}
	pub := fakeClient(t, fake)
	if err := pub.Publish(ctx, sample(12)); err != nil {
		t.Fatal(err)
	}
	if len(fake.bodies) != 2 {
		t.Fatalf("%d PutEvents calls for 12 events, want 2", len(fake.bodies))
	}
	entry := func(i int) string {
		detail := fmt.Sprintf(`{"version":"1","eventId":"ev%02d","time":"2026-11-22T10:00:00Z","tokenId":"id%02d","owner":"alice","name":"ci",`, i, i)
		typ := "token.created"
		if i%2 == 0 {
			detail += `"expiresAt":"2026-12-22T10:00:00Z",`
		}
		detail += `"actor":{"tokenId":"parent","owner":"alice","sourceIp":"192.0.2.1"},"requestId":"req-1"`
		if i%2 == 1 {
			typ, detail = "token.revoked", detail+`,"cascadeFrom":"root"`
		}
		b, _ := json.Marshal(detail + "}")
		return fmt.Sprintf(`{"Detail":%s,"DetailType":"%s","EventBusName":"apitokens-test","Source":"apitokens","Time":1795341600}`, b, typ)
	}
	for call, want := range [][2]int{{0, 10}, {10, 12}} {
		var entries []string
		for i := want[0]; i < want[1]; i++ {
			entries = append(entries, entry(i))
		}
		exp := `{"Entries":[` + strings.Join(entries, ",") + `]}`
		if got := canonical(t, fake.bodies[call]); got != canonical(t, exp) {
			t.Errorf("call %d body\n got %s\nwant %s", call, got, canonical(t, exp))
		}
	}
}

// canonical re-encodes JSON with sorted keys, so bodies compare whatever the SDK's key order.
func canonical(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, s)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Refused entries are sent once more, alone; what is refused twice is an error naming the code.
func TestEventBridgeFailedEntries(t *testing.T) {
	fake := &putEventsFake{fail: map[int]string{1: "ThrottlingException", 3: "InternalFailure"}}
	if err := fakeClient(t, fake).Publish(ctx, sample(4)); err != nil {
		t.Fatalf("a retried refusal failed: %v", err)
	}
	if len(fake.bodies) != 2 || strings.Count(fake.bodies[1], `"Source"`) != 2 ||
		!strings.Contains(fake.bodies[1], `id01`) || !strings.Contains(fake.bodies[1], `id03`) {
		t.Fatalf("retry bodies %q", fake.bodies)
	}

	always := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprint(w, `{"FailedEntryCount":1,"Entries":[{"ErrorCode":"AccessDeniedException","ErrorMessage":"not allowed"}]}`)
	})
	err := fakeClient(t, always).Publish(ctx, sample(1))
	if err == nil || !strings.Contains(err.Error(), "AccessDeniedException") || !strings.Contains(err.Error(), "1 of 1") {
		t.Fatalf("err = %v", err)
	}
}
