package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The local server sends expiry reminders to GET /events, once each: a token created with 30
// days left falls due at once for the 30-day threshold.
func TestServeRemindsExpiring(t *testing.T) {
	t.Setenv(envReminderInterval, "1s")
	t.Setenv("EXPIRY_REMINDER_DAYS", "30")
	base, stdout, stop := startServe(t)
	defer stop()
	admin := regexp.MustCompile(`(?m)^Admin token: (tok_\S+)$`).FindStringSubmatch(stdout.String())
	if admin == nil {
		t.Fatalf("no admin token:\n%s", stdout.String())
	}
	status, body := call(t, "POST", base+"/tokens", admin[1], `{"name":"soon","expiresIn":30}`)
	var created struct{ ID string }
	if status != 201 || json.Unmarshal([]byte(body), &created) != nil {
		t.Fatalf("create: %d %s", status, body)
	}
	reminders := func() []string {
		status, body := call(t, "GET", base+"/events", admin[1], "")
		var out struct {
			Events []struct {
				DetailType string `json:"detail-type"`
				Detail     struct {
					TokenID    string
					DaysBefore int
				}
			}
		}
		if status != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("GET /events: %d %s", status, body)
		}
		var got []string
		for _, e := range out.Events {
			if e.DetailType == "token.expiring" && e.Detail.TokenID == created.ID {
				got = append(got, e.DetailType)
			}
		}
		return got
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(reminders()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no token.expiring event for the new token")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Later runs (one a second) find it sent.
	time.Sleep(2500 * time.Millisecond)
	if got := reminders(); len(got) != 1 {
		t.Fatalf("token.expiring events for the token: %v, want exactly 1", got)
	}
}

func TestReminderInterval(t *testing.T) {
	for _, tc := range []struct {
		value  string
		memory bool
		want   time.Duration
		err    bool
	}{
		{"", true, time.Minute, false},
		{"", false, 0, false},
		{"5m", false, 5 * time.Minute, false},
		{"0", true, 0, false},
		{"100ms", true, 0, true},
		{"often", true, 0, true},
	} {
		got, err := reminderInterval(func(string) string { return tc.value }, tc.memory)
		if got != tc.want || (err != nil) != tc.err || err != nil && !strings.Contains(err.Error(), envReminderInterval) {
			t.Errorf("%q (memory %v): %v, %v", tc.value, tc.memory, got, err)
		}
	}
}

// apitokens remind-expiring publishes the due reminders once to the bus, through the SDK's
// standard configuration; without a bus it is a usage error.
func TestRemindExpiringCommand(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"FailedEntryCount":0,"Entries":[]}`)
	}))
	t.Cleanup(srv.Close)
	useEndpoint(t, "http://127.0.0.1:1")
	t.Setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", srv.URL)
	t.Setenv("EXPIRY_REMINDER_DAYS", "12")
	ctx := context.Background()
	var stdout, stderr strings.Builder
	if err := run(ctx, []string{"create", "--store", "memory", "--owner", "ops", "--name", "twelve", "--expires-in", "12", "--json"},
		os.Getenv, noInput(), &stdout, &stderr); err != nil {
		t.Fatalf("create: %v\n%s", err, stderr.String())
	}
	var created struct{ ID string }
	if err := json.Unmarshal([]byte(stdout.String()), &created); err != nil {
		t.Fatalf("create output %s: %v", stdout.String(), err)
	}
	time.Sleep(10 * time.Millisecond) // the reminder falls due at the creation instant; the run must come after it
	for i, want := range []string{`"sent":1`, `"skipped":1`} {
		stdout.Reset()
		err := run(ctx, []string{"remind-expiring", "--store", "memory", "--bus", "apitokens-test", "--json"}, os.Getenv, noInput(), &stdout, &stderr)
		if err != nil || !strings.Contains(stdout.String(), want) {
			t.Fatalf("run %d: %v %s, want %s\n%s", i, err, stdout.String(), want, stderr.String())
		}
	}
	if len(bodies) != 1 || !strings.Contains(bodies[0], `\"tokenId\":\"`+created.ID+`\"`) || !strings.Contains(bodies[0], `"EventBusName":"apitokens-test"`) {
		t.Fatalf("PutEvents bodies %q", bodies)
	}
	t.Setenv("EVENT_BUS_NAME", "")
	err := run(ctx, []string{"remind-expiring", "--store", "memory"}, os.Getenv, noInput(), &stdout, &stderr)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "EVENT_BUS_NAME") {
		t.Errorf("without a bus: %v (exit %d), want a usage error naming EVENT_BUS_NAME", err, exitCode(err))
	}
}
