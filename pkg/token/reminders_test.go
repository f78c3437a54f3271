package token_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// reminderPublisher records what it is given, and refuses it while failing is set.
type reminderPublisher struct {
	mu      sync.Mutex
	failing bool
	events  []token.Event
}

func (p *reminderPublisher) Publish(_ context.Context, events []token.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errors.New("eventbridge: 1 of 1 events not accepted (InternalFailure: try again)")
	}
	p.events = append(p.events, events...)
	return nil
}

// sent lists the events as "<token name> <daysBefore>".
func (p *reminderPublisher) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, fmt.Sprintf("%s %d", e.Name, e.DaysBefore))
	}
	return out
}

func newReminders(t *testing.T, f *fixture, pub token.Publisher, days []int) *token.Reminders {
	t.Helper()
	r, err := token.NewReminders(f.mem, token.ReminderConfig{Days: days, Events: pub, Now: f.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runHourly runs r every hour for hours hours, as the schedule does.
func runHourly(t *testing.T, f *fixture, r *token.Reminders, hours int) {
	t.Helper()
	for range hours {
		f.clock.Advance(time.Hour)
		if _, err := r.Run(ctx); err != nil {
			t.Fatalf("run at %v: %v", f.clock.Now(), err)
		}
	}
}

var remindAdmin = token.Principal{Owner: "alice", Permissions: []string{token.PermAdmin}}

// Hourly runs over 41 days: a reminder at 30 and at 7 days before each expiry, once each, sent by
// the first run after it falls due; a token created inside a threshold gets only the later ones;
// revoked and never-expiring tokens get none; a disabled token is still reminded (it can be
// enabled again).
func TestRemindersAtEachThreshold(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &reminderPublisher{}
	r := newReminders(t, f, pub, nil)
	days := func(n int) token.Lifetime { return token.Lifetime{Days: ptr(n)} }
	plain, _ := f.mustCreate(t, remindAdmin, token.CreateInput{Name: "plain", Lifetime: days(40)})
	f.mustCreate(t, remindAdmin, token.CreateInput{Name: "short", Lifetime: days(20)})
	revoked, _ := f.mustCreate(t, remindAdmin, token.CreateInput{Name: "revoked", Lifetime: days(40)})
	f.mustCreate(t, remindAdmin, token.CreateInput{Name: "disabled", Lifetime: days(40), Enabled: ptr(false)})
	f.mustCreate(t, remindAdmin, token.CreateInput{Name: "never", Lifetime: token.Lifetime{Never: true}})
	if _, err := f.svc.Revoke(ctx, remindAdmin, revoked.ID); err != nil {
		t.Fatal(err)
	}

	runHourly(t, f, r, 41*24)
	// Those with one expiry are sent together, in any order.
	got := pub.sent()
	if len(got) != 5 {
		t.Fatalf("reminders %v, want 5", got)
	}
	slices.Sort(got[:2])
	slices.Sort(got[3:])
	want := "disabled 30,plain 30,short 7,disabled 7,plain 7"
	if got := strings.Join(got, ","); got != want {
		t.Fatalf("reminders %s, want %s", got, want)
	}
	for _, e := range pub.events {
		if e.Name != "plain" {
			continue
		}
		due := plain.ExpiresAt.Add(-time.Duration(e.DaysBefore) * token.Day)
		if e.Time.Before(due) || e.Time.After(due.Add(time.Hour)) || !e.ExpiresAt.Equal(plain.ExpiresAt) ||
			e.EventID != token.ReminderEventID(token.Reminder{TokenID: plain.ID, DaysBefore: e.DaysBefore, ExpiresAt: plain.ExpiresAt}) ||
			e.Type != token.EventExpiring || e.Version != token.EventVersion || e.Owner != "alice" || e.Actor != (token.EventActor{}) {
			t.Errorf("reminder %+v: want token.expiring of plain sent within the hour after %v", e, due)
		}
	}
}

// A changed expiry is reminded again: the 30-day reminder of the old expiry was sent, the new one
// gets both of its own; the old expiry's 7-day reminder never comes.
func TestRemindersFollowAChangedExpiry(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &reminderPublisher{}
	r := newReminders(t, f, pub, nil)
	tok, _ := f.mustCreate(t, remindAdmin, token.CreateInput{Name: "ci", Lifetime: token.Lifetime{Days: ptr(40)}})
	runHourly(t, f, r, 11*24)
	if got := strings.Join(pub.sent(), ","); got != "ci 30" {
		t.Fatalf("before the change: %s", got)
	}
	updated, err := f.svc.Update(ctx, remindAdmin, tok.ID, token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(60)}})
	if err != nil {
		t.Fatal(err)
	}
	runHourly(t, f, r, 61*24)
	if got := strings.Join(pub.sent(), ","); got != "ci 30,ci 30,ci 7" {
		t.Fatalf("after the change: %s", got)
	}
	for _, e := range pub.events[1:] {
		if !e.ExpiresAt.Equal(updated.ExpiresAt) {
			t.Errorf("reminder %s of expiry %v, want the new %v", e.EventID, e.ExpiresAt, updated.ExpiresAt)
		}
	}
}

// A reminder whose publication fails is released and sent by the next run, with the same
// eventId; a reminder still unsent DefaultReminderLookback after falling due (the schedule
// stopped that long) is given up.
func TestRemindersRetryAfterAFailure(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &reminderPublisher{failing: true}
	r := newReminders(t, f, pub, []int{7})
	f.mustCreate(t, remindAdmin, token.CreateInput{Name: "ci", Lifetime: token.Lifetime{Days: ptr(7)}})
	f.clock.Advance(time.Minute)
	run, err := r.Run(ctx)
	if err == nil || run != (token.ReminderRun{Due: 1, Failed: 1}) || !strings.Contains(err.Error(), "InternalFailure") {
		t.Fatalf("run with a failing publisher: %+v, %v", run, err)
	}
	pub.failing = false
	f.clock.Advance(2 * time.Hour) // two runs missed: still within the lookback
	if run, err := r.Run(ctx); err != nil || run != (token.ReminderRun{Due: 1, Sent: 1}) {
		t.Fatalf("next run: %+v, %v; want the reminder sent", run, err)
	}
	f.clock.Advance(time.Minute)
	if run, err := r.Run(ctx); err != nil || run != (token.ReminderRun{Due: 1, Skipped: 1}) {
		t.Fatalf("run after it was sent: %+v, %v; want it skipped", run, err)
	}

	late := newFixture(t, token.Config{})
	latePub := &reminderPublisher{}
	lateRun := newReminders(t, late, latePub, []int{7})
	late.mustCreate(t, remindAdmin, token.CreateInput{Name: "late", Lifetime: token.Lifetime{Days: ptr(7)}})
	late.clock.Advance(token.DefaultReminderLookback + time.Second)
	if run, err := lateRun.Run(ctx); err != nil || run.Due != 0 || len(latePub.events) != 0 {
		t.Fatalf("a run after the lookback: %+v, %v, %v; want nothing due", run, err, latePub.events)
	}
}

// The attacker's view of an event: whoever reads the bus learns nothing that authenticates. The
// event holds neither the plaintext, nor its secret, nor the hash in any encoding, nor the hint,
// though the memory store hands the sweep whole records.
func TestReminderEventHoldsNoSecret(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &reminderPublisher{}
	r := newReminders(t, f, pub, []int{30})
	tok, plaintext := f.mustCreate(t, remindAdmin, token.CreateInput{Name: "ci", Lifetime: token.Lifetime{Days: ptr(30)}, Env: "live"})
	f.clock.Advance(time.Minute)
	if _, err := r.Run(ctx); err != nil || len(pub.events) != 1 {
		t.Fatalf("run: %v, %d events", err, len(pub.events))
	}
	stored, err := f.mem.FindToken(ctx, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pub.events[0])
	detail := string(b)
	secret := plaintext[strings.LastIndex(plaintext, "_")+1+len(tok.ID):]
	for what, s := range map[string]string{
		"plaintext": plaintext, "secret": secret[:20], "hint": stored.Hint,
		"hash (hex)": hex.EncodeToString(stored.SecretHash), "hash (base64)": base64.StdEncoding.EncodeToString(stored.SecretHash),
	} {
		if s != "" && strings.Contains(detail, s) {
			t.Errorf("the event holds the %s: %s", what, detail)
		}
	}
	for _, field := range []string{`"daysBefore":30`, `"tokenId":"` + tok.ID + `"`, `"env":"live"`} {
		if !strings.Contains(detail, field) {
			t.Errorf("the event lacks %s: %s", field, detail)
		}
	}
}

func TestReminderConfig(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &reminderPublisher{}
	for _, tc := range []struct {
		name string
		cfg  token.ReminderConfig
		want string
	}{
		{"no publisher", token.ReminderConfig{}, "publisher"},
		{"zero days", token.ReminderConfig{Events: pub, Days: []int{30, 0}}, "0 is not a whole number of days from 1 to 3650"},
		{"too many days", token.ReminderConfig{Events: pub, Days: []int{3651}}, "3651 is not"},
		{"a repeat", token.ReminderConfig{Events: pub, Days: []int{7, 30, 7}}, "7 is listed twice"},
		{"eleven thresholds", token.ReminderConfig{Events: pub, Days: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}, "want 1 to 10 thresholds, got 11"},
		{"empty list", token.ReminderConfig{Events: pub, Days: []int{}}, "want 1 to 10 thresholds, got 0"},
		{"lookback over a day", token.ReminderConfig{Events: pub, Lookback: 25 * time.Hour}, "lookback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.NewReminders(f.mem, tc.cfg)
			if token.ErrorCode(err) != token.EINVALID || !strings.Contains(token.ErrorMessage(err), tc.want) {
				t.Errorf("err = %v, want EINVALID naming %q", err, tc.want)
			}
		})
	}
	r, err := token.NewReminders(f.mem, token.ReminderConfig{Events: pub, Days: []int{7, 90, 30}})
	if err != nil || fmt.Sprint(r.Days()) != "[90 30 7]" {
		t.Fatalf("days %v, %v", r.Days(), err)
	}
}

// batchPublisher records the size of each Publish call.
type batchPublisher struct{ sizes []int }

func (p *batchPublisher) Publish(_ context.Context, events []token.Event) error {
	p.sizes = append(p.sizes, len(events))
	return nil
}

// Reminders claimed already (by an overlapping run) are skipped, and the rest still go out in
// full batches of 10: 25 due, 12 claimed elsewhere, 13 sent as 10 + 3.
func TestRemindersPublishFullBatches(t *testing.T) {
	f := newFixture(t, token.Config{})
	pub := &batchPublisher{}
	r := newReminders(t, f, pub, []int{7})
	for i := range 25 {
		tok, _ := f.mustCreate(t, remindAdmin, token.CreateInput{Name: fmt.Sprint("t", i), Lifetime: token.Lifetime{Days: ptr(7)}})
		if i%2 == 0 && i < 24 {
			if ok, err := f.mem.ClaimReminder(ctx, token.Reminder{TokenID: tok.ID, DaysBefore: 7, ExpiresAt: tok.ExpiresAt}); !ok || err != nil {
				t.Fatalf("claim: %v %v", ok, err)
			}
		}
		f.clock.Advance(time.Second)
	}
	run, err := r.Run(ctx)
	if err != nil || run != (token.ReminderRun{Due: 25, Sent: 13, Skipped: 12}) || fmt.Sprint(pub.sizes) != "[10 3]" {
		t.Fatalf("run %+v, %v, PutEvents batches %v; want 13 sent as [10 3]", run, err, pub.sizes)
	}
}
