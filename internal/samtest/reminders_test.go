package samtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// remindersFunction is the scheduled function of the expiry reminders (functions/expiry-reminders),
// which serves no route.
const remindersFunction = "ExpiryRemindersFunction"

// TestExpiryRemindersBinary runs the real bootstrap of functions/expiry-reminders on its
// scheduled event (events/expiry-reminders.json), with the environment template.yaml gives it,
// against DynamoDB Local through the recorder and a fake EventBridge that refuses the first
// PutEvents: the first invocation fails and releases its claims, the second sends both
// reminders, the third finds them sent. The DynamoDB calls of the three are exactly what its
// policy allows, each grant needed.
func TestExpiryRemindersBinary(t *testing.T) {
	client := dynamotest.MustClient(t)
	rec := mustRecorder(t)
	table := dynamotest.MustTable(t, client, dynamo.CreateTable)
	store := dynamo.New(client, table, dynamo.Options{})
	now := time.Now().UTC()
	for _, d := range []int{30, 7, 12} { // 12: no threshold
		tok := newToken(token.NewID(), "acme", []string{"read"}, token.NewSecret())
		tok.ExpiresAt = now.Add(time.Duration(d)*token.Day - 10*time.Minute)
		mustCreate(t, store, tok)
	}

	var mu sync.Mutex
	var puts []string
	bus := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		puts = append(puts, string(b))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if len(puts) <= 2 { // the first call and its retry: refused
			io.WriteString(w, `{"FailedEntryCount":2,"Entries":[{"ErrorCode":"InternalFailure","ErrorMessage":"x"},{"ErrorCode":"InternalFailure","ErrorMessage":"x"}]}`)
			return
		}
		io.WriteString(w, `{"FailedEntryCount":0,"Entries":[{"EventId":"1"},{"EventId":"2"}]}`)
	}))
	t.Cleanup(bus.Close)

	env := functionEnv(t, mustTemplate(t), remindersFunction, nil, map[string]string{"Table": table, "EventBus": "apitokens-test"})
	env = append(env, awsEnv(rec.URL)...)
	env = append(env, "AWS_ENDPOINT_URL_EVENTBRIDGE="+bus.URL)
	event, err := os.ReadFile(filepath.Join(root, "events", "expiry-reminders.json"))
	if err != nil {
		t.Fatal(err)
	}
	rec.take(t)
	rep := runLambda(t, mustBinary(t, "functions/expiry-reminders"), event, env, 3)
	if rep.Runs[0].InitError != nil {
		t.Fatalf("init failed with the template's environment %q: %s", env, rep.Runs[0].InitError)
	}
	inv := rep.Runs[0].Invocations
	if len(inv) != 3 || inv[0].ErrorType == "" || !strings.Contains(string(inv[0].Error), "released for the next run") {
		t.Fatalf("invocations %+v; want the first to fail", inv)
	}
	for i, want := range []token.ReminderRun{{Due: 2, Sent: 2}, {Due: 2, Skipped: 2}} {
		var got token.ReminderRun
		if err := json.Unmarshal(inv[i+1].Response, &got); err != nil || inv[i+1].ErrorType != "" || got != want {
			t.Errorf("invocation %d: %s %s %s, want %+v", i+2, inv[i+1].ErrorType, inv[i+1].Error, inv[i+1].Response, want)
		}
	}
	if len(puts) != 3 {
		t.Fatalf("%d PutEvents calls, want 3 (a refusal, its retry, the next run's)", len(puts))
	}
	var sent struct {
		Entries []struct{ DetailType, EventBusName, Detail string }
	}
	if err := json.Unmarshal([]byte(puts[2]), &sent); err != nil {
		t.Fatal(err)
	}
	for _, e := range sent.Entries {
		if e.DetailType != token.EventExpiring || e.EventBusName != "apitokens-test" || !strings.Contains(e.Detail, `"daysBefore":`) {
			t.Errorf("entry %+v", e)
		}
	}
	grants := functionGrants(t, mustTemplate(t), mainResource)
	checkCalls(t, "template.yaml "+remindersFunction, grants[remindersFunction], rec.take(t))
}

// TestExpiryReminderDaysParameter: the function gets EXPIRY_REMINDER_DAYS from the parameter, whose
// default the code accepts, and whose pattern refuses what the code refuses for its form (the
// code also refuses repeats and values over 3650, which the pattern cannot express).
func TestExpiryReminderDaysParameter(t *testing.T) {
	tpl := mustTemplate(t)
	vars, _ := get(tpl, "Resources", remindersFunction, "Properties", "Environment", "Variables").(tree)
	if ref(vars[app.EnvExpiryReminderDays]) != "ExpiryReminderDays" {
		t.Errorf("%s: %s = %v, want !Ref ExpiryReminderDays", remindersFunction, app.EnvExpiryReminderDays, vars[app.EnvExpiryReminderDays])
	}
	p := get(tpl, "Parameters", "ExpiryReminderDays")
	re := regexp.MustCompile(str(get(p, "AllowedPattern")))
	accepts := func(s string) bool {
		_, err := app.ReminderDays(func(string) string { return s })
		return err == nil
	}
	if d := str(get(p, "Default")); !re.MatchString(d) || !accepts(d) {
		t.Errorf("default %q: pattern %v, code %v", d, re.MatchString(d), accepts(d))
	}
	for _, s := range []string{"30,7", "1", "3650,90,30,14,7,3,2,1", "1,2,3,4,5,6,7,8,9,10"} {
		if !re.MatchString(s) || !accepts(s) {
			t.Errorf("%q: pattern %v, code %v; want both to accept", s, re.MatchString(s), accepts(s))
		}
	}
	for _, s := range []string{"", "0", "30,,7", "30, 7", "07", "-7", "7d", "1,2,3,4,5,6,7,8,9,10,11"} {
		if re.MatchString(s) {
			t.Errorf("%q: the pattern accepts it (the code: %v)", s, accepts(s))
		}
	}
}
