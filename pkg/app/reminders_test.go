package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

func TestReminderDays(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []int
		err   string
	}{
		{"", nil, ""},
		{"30,7", []int{30, 7}, ""},
		{" 90, 30 ,1", []int{90, 30, 1}, ""},
		{"30,,7", nil, `"" is not a whole number of days`},
		{"30d", nil, `"30d" is not a whole number of days`},
		{"0", nil, "0 is not a whole number of days from 1 to 3650"},
		{"-7", nil, "-7 is not"},
		{"7,7", nil, "7 is listed twice"},
		{"1,2,3,4,5,6,7,8,9,10,11", nil, "want 1 to 10 thresholds, got 11"},
	} {
		got, err := app.ReminderDays(func(string) string { return tc.value })
		if tc.err == "" && (err != nil || !slices.Equal(got, tc.want)) {
			t.Errorf("%q: %v, %v; want %v", tc.value, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), app.EnvExpiryReminderDays) || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v; want an error naming %s and %q", tc.value, err, app.EnvExpiryReminderDays, tc.err)
		}
	}
}

// The scheduled function's wiring: it needs EVENT_BUS_NAME and valid days, and a run publishes
// the due reminders to the bus in one PutEvents call.
func TestLambdaReminders(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, r.Header.Get("X-Amz-Target")+" "+string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"FailedEntryCount":0,"Entries":[{"EventId":"e1"},{"EventId":"e2"}]}`)
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"EVENT_BUS_NAME": "apitokens-test", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "k",
		"AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL_EVENTBRIDGE": srv.URL, app.EnvExpiryReminderDays: "30,7"}
	getenv := func(k string) string { return env[k] }
	store := memstore.New(nil)

	without := func(name, value string) func(string) string {
		return func(k string) string {
			if k == name {
				return value
			}
			return env[k]
		}
	}
	if _, err := app.LambdaRemindersWithStore(store, without("EVENT_BUS_NAME", "")); err == nil || !strings.Contains(err.Error(), "EVENT_BUS_NAME") {
		t.Errorf("without EVENT_BUS_NAME: %v", err)
	}
	if _, err := app.LambdaRemindersWithStore(store, without(app.EnvExpiryReminderDays, "30,x")); err == nil || !strings.Contains(err.Error(), app.EnvExpiryReminderDays) {
		t.Errorf("bad days: %v", err)
	}
	if _, err := app.LambdaReminders(without(app.EnvTableName, "")); err == nil || !strings.Contains(err.Error(), app.EnvTableName) {
		t.Errorf("without TABLE_NAME: %v", err)
	}

	now := time.Now()
	for _, d := range []int{30, 7, 20} {
		tok := storetest.NewToken("alice", now)
		tok.ExpiresAt = now.Add(time.Duration(d)*token.Day - 10*time.Minute) // 30 and 7 fell due 10 min ago; 20 is no threshold
		if err := store.CreateToken(context.Background(), tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	h, err := app.LambdaRemindersWithStore(store, getenv)
	if err != nil {
		t.Fatal(err)
	}
	run, err := h(context.Background(), events.EventBridgeEvent{DetailType: "Scheduled Event", Source: "aws.events"})
	if err != nil || run != (token.ReminderRun{Due: 2, Sent: 2}) {
		t.Fatalf("run %+v, %v", run, err)
	}
	if len(bodies) != 1 || !strings.HasPrefix(bodies[0], "AWSEvents.PutEvents ") || strings.Count(bodies[0], `"DetailType":"token.expiring"`) != 2 ||
		strings.Count(bodies[0], `"EventBusName":"apitokens-test"`) != 2 {
		t.Fatalf("PutEvents calls %q", bodies)
	}
	if run, err := h(context.Background(), events.EventBridgeEvent{}); err != nil || run != (token.ReminderRun{Due: 2, Skipped: 2}) || len(bodies) != 1 {
		t.Fatalf("second run %+v, %v, %d calls; want both skipped, no call", run, err, len(bodies))
	}
}
