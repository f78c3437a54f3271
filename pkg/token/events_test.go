package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// eventFixture is a fixture whose service publishes to memory.
func eventFixture(t *testing.T, cfg token.Config) (*fixture, *lifecycle.Memory) {
	t.Helper()
	mem := lifecycle.NewMemory(slog.New(slog.DiscardHandler), 0)
	cfg.Events = mem
	return newFixture(t, cfg), mem
}

func eventTypes(mem *lifecycle.Memory) []string {
	var out []string
	for _, e := range mem.Events() {
		out = append(out, e.DetailType)
	}
	return out
}

func TestLifecycleEvents(t *testing.T) {
	f, mem := eventFixture(t, token.Config{})
	manager := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}, TokenID: "", SourceIP: "192.0.2.1", RequestID: "req-1"}
	tok, plaintext := f.mustCreate(t, manager, token.CreateInput{Name: "ci", Env: "live"})
	if _, _, err := f.svc.Rotate(ctx, manager, tok.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, manager, tok.ID, token.UpdateInput{Name: ptr("renamed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, manager, tok.ID, token.UpdateInput{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, manager, tok.ID, token.UpdateInput{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Revoke(ctx, manager, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Revoke(ctx, manager, tok.ID); err != nil { // already revoked: no change, no event
		t.Fatal(err)
	}
	want := []string{token.EventCreated, token.EventRotated, token.EventDisabled, token.EventEnabled, token.EventRevoked}
	if got := eventTypes(mem); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %v, want %v (a rename has none)", got, want)
	}
	events := mem.Events()
	audit := f.events(t, token.ActionCreate, token.ActionRotate, token.ActionUpdate, token.ActionRevoke)
	for _, e := range events {
		d := e.Detail
		if e.Source != "apitokens" || d.Version != "1" || d.TokenID != tok.ID || d.Owner != "alice" || d.Env != "live" ||
			d.Actor.Owner != "alice" || d.Actor.SourceIP != "192.0.2.1" || d.RequestID != "req-1" || d.ExpiresAt == nil {
			t.Errorf("%s: detail %+v", e.DetailType, d)
		}
		var match *token.AuditEvent
		for _, a := range audit {
			if a.ID == d.EventID && a.At.Equal(d.Time) {
				match = a
			}
		}
		if match == nil {
			t.Errorf("%s: eventId %q is no audit event's id", e.DetailType, d.EventID)
			continue
		}
		if e.DetailType == token.EventDisabled || e.DetailType == token.EventEnabled {
			if len(match.Changes) != 1 || match.Changes[0].Field != "enabled" || match.Changes[0].New != (e.DetailType == token.EventEnabled) {
				t.Errorf("%s: from the change %+v", e.DetailType, match.Changes)
			}
		}
	}
	if r := events[1].Detail; r.PreviousSecretUntil == nil || !r.PreviousSecretUntil.Equal(r.Time.Add(time.Hour)) {
		t.Errorf("rotated: previousSecretUntil = %v, want the time plus the 1 h grace", r.PreviousSecretUntil)
	}
	// Never a secret, a hash or a hint: the detail's JSON holds none of the plaintext's parts.
	b, _ := json.Marshal(events)
	_, secret, _ := strings.Cut(strings.TrimPrefix(plaintext, "tok_live_"), "_")
	for _, leak := range []string{plaintext, secret, tok.Hint, "hash", "hint", "secretHash"} {
		if leak != "" && strings.Contains(string(b), leak) {
			t.Errorf("events carry %q: %s", leak, b)
		}
	}
}

func TestLifecycleEventsCascadeAndLeaks(t *testing.T) {
	f, mem := eventFixture(t, token.Config{})
	root, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage, "read"}})
	rootCaller := token.Principal{Owner: "alice", TokenID: root.ID, Permissions: root.Permissions}
	child, _ := f.mustCreate(t, rootCaller, token.CreateInput{})
	if _, _, err := f.svc.RevokeFamily(ctx, admin, root.ID); err != nil {
		t.Fatal(err)
	}
	got := mem.Events()[2:]
	if len(got) != 2 || got[0].Detail.TokenID != root.ID || got[0].Detail.CascadeFrom != "" ||
		got[1].Detail.TokenID != child.ID || got[1].Detail.CascadeFrom != root.ID || got[1].DetailType != token.EventRevoked {
		t.Fatalf("cascade events = %+v", got)
	}

	for _, tc := range []struct {
		mode token.LeakAction
		want string
	}{{token.LeakRevoke, token.EventLeakRevoked}, {token.LeakDisable, token.EventLeakDisabled}} {
		f, mem := eventFixture(t, token.Config{LeakAction: tc.mode})
		_, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
		f.mustReport(t, leak(plaintext))
		f.mustReport(t, leak(plaintext)) // settled: no second event
		ev := mem.Events()
		if len(ev) != 2 || ev[1].DetailType != tc.want || ev[1].Detail.Report == nil || ev[1].Detail.Report.Reporter != token.ReporterGitHub ||
			ev[1].Detail.Report.URL != leak("").URL {
			t.Errorf("%s: events = %+v", tc.mode, ev)
		}
	}
}

// failingPublisher refuses every event.
type failingPublisher struct{ calls int }

func (p *failingPublisher) Publish(context.Context, []token.Event) error {
	p.calls++
	return errors.New("bus unavailable")
}

// A change is written and succeeds when its event cannot be published; the failure is logged.
func TestLifecycleEventPublishFailure(t *testing.T) {
	var log strings.Builder
	pub := &failingPublisher{}
	f := newFixture(t, token.Config{Events: pub, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	tok, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	if _, err := f.svc.Revoke(ctx, admin, tok.ID); err != nil {
		t.Fatalf("Revoke failed with the publisher: %v", err)
	}
	if got, err := f.svc.Get(ctx, admin, tok.ID); err != nil || got.RevokedAt.IsZero() {
		t.Fatalf("token not revoked: %v %v", got, err)
	}
	if pub.calls != 2 || strings.Count(log.String(), "lifecycle event not published") != 2 || !strings.Contains(log.String(), "bus unavailable") {
		t.Errorf("calls %d, log %q", pub.calls, log.String())
	}
	if strings.Contains(log.String(), plaintext) {
		t.Errorf("log holds the plaintext")
	}
}

// A change that fails writes no event (another owner's token, a conflict).
func TestLifecycleEventOnlyAfterWrite(t *testing.T) {
	f, mem := eventFixture(t, token.Config{})
	tok, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	bob := token.Principal{Owner: "bob", Permissions: []string{token.PermManage}}
	if _, err := f.svc.Revoke(ctx, bob, tok.ID); token.ErrorCode(err) != token.ENOTFOUND {
		t.Fatalf("bob revoking alice's token: %v", err)
	}
	if _, err := f.svc.Revoke(ctx, admin, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Rotate(ctx, admin, tok.ID, 0); token.ErrorCode(err) != token.ECONFLICT {
		t.Fatalf("rotate of a revoked token: %v", err)
	}
	if got := eventTypes(mem); strings.Join(got, ",") != token.EventCreated+","+token.EventRevoked {
		t.Errorf("events = %v", got)
	}
}
