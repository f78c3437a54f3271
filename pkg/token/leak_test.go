package token_test

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

var github = token.Reporter{Name: token.ReporterGitHub, SourceIP: "192.0.2.7", RequestID: "gh-1"}

// leakFixture holds tokens of owner alice in every state a report may meet.
type leakFixture struct {
	*fixture
	active, revoked, expired, disabled, rotated *token.Token
	// plaintexts of the tokens above; rotatedOld is rotated's previous secret (grace: 1 h)
	activeP, revokedP, expiredP, disabledP, rotatedP, rotatedOld string
}

func newLeakFixture(t *testing.T, cfg token.Config) *leakFixture {
	t.Helper()
	f := &leakFixture{fixture: newFixture(t, cfg)}
	alice := func(in token.CreateInput) (*token.Token, string) {
		in.Owner = "alice"
		return f.mustCreate(t, admin, in)
	}
	f.active, f.activeP = alice(token.CreateInput{Env: "live", ClientID: "ci"})
	f.revoked, f.revokedP = alice(token.CreateInput{})
	if _, err := f.svc.Revoke(ctx, admin, f.revoked.ID); err != nil {
		t.Fatal(err)
	}
	f.expired, f.expiredP = alice(token.CreateInput{Lifetime: token.Lifetime{Days: ptr(1)}})
	f.disabled, f.disabledP = alice(token.CreateInput{Enabled: ptr(false)})
	f.rotated, f.rotatedOld = alice(token.CreateInput{})
	var err error
	if _, f.rotatedP, err = f.svc.Rotate(ctx, admin, f.rotated.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	return f
}

// events returns alice's audit events of the given actions, newest first.
func (f *fixture) events(tb testing.TB, actions ...string) []*token.AuditEvent {
	tb.Helper()
	page, err := f.svc.Audit(ctx, admin, token.AuditInput{Owner: "alice", Limit: token.MaxListLimit})
	if err != nil {
		tb.Fatal(err)
	}
	var out []*token.AuditEvent
	for _, e := range page.Events {
		if slices.Contains(actions, e.Action) {
			out = append(out, e)
		}
	}
	return out
}

func (f *fixture) mustReport(tb testing.TB, reports ...token.LeakReport) []bool {
	tb.Helper()
	got, err := f.svc.ReportLeaks(ctx, github, reports)
	if err != nil {
		tb.Fatalf("ReportLeaks: %v", err)
	}
	return got
}

func leak(tok string) token.LeakReport {
	return token.LeakReport{Token: tok, Type: "apitokens_token", URL: "https://github.com/octo/repo/blob/abc/.env", Source: "content"}
}

// swapSecret returns plaintext with the last character of its secret changed (and the checksum
// made right again), so it parses but holds another secret.
func swapSecret(tb testing.TB, prefix, plaintext string) string {
	tb.Helper()
	p, ok := token.Parse(prefix, plaintext)
	if !ok {
		tb.Fatalf("%q does not parse", plaintext)
	}
	s := []byte(p.Secret)
	s[len(s)-1] ^= 1
	return token.Format(prefix, p.Env, p.ID, string(s))
}

func TestReportLeaksMixedBatch(t *testing.T) {
	f := newLeakFixture(t, token.Config{})
	p, _ := token.Parse(token.DefaultPrefix, f.activeP)
	// The expiry passes now.
	f.clock.Advance(2 * token.Day)

	reports := []struct {
		name string
		tok  string
		want bool
	}{
		{"active", f.activeP, true},
		{"already revoked", f.revokedP, true},
		{"expired", f.expiredP, true},
		{"disabled", f.disabledP, true},
		{"rotated, its current secret", f.rotatedP, true},
		{"malformed", "tok_live_notatoken", false},
		{"checksum broken", brokenChecksum(f.activeP), false},
		{"another deployment's prefix, same id and secret", token.Format("other", p.Env, p.ID, p.Secret), false},
		{"another deployment's token", token.Format("other", "", token.NewID(), token.NewSecret()), false},
		{"unknown id", token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()), false},
		{"right id, wrong secret", swapSecret(t, token.DefaultPrefix, f.activeP), false},
		{"right id and secret, wrong environment label", token.Format(token.DefaultPrefix, "test", p.ID, p.Secret), false},
		{"right id and secret, no environment label", token.Format(token.DefaultPrefix, "", p.ID, p.Secret), false},
		{"empty", "", false},
		{"active again in the same report", f.activeP, true},
	}
	var in []token.LeakReport
	for _, r := range reports {
		in = append(in, leak(r.tok))
	}
	got := f.mustReport(t, in...)
	for i, r := range reports {
		if got[i] != r.want {
			t.Errorf("%s: true positive %v; want %v", r.name, got[i], r.want)
		}
	}

	for _, tok := range []*token.Token{f.active, f.expired, f.disabled, f.rotated} {
		if st := f.mustGet(t, tok.ID).Status(f.clock.Now()); st != token.StatusRevoked {
			t.Errorf("token %s: %s after the report; want revoked", tok.Name, st)
		}
	}
	f.assertVerdict(t, f.activeP, token.CodeRevoked)

	events := f.events(t, token.ActionLeakRevoked)
	if len(events) != 4 {
		t.Fatalf("%d leak_revoked events; want 4 (active once, expired, disabled, rotated; none for the revoked one)", len(events))
	}
	for _, e := range events {
		want := token.Report{Reporter: token.ReporterGitHub, URL: "https://github.com/octo/repo/blob/abc/.env", Source: "content", Type: "apitokens_token"}
		if e.Report == nil || *e.Report != want || e.ActorTokenID != "" || e.ActorOwner != "" ||
			e.SourceIP != github.SourceIP || e.RequestID != github.RequestID || e.TargetOwner != "alice" {
			t.Errorf("event %+v; want the report %+v by %+v, no actor token", e, want, github)
		}
		if !slices.ContainsFunc(e.Changes, func(c token.Change) bool { return c.Field == "revokedAt" && c.Old == nil }) {
			t.Errorf("event changes %v; want revokedAt set", e.Changes)
		}
	}
}

func TestReportLeaksRepeatedChangesNothing(t *testing.T) {
	f := newLeakFixture(t, token.Config{})
	first := f.mustReport(t, leak(f.activeP), leak("nope"))
	before := f.events(t, token.ActionLeakRevoked, token.ActionRevoke, token.ActionUpdate)
	revokedAt := f.mustGet(t, f.active.ID).RevokedAt
	f.clock.Advance(time.Hour)
	again := f.mustReport(t, leak(f.activeP), leak("nope"))
	if !slices.Equal(first, again) || !slices.Equal(first, []bool{true, false}) {
		t.Fatalf("answers %v then %v; want [true false] twice", first, again)
	}
	if after := f.events(t, token.ActionLeakRevoked, token.ActionRevoke, token.ActionUpdate); len(after) != len(before) {
		t.Fatalf("a repeated report wrote %d events", len(after)-len(before))
	}
	if got := f.mustGet(t, f.active.ID).RevokedAt; !got.Equal(revokedAt) {
		t.Fatalf("revokedAt moved from %v to %v", revokedAt, got)
	}
}

func TestReportLeaksPreviousSecret(t *testing.T) {
	f := newLeakFixture(t, token.Config{})
	later := newLeakFixture(t, token.Config{})
	later.clock.Advance(2 * time.Hour) // the grace period is over: the old secret is no credential
	if got := f.mustReport(t, leak(f.rotatedOld)); !got[0] {
		t.Fatal("the previous secret during the grace period: false positive; want true")
	}
	f.assertVerdict(t, f.rotatedP, token.CodeRevoked)
	if got := later.mustReport(t, leak(later.rotatedOld)); got[0] {
		t.Fatal("the previous secret after the grace period: true positive; want false")
	}
	later.assertVerdict(t, later.rotatedP, token.CodeValid)
}

func TestReportLeaksDisable(t *testing.T) {
	f := newLeakFixture(t, token.Config{LeakAction: token.LeakDisable})
	got := f.mustReport(t, leak(f.activeP), leak(f.disabledP), leak(f.revokedP))
	if !slices.Equal(got, []bool{true, true, true}) {
		t.Fatalf("answers %v; want all true", got)
	}
	tok := f.mustGet(t, f.active.ID)
	if tok.Enabled || !tok.RevokedAt.IsZero() {
		t.Fatalf("active token: enabled %v, revokedAt %v; want disabled, not revoked", tok.Enabled, tok.RevokedAt)
	}
	f.assertVerdict(t, f.activeP, token.CodeDisabled)
	events := f.events(t, token.ActionLeakDisabled, token.ActionLeakRevoked)
	if len(events) != 1 || events[0].Action != token.ActionLeakDisabled || events[0].TargetID != f.active.ID {
		t.Fatalf("events %+v; want one leak_disabled of the active token (the disabled and revoked ones need nothing)", events)
	}
	// Its owner rotates it and enables it again; the leaked secret stays dead.
	if _, _, err := f.svc.Rotate(ctx, admin, f.active.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Update(ctx, admin, f.active.ID, token.UpdateInput{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	f.assertVerdict(t, f.activeP, token.CodeNotFound)
}

func TestReportLeaksTooMany(t *testing.T) {
	f := newLeakFixture(t, token.Config{})
	reports := make([]token.LeakReport, token.MaxLeakReports+1)
	reports[0] = leak(f.activeP)
	_, err := f.svc.ReportLeaks(ctx, github, reports)
	if token.ErrorCode(err) != token.ETOOLARGE {
		t.Fatalf("error %v; want %s", err, token.ETOOLARGE)
	}
	f.assertVerdict(t, f.activeP, token.CodeValid)
	reports = reports[:token.MaxLeakReports]
	if got := f.mustReport(t, reports...); !got[0] {
		t.Fatalf("%d reports: the active token is a false positive", len(reports))
	}
}

func TestReportLeaksBoundsReportTexts(t *testing.T) {
	f := newLeakFixture(t, token.Config{})
	r := leak(f.activeP)
	r.URL = "https://e.example/" + strings.Repeat("é", token.MaxReportText) // 2 bytes each: cut mid-way
	r.Source = "con\u202etent\x00"
	f.mustReport(t, r)
	e := f.events(t, token.ActionLeakRevoked)[0].Report
	if len(e.URL) > token.MaxReportText || len(e.URL) < token.MaxReportText-1 || !strings.HasPrefix(r.URL, e.URL) || !utf8.ValidString(e.URL) {
		t.Errorf("URL kept as %d bytes (valid UTF-8: %v); want a prefix of %d or %d bytes", len(e.URL), utf8.ValidString(e.URL), token.MaxReportText-1, token.MaxReportText)
	}
	if e.Source != "content" {
		t.Errorf("source %q; want the bidi and control characters dropped", e.Source)
	}
}

// leakRaceStore changes a token behind the service's back just before its first update, as a
// concurrent PATCH would.
type leakRaceStore struct {
	*memstore.Store
	svc   func() *token.Service
	raced atomic.Bool
}

func (s *leakRaceStore) UpdateToken(ctx context.Context, t *token.Token, ev *token.AuditEvent) error {
	if s.raced.CompareAndSwap(false, true) {
		if _, err := s.svc().Update(ctx, admin, t.ID, token.UpdateInput{Name: ptr("renamed meanwhile")}); err != nil {
			return err
		}
	}
	return s.Store.UpdateToken(ctx, t, ev)
}

func TestReportLeaksRetriesALostRace(t *testing.T) {
	var f *fixture
	f = newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store {
		return &leakRaceStore{Store: m, svc: func() *token.Service { return f.svc }}
	})
	tok, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	if got := f.mustReport(t, leak(plaintext)); !got[0] {
		t.Fatal("false positive")
	}
	stored := f.mustGet(t, tok.ID)
	if stored.RevokedAt.IsZero() || stored.Name != "renamed meanwhile" {
		t.Fatalf("after the race: revokedAt %v, name %q; want revoked, keeping the concurrent rename", stored.RevokedAt, stored.Name)
	}
	if n := len(f.events(t, token.ActionLeakRevoked)); n != 1 {
		t.Fatalf("%d leak_revoked events; want 1", n)
	}
}

// batchFailStore fails every batch read.
type batchFailStore struct{ *memstore.Store }

var errStore = errors.New("store down")

func (s batchFailStore) FindTokens(context.Context, []string) (map[string]*token.Token, error) {
	return nil, errStore
}

func TestReportLeaksStoreError(t *testing.T) {
	f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { return batchFailStore{m} })
	_, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	if _, err := f.svc.ReportLeaks(ctx, github, []token.LeakReport{leak(plaintext)}); !errors.Is(err, errStore) {
		t.Fatalf("error %v; want the store's", err)
	}
	// A report without a token of this deployment reads nothing.
	if got, err := f.svc.ReportLeaks(ctx, github, []token.LeakReport{leak("ghp_x")}); err != nil || got[0] {
		t.Fatalf("ReportLeaks of a foreign token = %v, %v; want false without a store call", got, err)
	}
}

func TestNewServiceLeakSettings(t *testing.T) {
	for _, cfg := range []token.Config{{LeakAction: "delete"}, {SelfRevokeLimit: -1}, {SelfRevokeLimit: token.MaxRateLimit + 1}} {
		if _, err := token.NewService(memstore.New(nil), cfg); token.ErrorCode(err) != token.EINVALID {
			t.Errorf("NewService(%+v): %v; want %s", cfg, err, token.EINVALID)
		}
	}
}

func TestPattern(t *testing.T) {
	for _, prefix := range []string{token.DefaultPrefix, "acme2"} {
		re := regexp.MustCompile(`\A` + token.Pattern(prefix) + `\z`)
		for _, env := range []string{"", "live", "test", "a1b2c3d4e5f6g7h8"} {
			for range 50 {
				if s := token.Format(prefix, env, token.NewID(), token.NewSecret()); !re.MatchString(s) {
					t.Fatalf("%s does not match %s", s, re)
				}
			}
		}
		for _, s := range []string{
			token.Format("other", "live", token.NewID(), token.NewSecret()),
			token.Format(prefix, "live", token.NewID(), token.NewSecret())[:20],
			prefix + "_Live_" + strings.Repeat("a", 65),
			prefix + "_" + strings.Repeat("a", 64),
		} {
			if re.MatchString(s) {
				t.Errorf("%s matches %s", s, re)
			}
		}
	}
	if got := token.Pattern("tok"); got != `tok_(?:[a-z0-9]{1,16}_)?[0-9A-Za-z]{65}` {
		t.Errorf("Pattern(tok) = %s", got)
	}
}

// revokeCountStore counts the lookups and rate-limit counts of POST /revoke.
type revokeCountStore struct {
	*memstore.Store
	finds, counts atomic.Int64
}

func (s *revokeCountStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	s.finds.Add(1)
	return s.Store.FindToken(ctx, id)
}

func (s *revokeCountStore) CountRequest(ctx context.Context, id string, start time.Time, w time.Duration, limit int64) (int64, bool, error) {
	s.counts.Add(1)
	return s.Store.CountRequest(ctx, id, start, w, limit)
}

func TestRevokeByValue(t *testing.T) {
	var cs *revokeCountStore
	f := newFixtureOn(t, token.Config{SelfRevokeLimit: 100}, func(m *memstore.Store) token.Store {
		cs = &revokeCountStore{Store: m}
		return cs
	})
	tok, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Env: "live", ClientID: "app"})
	_, otherP := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	p, _ := token.Parse(token.DefaultPrefix, plaintext)
	ip := netip.MustParseAddr("198.51.100.4")

	// Nothing that is not the token itself, with its secret, revokes it; each reads the store.
	for _, presented := range []string{
		"junk", "tok_live_", swapSecret(t, token.DefaultPrefix, plaintext), token.Format("other", p.Env, p.ID, p.Secret),
		token.Format(token.DefaultPrefix, "test", p.ID, p.Secret), token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()),
	} {
		finds := cs.finds.Load()
		if err := f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: presented, SourceIP: ip}); err != nil {
			t.Fatalf("RevokeByValue(%.20q): %v", presented, err)
		}
		if cs.finds.Load() != finds+1 {
			t.Errorf("RevokeByValue(%.20q): %d lookups; want 1 whatever the token", presented, cs.finds.Load()-finds)
		}
	}
	f.assertVerdict(t, plaintext, token.CodeValid)
	if n := len(f.events(t, token.ActionRevoke)); n != 0 {
		t.Fatalf("%d revoke events before any revoke", n)
	}

	if err := f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: "  " + plaintext + "\n", SourceIP: ip, RequestID: "r-1"}); err != nil {
		t.Fatal(err)
	}
	f.assertVerdict(t, plaintext, token.CodeRevoked)
	f.assertVerdict(t, otherP, token.CodeValid)
	events := f.events(t, token.ActionRevoke)
	if len(events) != 1 {
		t.Fatalf("%d revoke events; want 1", len(events))
	}
	e := events[0]
	if e.TargetID != tok.ID || e.ActorTokenID != tok.ID || e.ActorOwner != "alice" || e.SourceIP != ip.String() ||
		e.RequestID != "r-1" || e.Report == nil || *e.Report != (token.Report{Reporter: token.ReporterSelf}) {
		t.Fatalf("event %+v (report %+v); want the token revoking itself, reported by %s", e, e.Report, token.ReporterSelf)
	}
	// Again: nothing more happens, and nothing tells.
	if err := f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: plaintext, SourceIP: ip}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events(t, token.ActionRevoke)); n != 1 {
		t.Fatalf("%d revoke events after a second call; want 1", n)
	}
}

func TestRevokeByValueRateLimit(t *testing.T) {
	var cs *revokeCountStore
	f := newFixtureOn(t, token.Config{SelfRevokeLimit: 3}, func(m *memstore.Store) token.Store {
		cs = &revokeCountStore{Store: m}
		return cs
	})
	_, plaintext := f.mustCreate(t, admin, token.CreateInput{Owner: "alice"})
	call := func(ip string) error {
		var addr netip.Addr
		if ip != "" {
			addr = netip.MustParseAddr(ip)
		}
		return f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: "junk", SourceIP: addr})
	}
	for _, group := range [][]string{
		{"203.0.113.1", "203.0.113.1", "::ffff:203.0.113.1"},                       // IPv4, also as IPv4-mapped IPv6
		{"2001:db8:1:2::1", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa:bbbb:cccc:1"}, // one /64
		{"", "", ""}, // unknown addresses share one counter
	} {
		for _, ip := range group {
			if err := call(ip); err != nil {
				t.Fatalf("%s: %v within the limit", ip, err)
			}
		}
		finds := cs.finds.Load()
		err := call(group[0])
		var e *token.Error
		if !errors.As(err, &e) || e.Code != token.ERATELIMITED || e.Limit == nil || e.Limit.Limit != 3 || e.Limit.Remaining != 0 ||
			!e.Limit.Reset.Equal(token.WindowStart(f.clock.Now(), time.Minute).Add(time.Minute)) {
			t.Fatalf("%s, 4th call: %v; want %s with the window's state", group[0], err, token.ERATELIMITED)
		}
		if cs.finds.Load() != finds {
			t.Fatalf("%s: a call over the limit looked the token up", group[0])
		}
	}
	for _, ip := range []string{"203.0.113.2", "2001:db8:1:3::1"} { // another address, another /64
		if err := call(ip); err != nil {
			t.Fatalf("%s: %v; want its own limit", ip, err)
		}
	}
	// Over the limit, even the real token is not revoked; the next minute it is.
	if err := f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: plaintext, SourceIP: netip.MustParseAddr("203.0.113.1")}); token.ErrorCode(err) != token.ERATELIMITED {
		t.Fatalf("%v; want %s", err, token.ERATELIMITED)
	}
	f.assertVerdict(t, plaintext, token.CodeValid)
	f.clock.Advance(time.Minute)
	if err := f.svc.RevokeByValue(ctx, token.RevokeByValueInput{Token: plaintext, SourceIP: netip.MustParseAddr("203.0.113.1")}); err != nil {
		t.Fatal(err)
	}
	f.assertVerdict(t, plaintext, token.CodeRevoked)
}

// brokenChecksum changes the last character of plaintext (of its checksum) to another one.
func brokenChecksum(plaintext string) string {
	last := "x"
	if strings.HasSuffix(plaintext, last) {
		last = "y"
	}
	return plaintext[:len(plaintext)-1] + last
}
