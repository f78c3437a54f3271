package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

var ctx = context.Background()

// start is the instant every fixture's clock starts at.
var start = storetest.NewClock().Now()

// admin is the bootstrap caller, as `apitokens serve` has it before any token exists.
var admin = token.Principal{Owner: "root", Permissions: []string{token.PermAdmin}}

type fixture struct {
	svc   *token.Service
	mem   *memstore.Store
	clock *storetest.Clock
}

func newFixture(tb testing.TB, cfg token.Config) *fixture {
	tb.Helper()
	return newFixtureOn(tb, cfg, func(s *memstore.Store) token.Store { return s })
}

// newFixtureOn builds the service on wrap(memory store), so a test can interpose on store calls.
func newFixtureOn(tb testing.TB, cfg token.Config, wrap func(*memstore.Store) token.Store) *fixture {
	tb.Helper()
	clock := storetest.NewClock()
	mem := memstore.New(clock.Now)
	cfg.Now = clock.Now
	svc, err := token.NewService(wrap(mem), cfg)
	if err != nil {
		tb.Fatalf("NewService: %v", err)
	}
	return &fixture{svc: svc, mem: mem, clock: clock}
}

func ptr[T any](v T) *T { return &v }

// mustCreate creates a token, naming it "test token" when in has no name.
func (f *fixture) mustCreate(tb testing.TB, caller token.Principal, in token.CreateInput) (*token.Token, string) {
	tb.Helper()
	if in.Name == "" {
		in.Name = "test token"
	}
	tok, plaintext, err := f.svc.Create(ctx, caller, in)
	if err != nil {
		tb.Fatalf("Create(%+v): %v", in, err)
	}
	return tok, plaintext
}

// mustCaller creates a token of owner with perms and authenticates with it, as a management
// request would, returning the caller and its plaintext.
func (f *fixture) mustCaller(tb testing.TB, owner string, perms ...string) (token.Principal, string) {
	tb.Helper()
	_, plaintext := f.mustCreate(tb, admin, token.CreateInput{Owner: owner, Name: owner + " caller", Permissions: perms})
	p, err := authenticate(f.svc, plaintext)
	if err != nil {
		tb.Fatalf("Authenticate: %v", err)
	}
	return p, plaintext
}

// authenticate checks a token presented for a management call, as the local server's
// authenticator does: the caller, or the verdict's error, or the store's.
func authenticate(svc *token.Service, plaintext string) (token.Principal, error) {
	v, err := svc.VerifyRequest(ctx, token.VerifyInput{Token: plaintext})
	if err != nil {
		return token.Principal{}, err
	}
	if err := v.Err(); err != nil {
		return token.Principal{}, err
	}
	return v.Token.Principal(), nil
}

func (f *fixture) mustGet(tb testing.TB, id string) *token.Token {
	tb.Helper()
	tok, err := f.svc.Get(ctx, admin, id)
	if err != nil {
		tb.Fatalf("Get(%s): %v", id, err)
	}
	return tok
}

func (f *fixture) mustVerify(tb testing.TB, plaintext string, required ...string) token.Verdict {
	tb.Helper()
	v, err := f.svc.Verify(ctx, plaintext, required...)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return v
}

func (f *fixture) assertVerdict(tb testing.TB, plaintext, want string, required ...string) {
	tb.Helper()
	if v := f.mustVerify(tb, plaintext, required...); v.Code != want {
		tb.Fatalf("Verify = %s; want %s", v.Code, want)
	}
}

// listIDs follows a list through every page and returns the ids in order.
func (f *fixture) listIDs(tb testing.TB, caller token.Principal, in token.ListInput) []string {
	tb.Helper()
	var ids []string
	for page := 0; ; page++ {
		p, err := f.svc.List(ctx, caller, in)
		if err != nil {
			tb.Fatalf("List(%+v): %v", in, err)
		}
		for _, tok := range p.Tokens {
			ids = append(ids, tok.ID)
		}
		if p.NextCursor == "" {
			return ids
		}
		if page > 1000 {
			tb.Fatalf("List(%+v) does not end", in)
		}
		in.Cursor = p.NextCursor
	}
}

func permissionsN(n int) []string {
	perms := make([]string, n)
	for i := range perms {
		perms[i] = fmt.Sprintf("p%d", i)
	}
	return perms
}

// metaOfSize returns a compact JSON object of exactly n bytes.
func metaOfSize(n int) json.RawMessage {
	return json.RawMessage(`{"k":"` + strings.Repeat("x", n-len(`{"k":""}`)) + `"}`)
}

func TestNewService(t *testing.T) {
	tests := []struct {
		name       string
		cfg        token.Config
		wantCode   string
		wantPrefix string
	}{
		{"zero config", token.Config{}, "", "tok"},
		{"custom prefix", token.Config{Prefix: "acme"}, "", "acme"},
		{"uppercase prefix", token.Config{Prefix: "Tok"}, token.EINVALID, ""},
		{"prefix with separator", token.Config{Prefix: "to_k"}, token.EINVALID, ""},
		{"prefix of 17", token.Config{Prefix: strings.Repeat("a", 17)}, token.EINVALID, ""},
		{"max below the unset default lifetime", token.Config{MaxLifetime: 90 * token.Day}, "", "tok"},
		{"explicit default above max", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 91 * token.Day}, "", "tok"},
		{"max with never as default", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: -1}, "", "tok"},
		{"max above the default lifetime", token.Config{MaxLifetime: 400 * token.Day}, "", "tok"},
		{"bad allowed permission", token.Config{AllowedPermissions: []string{"read", "Write"}}, token.EINVALID, ""},
		{"bad default permission", token.Config{DefaultPermissions: []string{"read all"}}, token.EINVALID, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, err := token.NewService(memstore.New(nil), tt.cfg)
			storetest.AssertCode(t, err, tt.wantCode)
			if err == nil && svc.Prefix() != tt.wantPrefix {
				t.Fatalf("Prefix() = %q; want %q", svc.Prefix(), tt.wantPrefix)
			}
		})
	}
}

// A default beyond the maximum (unset, explicit, or never) means the maximum, so a deployment
// that sets only a maximum works.
func TestDefaultLifetimeCappedByMax(t *testing.T) {
	for _, def := range []time.Duration{0, 365 * token.Day, -1} {
		clock := storetest.NewClock()
		svc, err := token.NewService(memstore.New(clock.Now), token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: def, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := svc.Create(context.Background(), token.Principal{Owner: "o", Permissions: []string{token.PermAdmin}}, token.CreateInput{Name: "n"})
		if err != nil || !tok.ExpiresAt.Equal(clock.Now().Add(90*token.Day)) {
			t.Fatalf("default %v: expiresAt %v (%v); want the 90-day maximum", def, tok, err)
		}
	}
}

func TestCreateRejects(t *testing.T) {
	manager := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}
	reader := token.Principal{Owner: "alice", Permissions: []string{"read", "files:*"}}
	named := func(mod func(*token.CreateInput)) token.CreateInput {
		in := token.CreateInput{Name: "ok"}
		mod(&in)
		return in
	}
	tests := []struct {
		name   string
		cfg    token.Config
		caller token.Principal
		in     token.CreateInput
		want   string
	}{
		{"name empty", token.Config{}, manager, token.CreateInput{}, token.EINVALID},
		{"name whitespace only", token.Config{}, manager, token.CreateInput{Name: " \t\n\u00a0 "}, token.EINVALID},
		{"name of 101", token.Config{}, manager, token.CreateInput{Name: strings.Repeat("a", 101)}, token.EINVALID},
		{"name of 101 runes", token.Config{}, manager, token.CreateInput{Name: strings.Repeat("é", 101)}, token.EINVALID},
		{"name with NUL", token.Config{}, manager, token.CreateInput{Name: "a\x00b"}, token.EINVALID},
		{"name with newline", token.Config{}, manager, token.CreateInput{Name: "a\nb"}, token.EINVALID},
		{"name with escape", token.Config{}, manager, token.CreateInput{Name: "a\x1b[31mb"}, token.EINVALID},
		{"name with DEL", token.Config{}, manager, token.CreateInput{Name: "a\x7fb"}, token.EINVALID},
		{"name invalid UTF-8", token.Config{}, manager, token.CreateInput{Name: "a\xffb"}, token.EINVALID},
		{"permissions empty", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{} }), token.EINVALID},
		{"permissions 51", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = permissionsN(51) }), token.EINVALID},
		{"permission uppercase", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"read", "Write"} }), token.EINVALID},
		{"permission empty string", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{""} }), token.EINVALID},
		{"permission leading dash", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"-read"} }), token.EINVALID},
		{"permission bare wildcard", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"*"} }), token.EINVALID},
		{"permission with space", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"files read"} }), token.EINVALID},
		{"permission non-ASCII", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"lés"} }), token.EINVALID},
		{"permission of 65", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{strings.Repeat("a", 65)} }), token.EINVALID},
		{"permission not allowed", token.Config{AllowedPermissions: []string{"read", "files:read"}}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"read", "write"} }), token.EINVALID},
		{"default permission not allowed", token.Config{AllowedPermissions: []string{"files:read"}}, manager, named(func(in *token.CreateInput) {}), token.EINVALID},
		{"manage grants admin", token.Config{}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{"read", token.PermAdmin} }), token.EFORBIDDEN},
		{"manage grants admin despite allowed list", token.Config{AllowedPermissions: []string{"read"}}, manager, named(func(in *token.CreateInput) { in.Permissions = []string{token.PermAdmin} }), token.EFORBIDDEN},
		{"env uppercase", token.Config{}, manager, named(func(in *token.CreateInput) { in.Env = "LIVE" }), token.EINVALID},
		{"env with separator", token.Config{}, manager, named(func(in *token.CreateInput) { in.Env = "li_ve" }), token.EINVALID},
		{"env of 17", token.Config{}, manager, named(func(in *token.CreateInput) { in.Env = strings.Repeat("a", 17) }), token.EINVALID},
		{"expiresAt in the past", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime.At = ptr(start.Add(-time.Second)) }), token.EINVALID},
		{"expiresAt now", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime.At = ptr(start) }), token.EINVALID},
		{"expiresAt and expiresIn", token.Config{}, manager, named(func(in *token.CreateInput) {
			in.Lifetime = token.Lifetime{At: ptr(start.Add(token.Day)), Days: ptr(1)}
		}), token.EINVALID},
		{"expiresIn and never", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime = token.Lifetime{Days: ptr(1), Never: true} }), token.EINVALID},
		{"expiresAt and never", token.Config{}, manager, named(func(in *token.CreateInput) {
			in.Lifetime = token.Lifetime{At: ptr(start.Add(token.Day)), Never: true}
		}), token.EINVALID},
		{"expiresIn 0", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime.Days = ptr(0) }), token.EINVALID},
		{"expiresIn negative", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime.Days = ptr(-1) }), token.EINVALID},
		{"expiresIn 3651", token.Config{}, manager, named(func(in *token.CreateInput) { in.Lifetime.Days = ptr(3651) }), token.EINVALID},
		{"expiresIn over max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, manager, named(func(in *token.CreateInput) { in.Lifetime.Days = ptr(91) }), token.EINVALID},
		{"expiresAt over max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, manager, named(func(in *token.CreateInput) {
			in.Lifetime.At = ptr(start.Add(90*token.Day + time.Second))
		}), token.EINVALID},
		{"never under max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, manager, named(func(in *token.CreateInput) { in.Lifetime.Never = true }), token.EINVALID},
		{"clientId with space", token.Config{}, manager, named(func(in *token.CreateInput) { in.ClientID = "my app" }), token.EINVALID},
		{"clientId of 129", token.Config{}, manager, named(func(in *token.CreateInput) { in.ClientID = strings.Repeat("c", 129) }), token.EINVALID},
		{"meta array", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage(`[1]`) }), token.EINVALID},
		{"meta string", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage(`"x"`) }), token.EINVALID},
		{"meta number", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage(`1`) }), token.EINVALID},
		{"meta broken", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage(`{"a":`) }), token.EINVALID},
		{"meta two objects", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage(`{}{}`) }), token.EINVALID},
		{"meta empty bytes", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = json.RawMessage{} }), token.EINVALID},
		{"meta over 4096 compacted", token.Config{}, manager, named(func(in *token.CreateInput) { in.Meta = metaOfSize(4097) }), token.EINVALID},
		{"manage for another owner", token.Config{}, manager, named(func(in *token.CreateInput) { in.Owner = "bob" }), token.EFORBIDDEN},
		{"no manage permission", token.Config{}, reader, named(func(in *token.CreateInput) {}), token.EFORBIDDEN},
		{"no manage permission, own owner named", token.Config{}, reader, named(func(in *token.CreateInput) { in.Owner = "alice" }), token.EFORBIDDEN},
		{"bad owner", token.Config{}, admin, named(func(in *token.CreateInput) { in.Owner = "bob smith" }), token.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			tok, plaintext, err := f.svc.Create(ctx, tt.caller, tt.in)
			storetest.AssertCode(t, err, tt.want)
			if tok != nil || plaintext != "" {
				t.Fatalf("rejected create returned token %v and plaintext %q", tok, plaintext)
			}
			for _, owner := range []string{"alice", "bob", "root"} {
				if ids := f.listIDs(t, admin, token.ListInput{Owner: owner, Status: "all"}); len(ids) != 0 {
					t.Fatalf("rejected create stored %v for %s", ids, owner)
				}
			}
		})
	}
}

func TestCreateAccepts(t *testing.T) {
	manager := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}
	tests := []struct {
		name   string
		cfg    token.Config
		caller token.Principal
		in     token.CreateInput
		check  func(t *testing.T, tok *token.Token, plaintext string)
	}{
		{"defaults", token.Config{}, manager, token.CreateInput{Name: "ci"}, func(t *testing.T, tok *token.Token, plaintext string) {
			want := &token.Token{
				ID: tok.ID, Owner: "alice", Name: "ci", Hint: "tok_" + tok.ID[:6] + "...",
				Permissions: []string{"read"}, SecretHash: tok.SecretHash,
				CreatedAt: start, UpdatedAt: start, ExpiresAt: start.Add(365 * token.Day),
				Enabled: true, Version: 1,
			}
			storetest.AssertEqualTokens(t, tok, want)
			if tok.Status(start) != token.StatusActive || !strings.HasPrefix(plaintext, "tok_"+tok.ID) {
				t.Fatalf("status %s, plaintext %q; want active and tok_<id>...", tok.Status(start), plaintext)
			}
		}},
		{"name trimmed", token.Config{}, manager, token.CreateInput{Name: " \t My token \n"}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Name != "My token" {
				t.Fatalf("Name = %q; want %q", tok.Name, "My token")
			}
		}},
		{"name of 100", token.Config{}, manager, token.CreateInput{Name: strings.Repeat("a", 100)}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Name != strings.Repeat("a", 100) {
				t.Fatalf("Name = %q", tok.Name)
			}
		}},
		{"name of 100 runes, 200 bytes", token.Config{}, manager, token.CreateInput{Name: strings.Repeat("é", 100)}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Name != strings.Repeat("é", 100) {
				t.Fatalf("Name = %q", tok.Name)
			}
		}},
		{"name of 100 inside spaces", token.Config{}, manager, token.CreateInput{Name: "  " + strings.Repeat("b", 100) + "  "}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Name != strings.Repeat("b", 100) {
				t.Fatalf("Name = %q", tok.Name)
			}
		}},
		{"configured default permissions", token.Config{DefaultPermissions: []string{"files:read", "files:list"}}, manager, token.CreateInput{Name: "n"}, func(t *testing.T, tok *token.Token, _ string) {
			if !slices.Equal(tok.Permissions, []string{"files:read", "files:list"}) {
				t.Fatalf("Permissions = %v", tok.Permissions)
			}
		}},
		{"permissions de-duplicated in order", token.Config{}, manager, token.CreateInput{Name: "n", Permissions: []string{"write", "read", "write", "read", "write"}}, func(t *testing.T, tok *token.Token, _ string) {
			if !slices.Equal(tok.Permissions, []string{"write", "read"}) {
				t.Fatalf("Permissions = %v; want [write read]", tok.Permissions)
			}
		}},
		{"permissions 50", token.Config{}, manager, token.CreateInput{Name: "n", Permissions: permissionsN(50)}, func(t *testing.T, tok *token.Token, _ string) {
			if !slices.Equal(tok.Permissions, permissionsN(50)) {
				t.Fatalf("Permissions = %v", tok.Permissions)
			}
		}},
		{"permission pattern edges", token.Config{}, manager, token.CreateInput{Name: "n", Permissions: []string{strings.Repeat("a", 64), "files:*", "0.b_c-d:e*", "9"}}, func(t *testing.T, tok *token.Token, _ string) {
			if len(tok.Permissions) != 4 {
				t.Fatalf("Permissions = %v", tok.Permissions)
			}
		}},
		{"allowed permissions plus manage", token.Config{AllowedPermissions: []string{"read", "files:read"}}, manager, token.CreateInput{Name: "n", Permissions: []string{"files:read", token.PermManage}}, func(t *testing.T, tok *token.Token, _ string) {
			if !slices.Equal(tok.Permissions, []string{"files:read", token.PermManage}) {
				t.Fatalf("Permissions = %v", tok.Permissions)
			}
		}},
		{"admin grants admin", token.Config{}, admin, token.CreateInput{Name: "n", Permissions: []string{token.PermAdmin}}, func(t *testing.T, tok *token.Token, _ string) {
			if !slices.Equal(tok.Permissions, []string{token.PermAdmin}) || tok.Owner != "root" {
				t.Fatalf("Permissions = %v, owner %q", tok.Permissions, tok.Owner)
			}
		}},
		{"expiresIn 30 is 30 days from the clock", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{Days: ptr(30)}}, func(t *testing.T, tok *token.Token, _ string) {
			if want := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC); !tok.ExpiresAt.Equal(want) {
				t.Fatalf("ExpiresAt = %v; want %v", tok.ExpiresAt, want)
			}
		}},
		{"expiresIn 1", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{Days: ptr(1)}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(token.Day)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"expiresIn 3650", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{Days: ptr(3650)}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(3650 * token.Day)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"expiresAt one second ahead", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{At: ptr(start.Add(time.Second))}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(time.Second)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"expiresAt in another zone stored as UTC", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{At: ptr(start.Add(token.Day).In(time.FixedZone("CEST", 2*3600)))}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(token.Day)) || tok.ExpiresAt.Location() != time.UTC {
				t.Fatalf("ExpiresAt = %v; want %v in UTC", tok.ExpiresAt, start.Add(token.Day))
			}
		}},
		{"never", token.Config{}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{Never: true}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.IsZero() {
				t.Fatalf("ExpiresAt = %v; want never", tok.ExpiresAt)
			}
		}},
		{"configured default lifetime", token.Config{DefaultLifetime: 7 * token.Day}, manager, token.CreateInput{Name: "n"}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(7 * token.Day)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"negative default lifetime means never", token.Config{DefaultLifetime: -1}, manager, token.CreateInput{Name: "n"}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.IsZero() {
				t.Fatalf("ExpiresAt = %v; want never", tok.ExpiresAt)
			}
		}},
		{"default under max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, manager, token.CreateInput{Name: "n"}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(30 * token.Day)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"expiresIn equal to max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, manager, token.CreateInput{Name: "n", Lifetime: token.Lifetime{Days: ptr(90)}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.ExpiresAt.Equal(start.Add(90 * token.Day)) {
				t.Fatalf("ExpiresAt = %v", tok.ExpiresAt)
			}
		}},
		{"autoDelete purges at expiry", token.Config{}, manager, token.CreateInput{Name: "n", AutoDelete: true, Lifetime: token.Lifetime{Days: ptr(1)}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.AutoDelete || !tok.PurgeAt.Equal(start.Add(token.Day)) {
				t.Fatalf("AutoDelete %v PurgeAt %v; want true and %v", tok.AutoDelete, tok.PurgeAt, start.Add(token.Day))
			}
		}},
		{"autoDelete without expiry never purges", token.Config{}, manager, token.CreateInput{Name: "n", AutoDelete: true, Lifetime: token.Lifetime{Never: true}}, func(t *testing.T, tok *token.Token, _ string) {
			if !tok.PurgeAt.IsZero() {
				t.Fatalf("PurgeAt = %v; want zero", tok.PurgeAt)
			}
		}},
		{"enabled false", token.Config{}, manager, token.CreateInput{Name: "n", Enabled: ptr(false)}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Enabled || tok.Status(start) != token.StatusDisabled {
				t.Fatalf("Enabled %v status %s; want disabled", tok.Enabled, tok.Status(start))
			}
		}},
		{"env label", token.Config{}, manager, token.CreateInput{Name: "n", Env: "live"}, func(t *testing.T, tok *token.Token, plaintext string) {
			if tok.Env != "live" || tok.Hint != "tok_live_"+tok.ID[:6]+"..." || !strings.HasPrefix(plaintext, "tok_live_"+tok.ID) {
				t.Fatalf("Env %q Hint %q plaintext %q", tok.Env, tok.Hint, plaintext)
			}
		}},
		{"custom prefix", token.Config{Prefix: "acme"}, manager, token.CreateInput{Name: "n", Env: "test"}, func(t *testing.T, tok *token.Token, plaintext string) {
			if tok.Hint != "acme_test_"+tok.ID[:6]+"..." || !strings.HasPrefix(plaintext, "acme_test_"+tok.ID) {
				t.Fatalf("Hint %q plaintext %q", tok.Hint, plaintext)
			}
		}},
		{"meta compacted", token.Config{}, manager, token.CreateInput{Name: "n", Meta: json.RawMessage(" {\n \"team\" : [1, 2],\t\"x\": {} }\n")}, func(t *testing.T, tok *token.Token, _ string) {
			if string(tok.Meta) != `{"team":[1,2],"x":{}}` {
				t.Fatalf("Meta = %s", tok.Meta)
			}
		}},
		{"meta null is unset", token.Config{}, manager, token.CreateInput{Name: "n", Meta: json.RawMessage(`null`)}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Meta != nil {
				t.Fatalf("Meta = %s; want nil", tok.Meta)
			}
		}},
		{"meta of 4096 compacted from more", token.Config{}, manager, token.CreateInput{Name: "n", Meta: json.RawMessage(strings.Replace(string(metaOfSize(4096)), ":", " :   \n\t  ", 1))}, func(t *testing.T, tok *token.Token, _ string) {
			if len(tok.Meta) != 4096 {
				t.Fatalf("len(Meta) = %d; want 4096", len(tok.Meta))
			}
		}},
		{"admin creates for another owner", token.Config{}, admin, token.CreateInput{Name: "n", Owner: "bob"}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Owner != "bob" {
				t.Fatalf("Owner = %q; want bob", tok.Owner)
			}
		}},
		{"manage names its own owner", token.Config{}, manager, token.CreateInput{Name: "n", Owner: "alice"}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.Owner != "alice" {
				t.Fatalf("Owner = %q; want alice", tok.Owner)
			}
		}},
		{"clientId", token.Config{}, manager, token.CreateInput{Name: "n", ClientID: "oauth:app/1.0+x"}, func(t *testing.T, tok *token.Token, _ string) {
			if tok.ClientID != "oauth:app/1.0+x" {
				t.Fatalf("ClientID = %q", tok.ClientID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			tok, plaintext, err := f.svc.Create(ctx, tt.caller, tt.in)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			tt.check(t, tok, plaintext)
			storetest.AssertEqualTokens(t, f.mustGet(t, tok.ID), tok)
			p := mustParse(t, f.svc.Prefix(), plaintext)
			if p.ID != tok.ID || p.Env != tok.Env || !token.SecretMatches(p.Secret, tok.SecretHash) {
				t.Fatalf("plaintext %q does not belong to token %s", plaintext, tok.ID)
			}
		})
	}
}

func TestCreateClientID(t *testing.T) {
	f := newFixture(t, token.Config{})
	manager := token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}
	create := func(owner, clientID string, days int) (*token.Token, error) {
		tok, _, err := f.svc.Create(ctx, admin, token.CreateInput{Owner: owner, Name: "n", ClientID: clientID, Lifetime: token.Lifetime{Days: &days}})
		return tok, err
	}
	if _, err := create("alice", "app", 1); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		prepare func(t *testing.T)
		owner   string
		client  string
		want    string
	}{
		{"same owner and client", nil, "alice", "app", token.ECONFLICT},
		{"other client", nil, "alice", "other-app", ""},
		{"same client, other owner", nil, "bob", "app", ""},
		{"after the holder expired", func(t *testing.T) { f.clock.Advance(token.Day) }, "alice", "app", ""},
		{"again while the new holder lives", nil, "alice", "app", token.ECONFLICT},
		{"after the holder was revoked", func(t *testing.T) {
			for _, id := range f.listIDs(t, manager, token.ListInput{}) {
				if _, err := f.svc.Revoke(ctx, manager, id); err != nil {
					t.Fatal(err)
				}
			}
		}, "alice", "app", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.prepare != nil {
				st.prepare(t)
			}
			_, err := create(st.owner, st.client, 30)
			storetest.AssertCode(t, err, st.want)
		})
	}
}

func TestTokenStatus(t *testing.T) {
	now := start
	tests := []struct {
		name                string
		tok                 token.Token
		want                token.Status
		expired, gone, live bool
	}{
		{"active", token.Token{Enabled: true, ExpiresAt: now.Add(time.Nanosecond)}, token.StatusActive, false, false, true},
		{"never expires", token.Token{Enabled: true}, token.StatusActive, false, false, true},
		{"expires at now", token.Token{Enabled: true, ExpiresAt: now}, token.StatusExpired, true, false, false},
		{"expired", token.Token{Enabled: true, ExpiresAt: now.Add(-time.Hour)}, token.StatusExpired, true, false, false},
		{"disabled", token.Token{ExpiresAt: now.Add(time.Hour)}, token.StatusDisabled, false, false, true},
		{"revoked", token.Token{Enabled: true, RevokedAt: now.Add(-time.Hour)}, token.StatusRevoked, false, false, false},
		{"revoked beats expired and disabled", token.Token{RevokedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}, token.StatusRevoked, true, false, false},
		{"expired beats disabled", token.Token{ExpiresAt: now.Add(-time.Minute)}, token.StatusExpired, true, false, false},
		{"purge time reached", token.Token{Enabled: true, ExpiresAt: now, PurgeAt: now, AutoDelete: true}, token.StatusExpired, true, true, false},
		{"purge time ahead", token.Token{Enabled: true, ExpiresAt: now.Add(time.Second), PurgeAt: now.Add(time.Second), AutoDelete: true}, token.StatusActive, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.Status(now); got != tt.want {
				t.Errorf("Status = %s; want %s", got, tt.want)
			}
			if got := tt.tok.Expired(now); got != tt.expired {
				t.Errorf("Expired = %v; want %v", got, tt.expired)
			}
			if got := tt.tok.Gone(now); got != tt.gone {
				t.Errorf("Gone = %v; want %v", got, tt.gone)
			}
			if got := tt.tok.Live(now); got != tt.live {
				t.Errorf("Live = %v; want %v", got, tt.live)
			}
		})
	}
}

func TestHasPermission(t *testing.T) {
	tests := []struct {
		granted []string
		perm    string
		want    bool
	}{
		{[]string{"read"}, "read", true},
		{[]string{"read"}, "write", false},
		{[]string{"read"}, "rea", false},
		{[]string{"files:*"}, "files:read", true},
		{[]string{"files:*"}, "files:", true},
		{[]string{"files:*"}, "filesystem", false},
		{[]string{"files:*"}, "file", false},
		{[]string{"files:*"}, "images:read", false},
		{[]string{"f*"}, "files:read", true},
		{[]string{"fi*s"}, "files", false},
		{[]string{"read", "files:*"}, "files:delete", true},
		{nil, "read", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v grants %s", tt.granted, tt.perm), func(t *testing.T) {
			tok := token.Token{Permissions: tt.granted}
			if got := tok.HasPermission(tt.perm); got != tt.want {
				t.Fatalf("HasPermission = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestAutoDeleteGoneAtExpiry(t *testing.T) {
	f := newFixture(t, token.Config{})
	manager, _ := f.mustCaller(t, "alice", token.PermManage, "read")
	gone, gonePlain := f.mustCreate(t, manager, token.CreateInput{AutoDelete: true, Lifetime: token.Lifetime{Days: ptr(1)}})
	kept, keptPlain := f.mustCreate(t, manager, token.CreateInput{Lifetime: token.Lifetime{Days: ptr(1)}})

	f.clock.Advance(token.Day - time.Nanosecond)
	f.mustGet(t, gone.ID)
	f.assertVerdict(t, gonePlain, token.CodeValid)

	f.clock.Advance(time.Nanosecond)
	t.Run("get", func(t *testing.T) {
		_, err := f.svc.Get(ctx, manager, gone.ID)
		storetest.AssertCode(t, err, token.ENOTFOUND)
	})
	t.Run("verify", func(t *testing.T) {
		f.assertVerdict(t, gonePlain, token.CodeNotFound)
		f.assertVerdict(t, keptPlain, token.CodeExpired)
	})
	for _, status := range []string{"", "active", "expired", "revoked", "disabled", "all"} {
		t.Run("list "+status, func(t *testing.T) {
			ids := f.listIDs(t, manager, token.ListInput{Status: status})
			if slices.Contains(ids, gone.ID) {
				t.Fatalf("list %q shows the purged token", status)
			}
			if status == "expired" && !slices.Equal(ids, []string{kept.ID}) {
				t.Fatalf("list expired = %v; want [%s]", ids, kept.ID)
			}
		})
	}
	t.Run("update, revoke, rotate", func(t *testing.T) {
		_, err := f.svc.Update(ctx, manager, gone.ID, token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(30)}})
		storetest.AssertCode(t, err, token.ENOTFOUND)
		_, err = f.svc.Revoke(ctx, manager, gone.ID)
		storetest.AssertCode(t, err, token.ENOTFOUND)
		_, _, err = f.svc.Rotate(ctx, manager, gone.ID, 0)
		storetest.AssertCode(t, err, token.ENOTFOUND)
	})
	t.Run("turning autoDelete on for an expired token", func(t *testing.T) {
		if _, err := f.svc.Update(ctx, manager, kept.ID, token.UpdateInput{AutoDelete: ptr(true)}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		_, err := f.svc.Get(ctx, manager, kept.ID)
		storetest.AssertCode(t, err, token.ENOTFOUND)
		f.assertVerdict(t, keptPlain, token.CodeNotFound)
	})
}

func TestOwnerIsolation(t *testing.T) {
	f := newFixture(t, token.Config{})
	alice, _ := f.mustCaller(t, "alice", token.PermManage, "read")
	mine, _ := f.mustCreate(t, alice, token.CreateInput{Name: "alice's"})
	bobs, bobPlain := f.mustCreate(t, admin, token.CreateInput{Owner: "bob", Name: "bob's", Permissions: []string{"read", token.PermManage}})
	unknown := token.NewID()

	ops := []struct {
		name string
		call func(id string) error
	}{
		{"get", func(id string) error { _, err := f.svc.Get(ctx, alice, id); return err }},
		{"update", func(id string) error {
			_, err := f.svc.Update(ctx, alice, id, token.UpdateInput{Name: ptr("taken over"), Enabled: ptr(false)})
			return err
		}},
		{"revoke", func(id string) error { _, err := f.svc.Revoke(ctx, alice, id); return err }},
		{"rotate", func(id string) error { _, _, err := f.svc.Rotate(ctx, alice, id, time.Hour); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			errBob := op.call(bobs.ID)
			storetest.AssertCode(t, errBob, token.ENOTFOUND)
			// Indistinguishable from an id that does not exist, so ids cannot be probed.
			errUnknown := op.call(unknown)
			if token.ErrorMessage(errBob) != token.ErrorMessage(errUnknown) {
				t.Fatalf("another owner's token answers %q, an unknown one %q", token.ErrorMessage(errBob), token.ErrorMessage(errUnknown))
			}
		})
	}
	t.Run("bob's token untouched", func(t *testing.T) {
		storetest.AssertEqualTokens(t, f.mustGet(t, bobs.ID), bobs)
		f.assertVerdict(t, bobPlain, token.CodeValid)
	})
	t.Run("list", func(t *testing.T) {
		for _, status := range []string{"", "all", "active"} {
			ids := f.listIDs(t, alice, token.ListInput{Status: status})
			if slices.Contains(ids, bobs.ID) || !slices.Contains(ids, mine.ID) {
				t.Fatalf("alice's list %q = %v; want hers (%s) and not bob's (%s)", status, ids, mine.ID, bobs.ID)
			}
		}
		_, err := f.svc.List(ctx, alice, token.ListInput{Owner: "bob"})
		storetest.AssertCode(t, err, token.EFORBIDDEN)
	})
	t.Run("create for bob", func(t *testing.T) {
		_, _, err := f.svc.Create(ctx, alice, token.CreateInput{Owner: "bob", Name: "n"})
		storetest.AssertCode(t, err, token.EFORBIDDEN)
	})
	t.Run("admin reaches bob's token", func(t *testing.T) {
		if ids := f.listIDs(t, admin, token.ListInput{Owner: "bob"}); !slices.Equal(ids, []string{bobs.ID}) {
			t.Fatalf("admin's list of bob = %v; want [%s]", ids, bobs.ID)
		}
		if _, err := f.svc.Revoke(ctx, admin, bobs.ID); err != nil {
			t.Fatalf("admin revoke: %v", err)
		}
	})
}

func TestWithoutManageForbidden(t *testing.T) {
	f := newFixture(t, token.Config{})
	reader, readerPlain := f.mustCaller(t, "alice", "read", "files:*")
	own := reader.TokenID
	before := f.mustGet(t, own)
	ops := []struct {
		name string
		call func() error
	}{
		{"create", func() error { _, _, err := f.svc.Create(ctx, reader, token.CreateInput{Name: "n"}); return err }},
		{"list", func() error { _, err := f.svc.List(ctx, reader, token.ListInput{}); return err }},
		{"get", func() error { _, err := f.svc.Get(ctx, reader, own); return err }},
		{"update", func() error {
			_, err := f.svc.Update(ctx, reader, own, token.UpdateInput{Permissions: &[]string{"read", token.PermManage}})
			return err
		}},
		{"revoke", func() error { _, err := f.svc.Revoke(ctx, reader, own); return err }},
		{"rotate", func() error { _, _, err := f.svc.Rotate(ctx, reader, own, 0); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			storetest.AssertCode(t, op.call(), token.EFORBIDDEN)
		})
	}
	storetest.AssertEqualTokens(t, f.mustGet(t, own), before)
	f.assertVerdict(t, readerPlain, token.CodeValid)
}

func TestUpdate(t *testing.T) {
	tests := []struct {
		name  string
		in    token.UpdateInput
		check func(t *testing.T, before, after *token.Token, now time.Time)
	}{
		{"name trimmed", token.UpdateInput{Name: ptr("  renamed\t")}, func(t *testing.T, before, after *token.Token, _ time.Time) {
			if after.Name != "renamed" || !slices.Equal(after.Permissions, before.Permissions) || !after.ExpiresAt.Equal(before.ExpiresAt) {
				t.Fatalf("Name %q Permissions %v ExpiresAt %v", after.Name, after.Permissions, after.ExpiresAt)
			}
		}},
		{"permissions de-duplicated", token.UpdateInput{Permissions: &[]string{"b", "a", "b"}}, func(t *testing.T, before, after *token.Token, _ time.Time) {
			if !slices.Equal(after.Permissions, []string{"b", "a"}) || after.Name != before.Name {
				t.Fatalf("Permissions %v Name %q", after.Permissions, after.Name)
			}
		}},
		{"expiresIn from the update's clock", token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(10)}}, func(t *testing.T, _, after *token.Token, now time.Time) {
			if !after.ExpiresAt.Equal(now.Add(10 * token.Day)) {
				t.Fatalf("ExpiresAt %v; want %v", after.ExpiresAt, now.Add(10*token.Day))
			}
		}},
		{"expiresAt", token.UpdateInput{Lifetime: &token.Lifetime{At: ptr(start.Add(100 * token.Day))}}, func(t *testing.T, _, after *token.Token, _ time.Time) {
			if !after.ExpiresAt.Equal(start.Add(100 * token.Day)) {
				t.Fatalf("ExpiresAt %v", after.ExpiresAt)
			}
		}},
		{"never", token.UpdateInput{Lifetime: &token.Lifetime{Never: true}}, func(t *testing.T, _, after *token.Token, _ time.Time) {
			if !after.ExpiresAt.IsZero() {
				t.Fatalf("ExpiresAt %v; want never", after.ExpiresAt)
			}
		}},
		{"autoDelete sets the purge time", token.UpdateInput{AutoDelete: ptr(true)}, func(t *testing.T, before, after *token.Token, _ time.Time) {
			if !after.AutoDelete || !after.PurgeAt.Equal(before.ExpiresAt) {
				t.Fatalf("AutoDelete %v PurgeAt %v; want true and %v", after.AutoDelete, after.PurgeAt, before.ExpiresAt)
			}
		}},
		{"disable", token.UpdateInput{Enabled: ptr(false)}, func(t *testing.T, _, after *token.Token, now time.Time) {
			if after.Status(now) != token.StatusDisabled {
				t.Fatalf("status %s; want disabled", after.Status(now))
			}
		}},
		{"meta replaced, compacted", token.UpdateInput{Meta: ptr(json.RawMessage(`{ "b" : 2 }`))}, func(t *testing.T, _, after *token.Token, _ time.Time) {
			if string(after.Meta) != `{"b":2}` {
				t.Fatalf("Meta %s", after.Meta)
			}
		}},
		{"meta cleared", token.UpdateInput{Meta: ptr(json.RawMessage(nil))}, func(t *testing.T, _, after *token.Token, _ time.Time) {
			if after.Meta != nil {
				t.Fatalf("Meta %s; want nil", after.Meta)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, token.Config{})
			// The manager holds every permission the cases set and never expires (attenuation).
			m, _ := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage, "read", "a", "b"}, Lifetime: token.Lifetime{Never: true}})
			manager := m.Principal()
			before, plaintext := f.mustCreate(t, manager, token.CreateInput{Permissions: []string{"read"}, Lifetime: token.Lifetime{Days: ptr(30)}, Meta: json.RawMessage(`{"a":1}`)})
			f.clock.Advance(time.Minute)
			now := f.clock.Now()
			after, err := f.svc.Update(ctx, manager, before.ID, tt.in)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			tt.check(t, before, after, now)
			if !after.UpdatedAt.Equal(now) || !after.CreatedAt.Equal(before.CreatedAt) || after.Version != before.Version+1 {
				t.Fatalf("UpdatedAt %v CreatedAt %v Version %d; want %v, %v, %d", after.UpdatedAt, after.CreatedAt, after.Version, now, before.CreatedAt, before.Version+1)
			}
			if !slices.Equal(after.SecretHash, before.SecretHash) || after.ID != before.ID || after.Owner != before.Owner {
				t.Fatal("update changed the id, owner or secret")
			}
			storetest.AssertEqualTokens(t, f.mustGet(t, before.ID), after)
			if tt.in.Enabled == nil {
				f.assertVerdict(t, plaintext, token.CodeValid)
			}
		})
	}
}

func TestUpdateRejects(t *testing.T) {
	tests := []struct {
		name    string
		cfg     token.Config
		prepare func(t *testing.T, f *fixture, manager token.Principal, id string)
		id      string // "" for the prepared token
		in      token.UpdateInput
		want    string
	}{
		{"empty update", token.Config{}, nil, "", token.UpdateInput{}, token.EINVALID},
		{"name empty", token.Config{}, nil, "", token.UpdateInput{Name: ptr("")}, token.EINVALID},
		{"name whitespace", token.Config{}, nil, "", token.UpdateInput{Name: ptr("   ")}, token.EINVALID},
		{"name of 101", token.Config{}, nil, "", token.UpdateInput{Name: ptr(strings.Repeat("n", 101))}, token.EINVALID},
		{"name with control character", token.Config{}, nil, "", token.UpdateInput{Name: ptr("a\tb")}, token.EINVALID},
		{"permissions empty", token.Config{}, nil, "", token.UpdateInput{Permissions: &[]string{}}, token.EINVALID},
		{"permissions 51", token.Config{}, nil, "", token.UpdateInput{Permissions: ptr(permissionsN(51))}, token.EINVALID},
		{"permission pattern", token.Config{}, nil, "", token.UpdateInput{Permissions: &[]string{"Read"}}, token.EINVALID},
		{"permission not allowed", token.Config{AllowedPermissions: []string{"read"}}, nil, "", token.UpdateInput{Permissions: &[]string{"write"}}, token.EINVALID},
		{"manage grants admin", token.Config{}, nil, "", token.UpdateInput{Permissions: &[]string{"read", token.PermAdmin}}, token.EFORBIDDEN},
		{"expiresAt in the past", token.Config{}, nil, "", token.UpdateInput{Lifetime: &token.Lifetime{At: ptr(start)}}, token.EINVALID},
		{"expiresAt and expiresIn", token.Config{}, nil, "", token.UpdateInput{Lifetime: &token.Lifetime{At: ptr(start.Add(token.Day)), Days: ptr(1)}}, token.EINVALID},
		{"expiresIn 0", token.Config{}, nil, "", token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(0)}}, token.EINVALID},
		{"expiresIn 3651", token.Config{}, nil, "", token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(3651)}}, token.EINVALID},
		{"never under max lifetime", token.Config{MaxLifetime: 90 * token.Day, DefaultLifetime: 30 * token.Day}, nil, "", token.UpdateInput{Lifetime: &token.Lifetime{Never: true}}, token.EINVALID},
		{"meta not an object", token.Config{}, nil, "", token.UpdateInput{Meta: ptr(json.RawMessage(`[]`))}, token.EINVALID},
		{"meta too large", token.Config{}, nil, "", token.UpdateInput{Meta: ptr(metaOfSize(4097))}, token.EINVALID},
		{"unknown id", token.Config{}, nil, token.NewID(), token.UpdateInput{Name: ptr("x")}, token.ENOTFOUND},
		{"malformed id", token.Config{}, nil, "../../etc", token.UpdateInput{Name: ptr("x")}, token.ENOTFOUND},
		{"revoked", token.Config{}, func(t *testing.T, f *fixture, manager token.Principal, id string) {
			if _, err := f.svc.Revoke(ctx, manager, id); err != nil {
				t.Fatal(err)
			}
		}, "", token.UpdateInput{Name: ptr("x"), Enabled: ptr(true)}, token.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			manager, _ := f.mustCaller(t, "alice", token.PermManage, "read")
			tok, _ := f.mustCreate(t, manager, token.CreateInput{Permissions: []string{"read"}, Lifetime: token.Lifetime{Days: ptr(30)}})
			if tt.prepare != nil {
				tt.prepare(t, f, manager, tok.ID)
			}
			before := f.mustGet(t, tok.ID)
			id := tt.id
			if id == "" {
				id = tok.ID
			}
			f.clock.Advance(time.Minute)
			got, err := f.svc.Update(ctx, manager, id, tt.in)
			storetest.AssertCode(t, err, tt.want)
			if got != nil {
				t.Fatalf("rejected update returned %+v", got)
			}
			storetest.AssertEqualTokens(t, f.mustGet(t, tok.ID), before)
		})
	}
}

func TestUpdateExtendsExpiredToken(t *testing.T) {
	f := newFixture(t, token.Config{})
	tok, plaintext := f.mustCreate(t, admin, token.CreateInput{Lifetime: token.Lifetime{Days: ptr(1)}})
	f.clock.Advance(2 * token.Day)
	f.assertVerdict(t, plaintext, token.CodeExpired)
	if _, err := f.svc.Update(ctx, admin, tok.ID, token.UpdateInput{Lifetime: &token.Lifetime{Days: ptr(1)}}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	f.assertVerdict(t, plaintext, token.CodeValid)
}

// racingStore changes a token behind the service's back right after the service has read it,
// as a concurrent request would between the read and the write of an update.
type racingStore struct {
	token.Store
	race func(t *token.Token) // run once, on the first FindToken
}

func (s *racingStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	t, err := s.Store.FindToken(ctx, id)
	if race := s.race; err == nil && race != nil {
		s.race = nil
		race(t.Clone())
	}
	return t, err
}

func TestConcurrentChangeConflicts(t *testing.T) {
	ops := []struct {
		name string
		call func(svc *token.Service, id string) error
	}{
		{"update", func(svc *token.Service, id string) error {
			_, err := svc.Update(ctx, admin, id, token.UpdateInput{Name: ptr("mine")})
			return err
		}},
		{"revoke", func(svc *token.Service, id string) error { _, err := svc.Revoke(ctx, admin, id); return err }},
		{"rotate", func(svc *token.Service, id string) error { _, _, err := svc.Rotate(ctx, admin, id, 0); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			racing := &racingStore{}
			f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store { racing.Store = m; return racing })
			tok, plaintext := f.mustCreate(t, admin, token.CreateInput{})
			racing.race = func(c *token.Token) {
				c.Name = "theirs"
				if err := f.mem.UpdateToken(ctx, c, nil); err != nil {
					t.Errorf("concurrent update: %v", err)
				}
			}
			storetest.AssertCode(t, op.call(f.svc, tok.ID), token.ECONFLICT)
			got := f.mustGet(t, tok.ID)
			if got.Name != "theirs" || !got.RevokedAt.IsZero() || got.Version != tok.Version+1 {
				t.Fatalf("after the conflict: name %q revokedAt %v version %d; want theirs, not revoked, %d", got.Name, got.RevokedAt, got.Version, tok.Version+1)
			}
			f.assertVerdict(t, plaintext, token.CodeValid)
		})
	}
}

func TestRevoke(t *testing.T) {
	f := newFixture(t, token.Config{RevokedRetention: time.Hour})
	manager, _ := f.mustCaller(t, "alice", token.PermManage, "read")
	tok, plaintext := f.mustCreate(t, manager, token.CreateInput{ClientID: "app"})
	f.clock.Advance(time.Minute)
	revokedAt := f.clock.Now()

	first, err := f.svc.Revoke(ctx, manager, tok.ID)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !first.RevokedAt.Equal(revokedAt) || first.Status(revokedAt) != token.StatusRevoked || !first.PurgeAt.Equal(revokedAt.Add(time.Hour)) {
		t.Fatalf("RevokedAt %v status %s PurgeAt %v; want %v, revoked, +1h", first.RevokedAt, first.Status(revokedAt), first.PurgeAt, revokedAt)
	}
	f.assertVerdict(t, plaintext, token.CodeRevoked)

	t.Run("idempotent", func(t *testing.T) {
		f.clock.Advance(time.Minute)
		again, err := f.svc.Revoke(ctx, manager, tok.ID)
		if err != nil {
			t.Fatalf("second Revoke: %v", err)
		}
		if !again.RevokedAt.Equal(revokedAt) || again.Version != first.Version {
			t.Fatalf("second revoke: RevokedAt %v version %d; want %v and %d (no write)", again.RevokedAt, again.Version, revokedAt, first.Version)
		}
	})
	t.Run("listed as revoked", func(t *testing.T) {
		if ids := f.listIDs(t, manager, token.ListInput{Status: "revoked"}); !slices.Equal(ids, []string{tok.ID}) {
			t.Fatalf("revoked list = %v; want [%s]", ids, tok.ID)
		}
	})
	t.Run("gone after retention", func(t *testing.T) {
		f.clock.Advance(revokedAt.Add(time.Hour - time.Nanosecond).Sub(f.clock.Now()))
		f.mustGet(t, tok.ID)
		f.clock.Advance(time.Nanosecond)
		_, err := f.svc.Get(ctx, manager, tok.ID)
		storetest.AssertCode(t, err, token.ENOTFOUND)
		f.assertVerdict(t, plaintext, token.CodeNotFound)
	})
}

func TestRotate(t *testing.T) {
	f := newFixture(t, token.Config{})
	manager, _ := f.mustCaller(t, "alice", token.PermManage, "files:*")
	tok, oldPlain := f.mustCreate(t, manager, token.CreateInput{
		Env: "live", Permissions: []string{"files:*"}, Lifetime: token.Lifetime{Days: ptr(30)},
		ClientID: "app", Meta: json.RawMessage(`{"a":1}`), AutoDelete: true,
	})
	f.assertVerdict(t, oldPlain, token.CodeValid)
	f.clock.Advance(time.Minute)

	rotated, newPlain, err := f.svc.Rotate(ctx, manager, tok.ID, 0)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if newPlain == oldPlain || !strings.HasPrefix(newPlain, "tok_live_"+tok.ID) {
		t.Fatalf("new plaintext %q; want a different tok_live_%s... token", newPlain, tok.ID)
	}
	if slices.Equal(rotated.SecretHash, tok.SecretHash) || rotated.PrevSecretHash != nil {
		t.Fatal("rotation kept the secret, or kept the old one without a grace period")
	}
	want := tok.Clone()
	want.SecretHash = rotated.SecretHash
	want.UpdatedAt = f.clock.Now()
	want.Version++
	want.UsageCount, want.LastUsedAt = 1, start // the verify above
	storetest.AssertEqualTokens(t, rotated, want)
	storetest.AssertEqualTokens(t, f.mustGet(t, tok.ID), rotated)
	f.assertVerdict(t, newPlain, token.CodeValid)
	f.assertVerdict(t, oldPlain, token.CodeNotFound)
}

func TestRotateGracePeriod(t *testing.T) {
	for _, grace := range []time.Duration{time.Second, time.Hour, token.MaxGracePeriod} {
		t.Run(grace.String(), func(t *testing.T) {
			f := newFixture(t, token.Config{})
			tok, oldPlain := f.mustCreate(t, admin, token.CreateInput{})
			rotatedAt := f.clock.Now()
			rotated, newPlain, err := f.svc.Rotate(ctx, admin, tok.ID, grace)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if !rotated.PrevSecretUntil.Equal(rotatedAt.Add(grace)) {
				t.Fatalf("PrevSecretUntil %v; want %v", rotated.PrevSecretUntil, rotatedAt.Add(grace))
			}
			f.assertVerdict(t, oldPlain, token.CodeValid)
			f.clock.Advance(grace - time.Nanosecond)
			f.assertVerdict(t, oldPlain, token.CodeValid)
			f.assertVerdict(t, newPlain, token.CodeValid)
			f.clock.Advance(time.Nanosecond)
			f.assertVerdict(t, oldPlain, token.CodeNotFound)
			f.assertVerdict(t, newPlain, token.CodeValid)
			f.clock.Advance(30 * token.Day)
			f.assertVerdict(t, oldPlain, token.CodeNotFound)
		})
	}
	t.Run("second rotation ends the first grace", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		tok, first := f.mustCreate(t, admin, token.CreateInput{})
		_, second, err := f.svc.Rotate(ctx, admin, tok.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, third, err := f.svc.Rotate(ctx, admin, tok.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		f.assertVerdict(t, first, token.CodeNotFound)
		f.assertVerdict(t, second, token.CodeValid)
		f.assertVerdict(t, third, token.CodeValid)
	})
	t.Run("revoke ends the grace", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		tok, old := f.mustCreate(t, admin, token.CreateInput{})
		if _, _, err := f.svc.Rotate(ctx, admin, tok.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Revoke(ctx, admin, tok.ID); err != nil {
			t.Fatal(err)
		}
		if v := f.mustVerify(t, old); v.Valid() {
			t.Fatalf("old secret of a revoked token verifies %s", v.Code)
		}
	})
}

func TestRotateRejects(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, f *fixture, id string)
		grace   time.Duration
		want    string
	}{
		{"negative grace", nil, -time.Second, token.EINVALID},
		{"grace over 604800 s", nil, token.MaxGracePeriod + time.Second, token.EINVALID},
		{"revoked", func(t *testing.T, f *fixture, id string) {
			if _, err := f.svc.Revoke(ctx, admin, id); err != nil {
				t.Fatal(err)
			}
		}, 0, token.ECONFLICT},
		{"expired", func(t *testing.T, f *fixture, id string) { f.clock.Advance(token.Day) }, 0, token.ECONFLICT},
		{"disabled is fine", func(t *testing.T, f *fixture, id string) {
			if _, err := f.svc.Update(ctx, admin, id, token.UpdateInput{Enabled: ptr(false)}); err != nil {
				t.Fatal(err)
			}
		}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, token.Config{})
			tok, _ := f.mustCreate(t, admin, token.CreateInput{Lifetime: token.Lifetime{Days: ptr(1)}})
			if tt.prepare != nil {
				tt.prepare(t, f, tok.ID)
			}
			before := f.mustGet(t, tok.ID)
			_, plaintext, err := f.svc.Rotate(ctx, admin, tok.ID, tt.grace)
			storetest.AssertCode(t, err, tt.want)
			if err != nil {
				if plaintext != "" {
					t.Fatalf("rejected rotate returned a plaintext")
				}
				storetest.AssertEqualTokens(t, f.mustGet(t, tok.ID), before)
			}
		})
	}
	t.Run("unknown id", func(t *testing.T) {
		f := newFixture(t, token.Config{})
		_, _, err := f.svc.Rotate(ctx, admin, token.NewID(), 0)
		storetest.AssertCode(t, err, token.ENOTFOUND)
	})
}

func TestVerify(t *testing.T) {
	type setup func(t *testing.T, f *fixture) (plaintext string)
	create := func(in token.CreateInput, after func(t *testing.T, f *fixture, id string)) setup {
		return func(t *testing.T, f *fixture) string {
			tok, plaintext := f.mustCreate(t, admin, in)
			if after != nil {
				after(t, f, tok.ID)
			}
			return plaintext
		}
	}
	revoke := func(t *testing.T, f *fixture, id string) {
		if _, err := f.svc.Revoke(ctx, admin, id); err != nil {
			t.Fatal(err)
		}
	}
	expire := func(t *testing.T, f *fixture, id string) { f.clock.Advance(token.Day) }
	oneDay := token.Lifetime{Days: ptr(1)}
	tests := []struct {
		name      string
		setup     setup
		required  []string
		want      string
		wantToken bool
	}{
		{"valid", create(token.CreateInput{}, nil), nil, token.CodeValid, true},
		{"valid with env", create(token.CreateInput{Env: "test"}, nil), nil, token.CodeValid, true},
		{"valid a moment before expiry", create(token.CreateInput{Lifetime: oneDay}, func(t *testing.T, f *fixture, _ string) { f.clock.Advance(token.Day - time.Nanosecond) }), nil, token.CodeValid, true},
		{"valid with the required permission", create(token.CreateInput{Permissions: []string{"read", "write"}}, nil), []string{"write", "read"}, token.CodeValid, true},
		{"wildcard grants", create(token.CreateInput{Permissions: []string{"files:*"}}, nil), []string{"files:read"}, token.CodeValid, true},
		{"malformed empty", func(*testing.T, *fixture) string { return "" }, nil, token.CodeMalformed, false},
		{"malformed garbage", func(*testing.T, *fixture) string { return "hello world" }, nil, token.CodeMalformed, false},
		{"malformed checksum", func(t *testing.T, f *fixture) string {
			_, p := f.mustCreate(t, admin, token.CreateInput{})
			last := p[len(p)-1]
			return p[:len(p)-1] + string(base62[(strings.IndexByte(base62, last)+1)%62])
		}, nil, token.CodeMalformed, false},
		{"malformed other prefix", func(*testing.T, *fixture) string {
			return token.Format("acme", "", token.NewID(), token.NewSecret())
		}, nil, token.CodeMalformed, false},
		{"malformed with Bearer", func(t *testing.T, f *fixture) string {
			_, p := f.mustCreate(t, admin, token.CreateInput{})
			return "Bearer " + p
		}, nil, token.CodeMalformed, false},
		{"unknown id", func(*testing.T, *fixture) string {
			return token.Format(token.DefaultPrefix, "", token.NewID(), token.NewSecret())
		}, nil, token.CodeNotFound, false},
		{"wrong secret, valid checksum", func(t *testing.T, f *fixture) string {
			tok, _ := f.mustCreate(t, admin, token.CreateInput{Env: "live"})
			return token.Format(token.DefaultPrefix, "live", tok.ID, token.NewSecret())
		}, nil, token.CodeNotFound, false},
		{"wrong secret of a revoked token", func(t *testing.T, f *fixture) string {
			tok, _ := f.mustCreate(t, admin, token.CreateInput{})
			revoke(t, f, tok.ID)
			return token.Format(token.DefaultPrefix, "", tok.ID, token.NewSecret())
		}, nil, token.CodeNotFound, false},
		{"expired", create(token.CreateInput{Lifetime: oneDay}, expire), nil, token.CodeExpired, true},
		{"revoked", create(token.CreateInput{}, revoke), nil, token.CodeRevoked, true},
		{"disabled", create(token.CreateInput{Enabled: ptr(false)}, nil), nil, token.CodeDisabled, true},
		{"revoked and expired", create(token.CreateInput{Lifetime: oneDay}, func(t *testing.T, f *fixture, id string) {
			revoke(t, f, id)
			expire(t, f, id)
		}), nil, token.CodeRevoked, true},
		{"revoked and disabled", create(token.CreateInput{Enabled: ptr(false)}, revoke), nil, token.CodeRevoked, true},
		{"expired and disabled", create(token.CreateInput{Enabled: ptr(false), Lifetime: oneDay}, expire), nil, token.CodeExpired, true},
		{"disabled before permissions", create(token.CreateInput{Enabled: ptr(false)}, nil), []string{"write"}, token.CodeDisabled, true},
		{"insufficient permissions", create(token.CreateInput{Permissions: []string{"read"}}, nil), []string{"write"}, token.CodeInsufficientPermissions, true},
		{"one of two permissions", create(token.CreateInput{Permissions: []string{"read"}}, nil), []string{"read", "write"}, token.CodeInsufficientPermissions, true},
		{"wildcard stops at its stem", create(token.CreateInput{Permissions: []string{"files:*"}}, nil), []string{"filesystem"}, token.CodeInsufficientPermissions, true},
		{"manage is not admin", create(token.CreateInput{Permissions: []string{token.PermManage}}, nil), []string{token.PermAdmin}, token.CodeInsufficientPermissions, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, token.Config{})
			plaintext := tt.setup(t, f)
			v := f.mustVerify(t, plaintext, tt.required...)
			if v.Code != tt.want || v.Valid() != (tt.want == token.CodeValid) {
				t.Fatalf("Verify = %s (valid %v); want %s", v.Code, v.Valid(), tt.want)
			}
			if (v.Token != nil) != tt.wantToken {
				t.Fatalf("verdict token %v; want one: %v", v.Token, tt.wantToken)
			}
			if v.Token != nil {
				if p := mustParse(t, token.DefaultPrefix, plaintext); v.Token.ID != p.ID {
					t.Fatalf("verdict token %s; want %s", v.Token.ID, p.ID)
				}
			}
		})
	}
}

func TestVerifyRecordsUse(t *testing.T) {
	f := newFixture(t, token.Config{})
	tok, plaintext := f.mustCreate(t, admin, token.CreateInput{Permissions: []string{"read"}})
	if got := f.mustGet(t, tok.ID); got.UsageCount != 0 || !got.LastUsedAt.IsZero() {
		t.Fatalf("new token: usage %d last used %v; want 0 and never", got.UsageCount, got.LastUsedAt)
	}
	f.clock.Advance(time.Minute)
	usedAt := f.clock.Now()
	v := f.mustVerify(t, plaintext, "read")
	if !v.Valid() || v.Token.UsageCount != 1 || !v.Token.LastUsedAt.Equal(usedAt) {
		t.Fatalf("verdict %s usage %d last used %v; want VALID, 1, %v", v.Code, v.Token.UsageCount, v.Token.LastUsedAt, usedAt)
	}
	assertUse := func(t *testing.T, count int64, at time.Time) {
		t.Helper()
		got := f.mustGet(t, tok.ID)
		if got.UsageCount != count || !got.LastUsedAt.Equal(at) {
			t.Fatalf("usage %d last used %v; want %d and %v", got.UsageCount, got.LastUsedAt, count, at)
		}
		if got.Version != tok.Version || !got.UpdatedAt.Equal(tok.UpdatedAt) {
			t.Fatalf("use changed version %d or updatedAt %v", got.Version, got.UpdatedAt)
		}
	}
	assertUse(t, 1, usedAt)

	invalid := []struct {
		name      string
		plaintext string
		required  []string
	}{
		{"insufficient permissions", plaintext, []string{"write"}},
		{"wrong secret", token.Format(token.DefaultPrefix, "", tok.ID, token.NewSecret()), nil},
		{"malformed", plaintext[:len(plaintext)-1], nil},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(time.Minute)
			if v := f.mustVerify(t, tt.plaintext, tt.required...); v.Valid() {
				t.Fatal("verified")
			}
			assertUse(t, 1, usedAt)
		})
	}
	t.Run("second use", func(t *testing.T) {
		f.clock.Advance(time.Minute)
		f.assertVerdict(t, plaintext, token.CodeValid)
		assertUse(t, 2, f.clock.Now())
	})
}

func TestVerdictMessages(t *testing.T) {
	tests := []struct{ code, want string }{
		{token.CodeValid, "Token is valid"},
		{token.CodeMalformed, "Token is malformed"},
		{token.CodeNotFound, "Token not found"},
		{token.CodeExpired, "Token expired"},
		{token.CodeRevoked, "Token revoked"},
		{token.CodeDisabled, "Token disabled"},
		{token.CodeInsufficientPermissions, "Token lacks a required permission"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := (token.Verdict{Code: tt.code}).Message(); got != tt.want {
				t.Fatalf("Message() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t, token.Config{})
	manager, managerPlain := f.mustCaller(t, "alice", token.PermManage, "read")
	if manager.Owner != "alice" || !slices.Equal(manager.Permissions, []string{token.PermManage, "read"}) || !token.ValidID(manager.TokenID) {
		t.Fatalf("Authenticate = %+v; want alice's manage token", manager)
	}
	if p := mustParse(t, "tok", managerPlain); p.ID != manager.TokenID {
		t.Fatalf("principal token id %s; want %s", manager.TokenID, p.ID)
	}

	expiring, expiringPlain := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage}, Lifetime: token.Lifetime{Days: ptr(1)}})
	revoked, revokedPlain := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage}})
	if _, err := f.svc.Revoke(ctx, admin, revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, disabledPlain := f.mustCreate(t, admin, token.CreateInput{Owner: "alice", Permissions: []string{token.PermManage}, Enabled: ptr(false)})
	f.clock.Advance(token.Day)
	tests := []struct {
		name, plaintext, message string
	}{
		{"empty", "", "Token is malformed."},
		{"malformed", "tok_nope", "Token is malformed."},
		{"unknown", token.Format("tok", "", token.NewID(), token.NewSecret()), "Token not found."},
		{"wrong secret", token.Format("tok", "", expiring.ID, token.NewSecret()), "Token not found."},
		{"expired", expiringPlain, "Token expired."},
		{"revoked", revokedPlain, "Token revoked."},
		{"disabled", disabledPlain, "Token disabled."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := authenticate(f.svc, tt.plaintext)
			storetest.AssertCode(t, err, token.EUNAUTHORIZED)
			if token.ErrorMessage(err) != tt.message || p.Owner != "" || p.Permissions != nil {
				t.Fatalf("Authenticate = %+v, %q; want no principal and %q", p, token.ErrorMessage(err), tt.message)
			}
		})
	}
}

// failingStore fails the calls named by its errors and passes the rest to the memory store.
type failingStore struct {
	token.Store
	findErr error
}

func (s failingStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	if s.findErr != nil {
		return nil, s.findErr
	}
	return s.Store.FindToken(ctx, id)
}

func TestVerifyFailsClosedOnStoreError(t *testing.T) {
	outage := errors.New("connection reset by peer")
	tests := []struct {
		name  string
		store func(m *memstore.Store) token.Store
	}{
		{"find fails", func(m *memstore.Store) token.Store { return failingStore{Store: m, findErr: outage} }},
		{"find fails wrapped", func(m *memstore.Store) token.Store {
			return failingStore{Store: m, findErr: fmt.Errorf("dynamo: %w", outage)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var store token.Store
			f := newFixtureOn(t, token.Config{}, func(m *memstore.Store) token.Store {
				store = tt.store(m)
				return m
			})
			_, plaintext := f.mustCreate(t, admin, token.CreateInput{Permissions: []string{token.PermManage}})
			svc, err := token.NewService(store, token.Config{Now: f.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			v, err := svc.Verify(ctx, plaintext)
			if !errors.Is(err, outage) || v.Valid() || v.Token != nil {
				t.Fatalf("Verify = %+v, %v; want an invalid verdict and the store error", v, err)
			}
			p, err := authenticate(svc, plaintext)
			storetest.AssertCode(t, err, token.EINTERNAL)
			if p.Owner != "" || token.ErrorMessage(err) != "Internal error." {
				t.Fatalf("Authenticate = %+v, %q; want no principal and a message without detail", p, token.ErrorMessage(err))
			}
		})
	}
}

func TestList(t *testing.T) {
	f := newFixture(t, token.Config{})
	create := func(in token.CreateInput) string {
		f.clock.Advance(time.Second)
		in.Owner = "alice"
		tok, _ := f.mustCreate(t, admin, in)
		return tok.ID
	}
	active1 := create(token.CreateInput{})
	disabled := create(token.CreateInput{Enabled: ptr(false)})
	revoked := create(token.CreateInput{})
	if _, err := f.svc.Revoke(ctx, admin, revoked); err != nil {
		t.Fatal(err)
	}
	expired := create(token.CreateInput{Lifetime: token.Lifetime{Days: ptr(1)}})
	create(token.CreateInput{AutoDelete: true, Lifetime: token.Lifetime{Days: ptr(1)}}) // gone by the time we list
	active2 := create(token.CreateInput{})
	f.mustCreate(t, admin, token.CreateInput{Owner: "bob"})
	f.clock.Advance(token.Day)

	tests := []struct {
		status string
		want   []string
	}{
		{"", []string{active2, active1}},
		{"active", []string{active2, active1}},
		{"expired", []string{expired}},
		{"revoked", []string{revoked}},
		{"disabled", []string{disabled}},
		{"all", []string{active2, expired, revoked, disabled, active1}},
	}
	for _, tt := range tests {
		t.Run("status "+tt.status, func(t *testing.T) {
			for _, limit := range []int{0, 1, 2, 100} {
				got := f.listIDs(t, admin, token.ListInput{Owner: "alice", Status: tt.status, Limit: limit})
				if !slices.Equal(got, tt.want) {
					t.Fatalf("limit %d: %v; want %v", limit, got, tt.want)
				}
			}
		})
	}
}

func TestListPages(t *testing.T) {
	f := newFixture(t, token.Config{})
	manager, _ := f.mustCaller(t, "alice", token.PermManage, "read")
	want := []string{manager.TokenID}
	for range 21 {
		f.clock.Advance(time.Second)
		tok, _ := f.mustCreate(t, manager, token.CreateInput{})
		want = append(want, tok.ID)
	}
	slices.Reverse(want)

	t.Run("default limit 20", func(t *testing.T) {
		page, err := f.svc.List(ctx, manager, token.ListInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Tokens) != 20 || page.NextCursor == "" {
			t.Fatalf("first page: %d tokens, cursor %q; want 20 and a cursor", len(page.Tokens), page.NextCursor)
		}
	})
	t.Run("cursor round trip", func(t *testing.T) {
		var got []string
		var pages int
		in := token.ListInput{Limit: 5}
		for {
			page, err := f.svc.List(ctx, manager, in)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, tok := range page.Tokens {
				got = append(got, tok.ID)
			}
			if page.NextCursor == "" {
				break
			}
			in.Cursor = page.NextCursor
		}
		if !slices.Equal(got, want) || pages != 5 {
			t.Fatalf("%d pages listed %v; want 5 pages of %v", pages, got, want)
		}
	})
	t.Run("last page full", func(t *testing.T) {
		page, err := f.svc.List(ctx, manager, token.ListInput{Limit: len(want)})
		if err != nil || len(page.Tokens) != len(want) || page.NextCursor != "" {
			t.Fatalf("limit %d: %d tokens, cursor %q, %v; want all and no cursor", len(want), len(page.Tokens), page.NextCursor, err)
		}
	})
}

func TestListRejects(t *testing.T) {
	f := newFixture(t, token.Config{})
	alice, _ := f.mustCaller(t, "alice", token.PermManage, "read")
	bob, _ := f.mustCaller(t, "bob", token.PermManage, "read")
	for range 3 {
		f.mustCreate(t, alice, token.CreateInput{})
		f.mustCreate(t, bob, token.CreateInput{})
	}
	cursorOf := func(caller token.Principal, in token.ListInput) string {
		t.Helper()
		in.Limit = 1
		page, err := f.svc.List(ctx, caller, in)
		if err != nil || page.NextCursor == "" {
			t.Fatalf("List(%+v): cursor %q, %v", in, page.NextCursor, err)
		}
		return page.NextCursor
	}
	aliceActive := cursorOf(alice, token.ListInput{})
	aliceAll := cursorOf(alice, token.ListInput{Status: "all"})
	bobActive := cursorOf(bob, token.ListInput{})
	// Flip the high bit of one base64url character: the decoded bytes always change.
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	flip := func(c string, i int) string {
		return c[:i] + string(b64[(strings.IndexByte(b64, c[i])+32)%64]) + c[i+1:]
	}

	tests := []struct {
		name   string
		caller token.Principal
		in     token.ListInput
		want   string
	}{
		{"status unknown", alice, token.ListInput{Status: "bogus"}, token.EINVALID},
		{"status capitalised", alice, token.ListInput{Status: "Active"}, token.EINVALID},
		{"status gone", alice, token.ListInput{Status: "deleted"}, token.EINVALID},
		{"limit negative", alice, token.ListInput{Limit: -1}, token.EINVALID},
		{"limit 101", alice, token.ListInput{Limit: 101}, token.EINVALID},
		{"cursor of another owner", alice, token.ListInput{Cursor: bobActive}, token.EINVALID},
		{"cursor of another owner, by admin", admin, token.ListInput{Owner: "bob", Cursor: aliceActive}, token.EINVALID},
		{"cursor of another status", alice, token.ListInput{Status: "all", Cursor: aliceActive}, token.EINVALID},
		{"cursor of all for active", alice, token.ListInput{Cursor: aliceAll}, token.EINVALID},
		{"cursor not base64", alice, token.ListInput{Cursor: "not a cursor!"}, token.EINVALID},
		{"cursor truncated", alice, token.ListInput{Cursor: aliceActive[:len(aliceActive)-2]}, token.EINVALID},
		{"cursor extended", alice, token.ListInput{Cursor: aliceActive + "AAAA"}, token.EINVALID},
		{"another owner's list", alice, token.ListInput{Owner: "bob"}, token.EFORBIDDEN},
		{"cursor works for its own list", alice, token.ListInput{Cursor: aliceActive}, ""},
		{"cursor works for admin on the same list", admin, token.ListInput{Owner: "alice", Cursor: aliceActive}, ""},
		{"limit 100", alice, token.ListInput{Limit: 100}, ""},
	}
	for i := range aliceActive {
		tests = append(tests, struct {
			name   string
			caller token.Principal
			in     token.ListInput
			want   string
		}{fmt.Sprintf("cursor tampered at %d", i), alice, token.ListInput{Cursor: flip(aliceActive, i)}, token.EINVALID})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := f.svc.List(ctx, tt.caller, tt.in)
			storetest.AssertCode(t, err, tt.want)
			if err != nil && len(page.Tokens) != 0 {
				t.Fatalf("rejected list returned %d tokens", len(page.Tokens))
			}
		})
	}
}

// TestJudge checks the verdict of a stored record directly, as a store whose deletes lag (DynamoDB
// TTL) would hand it over: the memory store already hides gone tokens itself.
func TestJudge(t *testing.T) {
	now := start
	secret, prev := token.NewSecret(), token.NewSecret()
	base := token.Token{ID: token.NewID(), Env: "live", Enabled: true, SecretHash: token.HashSecret(secret), ExpiresAt: now.Add(time.Hour)}
	with := func(mod func(*token.Token)) *token.Token {
		tok := base.Clone()
		mod(tok)
		return tok
	}
	tests := []struct {
		name   string
		tok    *token.Token
		secret string
		want   string
		env    string // the presented token's label; "" means "live", the stored one
	}{
		{"current secret", with(func(*token.Token) {}), secret, token.CodeValid, ""},
		{"other secret", with(func(*token.Token) {}), prev, token.CodeNotFound, ""},
		{"gone but still stored", with(func(tok *token.Token) { tok.AutoDelete, tok.ExpiresAt, tok.PurgeAt = true, now, now }), secret, token.CodeNotFound, ""},
		{"revoked, purge time passed", with(func(tok *token.Token) { tok.RevokedAt, tok.PurgeAt = now.Add(-time.Hour), now }), secret, token.CodeNotFound, ""},
		{"previous secret in grace", with(func(tok *token.Token) {
			tok.PrevSecretHash, tok.PrevSecretUntil = token.HashSecret(prev), now.Add(time.Nanosecond)
		}), prev, token.CodeValid, ""},
		{"previous secret at grace end", with(func(tok *token.Token) { tok.PrevSecretHash, tok.PrevSecretUntil = token.HashSecret(prev), now }), prev, token.CodeNotFound, ""},
		{"previous hash without a deadline", with(func(tok *token.Token) { tok.PrevSecretHash = token.HashSecret(prev) }), prev, token.CodeNotFound, ""},
		{"previous secret of a disabled token", with(func(tok *token.Token) {
			tok.Enabled, tok.PrevSecretHash, tok.PrevSecretUntil = false, token.HashSecret(prev), now.Add(time.Hour)
		}), prev, token.CodeDisabled, ""},
		// The label is part of the token: tok_test_<id><secret> is not tok_live_<id><secret>.
		{"other environment label", with(func(*token.Token) {}), secret, token.CodeNotFound, "test"},
		{"no environment label", with(func(*token.Token) {}), secret, token.CodeNotFound, "-"},
		{"label of an unlabelled token", with(func(tok *token.Token) { tok.Env = "" }), secret, token.CodeNotFound, "live"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.tok.Env
			switch tt.env {
			case "":
			case "-":
				env = ""
			default:
				env = tt.env
			}
			v := token.Judge(tt.tok, token.Parsed{Env: env, ID: tt.tok.ID, Secret: tt.secret}, now)
			if v.Code != tt.want {
				t.Fatalf("Judge = %s; want %s", v.Code, tt.want)
			}
			if (v.Token != nil) != (tt.want != token.CodeNotFound) {
				t.Fatalf("verdict token %v for %s", v.Token, v.Code)
			}
		})
	}
}

// TestRotateAdminTokenNeedsAdmin: rotating hands over the new secret, so a manage token that
// shares an owner with an admin token must not rotate it, or it could mint itself admin, which
// Create forbids.
func TestRotateAdminTokenNeedsAdmin(t *testing.T) {
	f := newFixture(t, token.Config{})
	root, _ := f.mustCaller(t, "ops", token.PermAdmin, token.PermManage)
	adminTok, adminPlain := f.mustCreate(t, root, token.CreateInput{Permissions: []string{token.PermAdmin}})
	// The admin creates a manage token without naming an owner: it lands under the admin's owner.
	manager, _ := f.mustCreate(t, root, token.CreateInput{Permissions: []string{token.PermManage}})
	if manager.Owner != "ops" {
		t.Fatalf("manage token owner %q; want ops", manager.Owner)
	}
	caller := token.Principal{TokenID: manager.ID, Owner: manager.Owner, Permissions: manager.Permissions}

	_, plaintext, err := f.svc.Rotate(ctx, caller, adminTok.ID, 0)
	storetest.AssertCode(t, err, token.EFORBIDDEN)
	if plaintext != "" {
		if p, err := authenticate(f.svc, plaintext); err == nil && p.IsAdmin() {
			t.Fatal("a manage token obtained an admin secret by rotation")
		}
	}
	off, name := false, "renamed"
	_, err = f.svc.Update(ctx, caller, adminTok.ID, token.UpdateInput{Enabled: &off})
	storetest.AssertCode(t, err, token.EFORBIDDEN)
	_, err = f.svc.Update(ctx, caller, adminTok.ID, token.UpdateInput{Name: &name})
	storetest.AssertCode(t, err, token.EFORBIDDEN)
	_, err = f.svc.Revoke(ctx, caller, adminTok.ID)
	storetest.AssertCode(t, err, token.EFORBIDDEN)
	f.assertVerdict(t, adminPlain, token.CodeValid)

	t.Run("admin may", func(t *testing.T) {
		if _, _, err := f.svc.Rotate(ctx, root, adminTok.ID, 0); err != nil {
			t.Fatalf("admin rotate: %v", err)
		}
	})
	t.Run("manage may rotate a non-admin token", func(t *testing.T) {
		if _, _, err := f.svc.Rotate(ctx, caller, manager.ID, 0); err != nil {
			t.Fatalf("manage rotate of its own token: %v", err)
		}
	})
}

// consumingStore uses a token's quota right after the service reads it, as concurrent requests
// would between an update's read and its write.
type consumingStore struct {
	token.Store
	armed bool
}

func (s *consumingStore) FindToken(ctx context.Context, id string) (*token.Token, error) {
	t, err := s.Store.FindToken(ctx, id)
	if s.armed {
		s.armed = false
		for range 5 {
			if _, err := s.Store.LeaseQuota(ctx, id, nil, time.Time{}, time.Now(), 1); err != nil {
				return nil, err
			}
		}
	}
	return t, err
}

// TestUpdateNeverUndoesConsumption: only a new "remaining" resets the quota counter; a rename or
// a new refill keeps the uses consumed between the update's read and its write.
func TestUpdateNeverUndoesConsumption(t *testing.T) {
	clock := storetest.NewClock()
	store := &consumingStore{Store: memstore.New(clock.Now)}
	svc, err := token.NewService(store, token.Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	left := int64(100)
	tok, _, err := svc.Create(ctx, admin, token.CreateInput{Name: "metered", Limits: token.LimitsInput{Remaining: &left}})
	if err != nil {
		t.Fatal(err)
	}
	name := "renamed"
	for i, in := range []token.UpdateInput{
		{Name: &name},
		{Limits: token.LimitsInput{Refill: &token.Refill{Amount: 100, Interval: time.Hour}}},
	} {
		store.armed = true
		got, err := svc.Update(ctx, admin, tok.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if want := 100 - 5*int64(i+1); storetest.MustQuotaLeft(t, store.Store, tok.ID) != want || *got.Remaining != want {
			t.Fatalf("update %d: remaining %d (answered %d); want %d (the update undid uses)", i, storetest.MustQuotaLeft(t, store.Store, tok.ID), *got.Remaining, want)
		}
	}
	fresh := int64(7)
	store.armed = true
	if _, err := svc.Update(ctx, admin, tok.ID, token.UpdateInput{Limits: token.LimitsInput{Remaining: &fresh}}); err != nil {
		t.Fatal(err)
	}
	if left := storetest.MustQuotaLeft(t, store.Store, tok.ID); left != 7 {
		t.Fatalf("a new remaining of 7 was not written: %d", left)
	}
}
