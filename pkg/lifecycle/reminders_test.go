package lifecycle_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// dueStore returns a memory store at now holding, for each threshold of days, n tokens of alice
// (ids <d>d00, <d>d01, ...) whose reminder fell due 1, 2, ... minutes ago, and the sweep of it.
func dueStore(t *testing.T, now time.Time, n int, days []int, pub token.Publisher) *token.Reminders {
	t.Helper()
	clock := func() time.Time { return now }
	store := memstore.New(clock)
	for _, d := range days {
		for i := range n {
			tok := storetest.NewToken("alice", now.Add(-token.Day))
			tok.ID, tok.Name = fmt.Sprintf("%dd%02d", d, i), "ci"
			tok.ExpiresAt = now.Add(time.Duration(d)*token.Day - time.Duration(i+1)*time.Minute)
			storetest.MustCreate(t, store, tok)
		}
	}
	r, err := token.NewReminders(store, token.ReminderConfig{Days: days, Events: pub, Now: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The exact PutEvents payload of a sweep with 12 reminders due: two calls (10 + 2), soonest
// expiry first, detail-type token.expiring, the deterministic eventId, daysBefore, no actor.
func TestReminderPayload(t *testing.T) {
	fake := &putEventsFake{}
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	run, err := dueStore(t, at, 12, []int{7}, fakeClient(t, fake)).Run(ctx)
	if err != nil || run != (token.ReminderRun{Due: 12, Sent: 12}) {
		t.Fatalf("run %+v, %v", run, err)
	}
	if len(fake.bodies) != 2 {
		t.Fatalf("%d PutEvents calls for 12 reminders, want 2", len(fake.bodies))
	}
	entry := func(i int) string {
		exp := at.Add(7*token.Day - time.Duration(i+1)*time.Minute)
		detail := fmt.Sprintf(`{"version":"1","eventId":"reminder-7d%02d-7d-%d","time":"2026-11-22T10:00:00Z","tokenId":"7d%02d","owner":"alice","name":"ci",`+
			`"env":"live","expiresAt":"%s","actor":{},"daysBefore":7}`, i, exp.Unix(), i, exp.Format(time.RFC3339))
		b, _ := json.Marshal(detail)
		return fmt.Sprintf(`{"Detail":%s,"DetailType":"token.expiring","EventBusName":"apitokens-test","Source":"apitokens","Time":%d}`, b, at.Unix())
	}
	for call, span := range [][2]int{{11, 1}, {1, -1}} { // soonest first: token 11 expires first
		var entries []string
		for i := span[0]; i > span[1]; i-- {
			entries = append(entries, entry(i))
		}
		want := `{"Entries":[` + strings.Join(entries, ",") + `]}`
		if got := canonical(t, fake.bodies[call]); got != canonical(t, want) {
			t.Errorf("call %d body\n got %s\nwant %s", call, got, canonical(t, want))
		}
	}
}

// Through moto's EventBridge: a rule that keeps only the 7-day reminders
// (detail.daysBefore = 7) receives them, and not the 30-day ones sent in the same run.
func TestReminderRuleMoto(t *testing.T) {
	url := startMoto(t)
	env := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": url}
	client, err := lifecycle.NewEnvClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	bus, group := "apitokens-test", "/apitokens/expiring"
	if _, err := client.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(bus)}); err != nil {
		t.Fatal(err)
	}
	logsCall(t, url, "CreateLogGroup", map[string]string{"logGroupName": group}, nil)
	if _, err := client.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("week"), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["apitokens"],"detail-type":["token.expiring"],"detail":{"daysBefore":[7]}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("week"), EventBusName: aws.String(bus),
		Targets: []types.Target{{Id: aws.String("log"), Arn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + group)}}}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	run, err := dueStore(t, at, 3, []int{30, 7}, lifecycle.NewEventBridge(client, bus)).Run(ctx)
	if err != nil || run.Sent != 6 {
		t.Fatalf("run %+v, %v", run, err)
	}
	var out struct{ Events []struct{ Message string } }
	logsCall(t, url, "FilterLogEvents", map[string]string{"logGroupName": group}, &out)
	var got []string
	for _, e := range out.Events {
		var msg struct {
			DetailType string      `json:"detail-type"`
			Detail     token.Event `json:"detail"`
		}
		if err := json.Unmarshal([]byte(e.Message), &msg); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d", msg.DetailType, msg.Detail.TokenID, msg.Detail.DaysBefore))
	}
	want := "token.expiring 7d02 7,token.expiring 7d01 7,token.expiring 7d00 7"
	if strings.Join(got, ",") != want {
		t.Errorf("routed %v, want %s", got, want)
	}
}
