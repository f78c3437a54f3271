package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// runIn runs the command line args with stdin and returns what it printed and its error.
func runIn(getenv func(string) string, stdin string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// mustRunJSON runs a command that prints JSON and decodes it into a T.
func mustRunJSON[T any](t *testing.T, getenv func(string) string, args ...string) T {
	t.Helper()
	out := mustRun(t, getenv, args...)
	var v T
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("apitokens %s printed %q, not a %T: %v", strings.Join(args, " "), out, v, err)
	}
	return v
}

// mustFail runs a command that must fail as a command (exit 1), not as a usage error, and returns
// what it printed and the error.
func mustFail(t *testing.T, getenv func(string) string, args ...string) (string, error) {
	t.Helper()
	stdout, _, err := runIn(getenv, "", args...)
	if err == nil || errors.As(err, new(usageError)) {
		t.Fatalf("apitokens %s = %v; want the command to fail (exit 1)", strings.Join(args, " "), err)
	}
	return stdout, err
}

// storeService is a token service on the store that store (command-line flags) names, for what
// the command line cannot do: create tokens as a token.
func storeService(t *testing.T, store []string) *token.Service {
	t.Helper()
	var s token.Store = memoryStore()
	if i := slices.Index(store, "--table"); i >= 0 {
		s = dynamo.New(dynamotest.MustClient(t), store[i+1], dynamo.Options{})
	}
	svc, err := token.NewService(s, token.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// compact is the JSON text raw without white space.
func compact(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "invalid JSON: " + string(raw)
	}
	return b.String()
}

func within(t *testing.T, what string, got *time.Time, want time.Time) {
	t.Helper()
	if got == nil || got.Sub(want).Abs() > time.Minute {
		t.Errorf("%s = %v, want about %v", what, got, want)
	}
}

// testTokenCommands runs every token command, as an operator would, on the store that store
// (command-line flags) names.
func testTokenCommands(t *testing.T, getenv func(string) string, store []string) {
	owner := uniqueOwner()
	cmd := func(args ...string) []string { return append(args, store...) }

	// create --json: the plaintext, shown once, and the record, never expiring.
	root := mustRunJSON[httpapi.WithSecret](t, getenv, cmd("create", "--owner", owner, "--name", "root",
		"--permissions", "admin,manage", "--expires-in", "never", "--json")...)
	if !strings.HasPrefix(root.Token, "tok_") || root.ExpiresAt != nil || root.Owner != owner ||
		!slices.Equal(root.Permissions, []string{"admin", "manage"}) || root.Status != token.StatusActive || root.CreatedBy != nil {
		t.Fatalf("create --json: %+v", root)
	}

	// create with every setting, as text.
	out := mustRun(t, getenv, cmd("create", "--owner", owner, "--name", "ci", "--permissions", "upload", "--apis", "uploads",
		"--expires-in", "30", "--env", "live", "--rate-limit", "100/1m", "--remaining", "1000", "--refill", "1000/24h",
		"--allowed-cidrs", "10.0.0.0/8", "--meta", `{"team":"platform"}`, "--client-id", "ci-1", "--auto-delete")...)
	m := regexp.MustCompile(`(?m)^Token: (tok_live_\S+)\nID:\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed %q", out)
	}
	ciToken, ciID := m[1], m[2]

	// show --json and as text.
	ci := mustRunJSON[httpapi.TokenView](t, getenv, cmd("show", ciID, "--json")...)
	if ci.ID != ciID || ci.Name != "ci" || !slices.Equal(ci.Permissions, []string{"upload"}) || !slices.Equal(ci.APIs, []string{"uploads"}) ||
		ci.RateLimit == nil || ci.RateLimit.Limit != 100 || ci.RateLimit.WindowSeconds != 60 || ci.Remaining == nil || *ci.Remaining != 1000 ||
		ci.RateLimit.Count == nil || *ci.RateLimit.Count != 0 || ci.RateLimit.Remaining == nil || *ci.RateLimit.Remaining != 100 ||
		ci.Refill == nil || ci.Refill.Amount != 1000 || ci.Refill.IntervalSeconds != 86400 || !slices.Equal(ci.AllowedCIDRs, []string{"10.0.0.0/8"}) ||
		compact(ci.Meta) != `{"team":"platform"}` || ci.ClientID == nil || *ci.ClientID != "ci-1" || !ci.AutoDelete ||
		!strings.HasPrefix(ci.Hint, "tok_live_") || ci.Status != token.StatusActive || !ci.Enabled {
		t.Errorf("show --json: %+v", ci)
	}
	within(t, "expiresAt", ci.ExpiresAt, time.Now().Add(30*token.Day))
	within(t, "refill.nextRefillAt", ci.Refill.NextRefillAt, time.Now().Add(token.Day))
	out = mustRun(t, getenv, cmd("show", ciID)...)
	checkAligned(t, strings.Split(strings.TrimSuffix(out, "\n"), "\n"))
	for _, want := range []string{"ID: +" + ciID, "Rate limit: +100 per 1m0s", "Refill: +1000 every 24h0m0s", "Allowed CIDRs: +10.0.0.0/8", "Status: +active", `Meta: +\{"team":"platform"\}`} {
		if !regexp.MustCompile(`(?m)^` + want + `$`).MatchString(out) {
			t.Errorf("show printed no line %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ciToken) {
		t.Errorf("show prints the plaintext:\n%s", out)
	}

	// list --json, newest first, and as an aligned table.
	listed := mustRunJSON[[]httpapi.TokenView](t, getenv, cmd("list", "--owner", owner, "--json")...)
	if len(listed) != 2 || listed[0].ID != ciID || listed[1].ID != root.ID {
		t.Errorf("list --json: %+v; want ci then root", listed)
	}
	out = mustRun(t, getenv, cmd("list", "--owner", owner)...)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^ID +NAME +OWNER +STATUS +PERMISSIONS +EXPIRES +LAST USED$`).MatchString(lines[0]) ||
		!strings.HasPrefix(lines[1], ciID) || !strings.HasPrefix(lines[2], root.ID) {
		t.Fatalf("list printed:\n%s", out)
	}
	for _, col := range []struct{ header, row1, row2 string }{{"STATUS", "active", "active"}, {"PERMISSIONS", "upload", "admin,manage"}, {"EXPIRES", "20", "never"}} {
		if i := strings.Index(lines[0], col.header); strings.Index(lines[1][i:], col.row1) != 0 || strings.Index(lines[2][i:], col.row2) != 0 {
			t.Errorf("list column %s is not aligned:\n%s", col.header, out)
		}
	}
	if _, _, err := runIn(getenv, "", cmd("list", "--owner", uniqueOwner())...); err != nil {
		t.Errorf("list of an owner without tokens: %v", err)
	}

	// verify: checked as POST /verify, from an argument or standard input; exit 1 when refused.
	v := mustRunJSON[httpapi.VerifyResponse](t, getenv, cmd("verify", ciToken, "--permissions", "upload", "--api", "uploads", "--ip", "10.1.2.3", "--json")...)
	if !v.Valid || v.Code != token.CodeValid || v.TokenID != ciID || v.Owner != owner {
		t.Errorf("verify --json: %+v", v)
	}
	if out, _, err := runIn(getenv, ciToken+"\n", cmd("verify", "-", "--ip", "10.1.2.3")...); err != nil || !regexp.MustCompile(`(?m)^Code: +VALID$`).MatchString(out) {
		t.Errorf("verify - (token on stdin): %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		code string
	}{
		{[]string{"--ip", "192.0.2.1"}, token.CodeForbiddenIP},
		{[]string{"--ip", "10.1.2.3", "--permissions", "delete"}, token.CodeInsufficientPermissions},
		{[]string{"--ip", "10.1.2.3", "--api", "billing"}, token.CodeForbiddenAPI},
	} {
		out, err := mustFail(t, getenv, cmd(append([]string{"verify", ciToken, "--json"}, tc.args...)...)...)
		var v httpapi.VerifyResponse
		if json.Unmarshal([]byte(out), &v) != nil || v.Valid || v.Code != tc.code || !strings.Contains(err.Error(), tc.code) {
			t.Errorf("verify %v: %v, printed %s; want %s", tc.args, err, out, tc.code)
		}
	}

	// update: only the flags given change; "none", "" and null remove a setting.
	upd := mustRunJSON[httpapi.TokenView](t, getenv, cmd("update", ciID, "--name", "ci 2", "--expires-in", "never", "--rate-limit", "none",
		"--allowed-cidrs", "", "--meta", "null", "--enabled=false", "--json")...)
	if upd.Name != "ci 2" || upd.ExpiresAt != nil || upd.RateLimit != nil || upd.AllowedCIDRs != nil || compact(upd.Meta) != "null" ||
		upd.Enabled || upd.Status != token.StatusDisabled || !slices.Equal(upd.Permissions, []string{"upload"}) || upd.Refill == nil {
		t.Errorf("update --json: %+v", upd)
	}
	if out, _ := mustFail(t, getenv, cmd("verify", ciToken)...); !strings.Contains(out, token.CodeDisabled) {
		t.Errorf("verify of a disabled token printed %q", out)
	}
	out = mustRun(t, getenv, cmd("update", ciID, "--enabled", "--expires-in", "7")...)
	if !regexp.MustCompile(`(?m)^Status: +active$`).MatchString(out) || !regexp.MustCompile(`(?m)^Name: +ci 2$`).MatchString(out) {
		t.Errorf("update printed:\n%s", out)
	}

	// rotate: a new secret for the same id; with --grace the old one works a while longer.
	rotated := mustRunJSON[httpapi.WithSecret](t, getenv, cmd("rotate", ciID, "--grace", "1h", "--json")...)
	if rotated.ID != ciID || rotated.Token == ciToken || !strings.HasPrefix(rotated.Token, "tok_live_") {
		t.Fatalf("rotate --json: %+v", rotated)
	}
	for _, tok := range []string{ciToken, rotated.Token} {
		mustRun(t, getenv, cmd("verify", tok)...)
	}
	// With --until-first-use, the old secret works until the new one's first use.
	waiting := mustRunJSON[httpapi.WithSecret](t, getenv, cmd("rotate", ciID, "--until-first-use", "--grace", "24h", "--json")...)
	for _, tok := range []string{rotated.Token, waiting.Token} {
		mustRun(t, getenv, cmd("verify", tok)...)
	}
	if out, _ := mustFail(t, getenv, cmd("verify", rotated.Token)...); !strings.Contains(out, token.CodeNotFound) {
		t.Errorf("verify of the old secret after the new one's first use printed %q", out)
	}
	out = mustRun(t, getenv, cmd("rotate", root.ID)...)
	newRoot := regexp.MustCompile(`(?m)^Token: (\S+)$`).FindStringSubmatch(out)
	if newRoot == nil {
		t.Fatalf("rotate printed %q", out)
	}
	if out, _ := mustFail(t, getenv, cmd("verify", root.Token)...); !strings.Contains(out, token.CodeNotFound) {
		t.Errorf("the root's old secret after a rotate without grace: %s", out)
	}

	// revoke --cascade: the root and the family it created.
	svc := storeService(t, store)
	child, _, err := svc.Create(context.Background(), token.Principal{TokenID: root.ID, Owner: owner, Permissions: root.Permissions},
		token.CreateInput{Name: "child", Permissions: []string{"manage", "upload"}})
	if err != nil {
		t.Fatal(err)
	}
	grandchild, _, err := svc.Create(context.Background(), child.Principal(), token.CreateInput{Name: "grandchild", Permissions: []string{"upload"}})
	if err != nil {
		t.Fatal(err)
	}
	if children := mustRunJSON[[]httpapi.TokenView](t, getenv, cmd("list", "--created-by", root.ID, "--json")...); len(children) != 1 || children[0].ID != child.ID {
		t.Errorf("list --created-by %s: %+v; want the child", root.ID, children)
	}
	revoked := mustRunJSON[httpapi.RevokeResponse](t, getenv, cmd("revoke", root.ID, "--cascade", "--json")...)
	if revoked.ID != root.ID || revoked.Status != token.StatusRevoked || revoked.DescendantsRevoked == nil ||
		*revoked.DescendantsRevoked != 2 || *revoked.DescendantsSkipped != 0 {
		t.Errorf("revoke --cascade --json: %+v", revoked)
	}
	if g := mustRunJSON[httpapi.TokenView](t, getenv, cmd("show", grandchild.ID, "--json")...); g.Status != token.StatusRevoked {
		t.Errorf("the grandchild after the cascade: %s", g.Status)
	}
	out = mustRun(t, getenv, cmd("revoke", ciID)...)
	if !regexp.MustCompile(`(?m)^Status: +revoked$`).MatchString(out) {
		t.Errorf("revoke printed:\n%s", out)
	}
	if out, _ := mustFail(t, getenv, cmd("verify", newRoot[1])...); !strings.Contains(out, token.CodeRevoked) {
		t.Errorf("verify of the revoked root printed %q", out)
	}
	all := mustRunJSON[[]httpapi.TokenView](t, getenv, cmd("list", "--owner", owner, "--status", "revoked", "--json")...)
	if len(all) != 4 {
		t.Errorf("list --status revoked: %d tokens, want 4: %+v", len(all), all)
	}
	if mustRunJSON[[]httpapi.TokenView](t, getenv, cmd("list", "--owner", owner, "--json")...) == nil {
		t.Errorf("list --json of no token printed null; want []")
	}

	// Each change made here is in the audit trail, by the command line.
	_, events := auditJSON(t, getenv, append(store, "--token", root.ID)...)
	var actions []string
	for _, e := range events {
		actions = append(actions, e["action"].(string))
		if e["requestId"] != cliRequestID {
			t.Errorf("audit event %v: want request id %q", e, cliRequestID)
		}
	}
	if !slices.Equal(actions, []string{"revoke", "rotate", "create"}) {
		t.Errorf("audit of the root: %v; want revoke, rotate, create", actions)
	}
}

func TestTokenCommandsMemory(t *testing.T) {
	testTokenCommands(t, noEnv, []string{"--store", "memory"})
}

func TestTokenCommandsDynamoDB(t *testing.T) {
	useEndpoint(t, dynamotest.MustEndpoint(t))
	table := fmt.Sprintf("apitokens-commands-%d", time.Now().UnixNano())
	mustRun(t, os.Getenv, "table", "create", "--table", table)
	testTokenCommands(t, os.Getenv, []string{"--table", table})
}

// TestJSONMatchesTheAPI: each --json output is what the API answers for the same token, field for
// field (serve and the commands share the process's memory store).
func TestJSONMatchesTheAPI(t *testing.T) {
	owner := uniqueOwner()
	base, stdout, stop := startServe(t, "--store", "memory", "--admin-owner", owner)
	defer stop()
	var admin string
	for deadline := time.Now().Add(5 * time.Second); admin == ""; time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`(?m)^Admin token: (\S+)$`).FindStringSubmatch(stdout.String()); m != nil {
			admin = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve printed no admin token:\n%s", stdout.String())
		}
	}
	mem := []string{"--store", "memory"}
	cli := func(args ...string) map[string]any {
		t.Helper()
		var v map[string]any
		out := mustRun(t, noEnv, append(append(args, "--json"), mem...)...)
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("apitokens %q printed %q: %v", args, out, err)
		}
		return v
	}
	api := func(method, path, body string, status int) map[string]any {
		t.Helper()
		got, answer := call(t, method, base+path, admin, body)
		var v map[string]any
		if err := json.Unmarshal([]byte(answer), &v); got != status || err != nil {
			t.Fatalf("%s %s: %d %s", method, path, got, answer)
		}
		return v
	}
	sameKeys := func(what string, cli, api map[string]any) {
		t.Helper()
		if k1, k2 := slices.Sorted(maps.Keys(cli)), slices.Sorted(maps.Keys(api)); !slices.Equal(k1, k2) {
			t.Errorf("%s: the command prints %v, the API answers %v", what, k1, k2)
		}
	}
	same := func(what string, cli, api any) {
		t.Helper()
		if !reflect.DeepEqual(cli, api) {
			t.Errorf("%s differs from the API:\ncommand: %v\nAPI:     %v", what, cli, api)
		}
	}
	without := func(v map[string]any, keys ...string) map[string]any {
		v = maps.Clone(v)
		for _, k := range keys {
			delete(v, k)
		}
		return v
	}
	// withoutWindow leaves out the live state of a rate limit's window (count, remaining, reset), which
	// get and list show and other answers do not, and which a 1 s window may change between two
	// reads; TestTokenCommands checks that show has it.
	var withoutWindow func(v any) any
	withoutWindow = func(v any) any {
		switch v := v.(type) {
		case []any:
			out := make([]any, len(v))
			for i, e := range v {
				out[i] = withoutWindow(e)
			}
			return out
		case map[string]any:
			v = maps.Clone(v)
			if rl, ok := v["rateLimit"].(map[string]any); ok {
				v["rateLimit"] = without(rl, "count", "remaining", "reset")
			}
			return v
		}
		return v
	}

	settings := []string{"--owner", owner, "--name", "ci", "--permissions", "upload", "--rate-limit", "10/1s",
		"--remaining", "5", "--refill", "5/1h", "--allowed-cidrs", "10.0.0.0/8", "--meta", `{"a":1}`, "--client-id", "c1", "--apis", "uploads"}
	created := cli(append([]string{"create"}, settings...)...)
	id := created["id"].(string)
	sameKeys("create --json", created, api("POST", "/tokens", `{"name":"api","owner":"`+owner+`","permissions":["upload"]}`, 201))
	same("create --json", without(created, "token"), withoutWindow(api("GET", "/tokens/"+id, "", 200)))
	same("show --json", withoutWindow(cli("show", id)), withoutWindow(api("GET", "/tokens/"+id, "", 200)))

	var listed []any
	if err := json.Unmarshal([]byte(mustRun(t, noEnv, append([]string{"list", "--owner", owner, "--status", "all", "--json"}, mem...)...)), &listed); err != nil {
		t.Fatal(err)
	}
	same("list --json", withoutWindow(listed), withoutWindow(api("GET", "/tokens?owner="+owner+"&status=all", "", 200)["tokens"]))

	updated := cli("update", id, "--name", "ci 2", "--expires-in", "never")
	sameKeys("update --json", updated, api("PATCH", "/tokens/"+id, `{"name":"ci 3"}`, 200))
	updated = cli("update", id, "--name", "ci 4")
	same("update --json", updated, withoutWindow(api("GET", "/tokens/"+id, "", 200)))

	rotated := cli("rotate", id)
	same("rotate --json", without(rotated, "token"), withoutWindow(api("GET", "/tokens/"+id, "", 200)))
	sameKeys("rotate --json", rotated, api("POST", "/tokens/"+id+"/rotate", "", 200))

	for _, tc := range []struct{ name, token string }{{"valid", admin}, {"malformed", "tok_nope"}} {
		var v map[string]any
		out, _, _ := runIn(noEnv, "", append([]string{"verify", tc.token, "--json"}, mem...)...)
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("verify --json printed %q", out)
		}
		same("verify --json of a "+tc.name+" token", v, api("POST", "/verify", `{"token":"`+tc.token+`"}`, 200))
	}

	other := api("POST", "/tokens", `{"name":"other","owner":"`+owner+`","permissions":["upload"]}`, 201)["id"].(string)
	sameKeys("revoke --cascade --json", cli("revoke", id, "--cascade"), api("DELETE", "/tokens/"+other+"?cascade=true", "", 200))
	third := api("POST", "/tokens", `{"name":"third","owner":"`+owner+`","permissions":["upload"]}`, 201)["id"].(string)
	same("revoke --json", cli("revoke", third), api("GET", "/tokens/"+third, "", 200))
	same("revoke --json of a revoked token", cli("revoke", third), api("DELETE", "/tokens/"+third, "", 200))
}

// TestVerifyTokenFromStdin: "-" reads the token from standard input, so that it stays out of the
// shell's history and the process list.
func TestVerifyTokenFromStdin(t *testing.T) {
	tok := mustCreateToken(t, noEnv, []string{"--store", "memory"}, uniqueOwner())
	for _, stdin := range []string{tok.plaintext, tok.plaintext + "\n", "  " + tok.plaintext + "\r\n"} {
		if out, _, err := runIn(noEnv, stdin, "verify", "-", "--store", "memory", "--json"); err != nil || !strings.Contains(out, `"valid": true`) {
			t.Errorf("verify - with %q on stdin: %v %s", stdin, err, out)
		}
	}
	if _, _, err := runIn(noEnv, "", "verify", "-", "--store", "memory"); !errors.As(err, new(usageError)) {
		t.Errorf("verify - with nothing on stdin: %v; want a usage error", err)
	}
	var stderr bytes.Buffer
	_ = run(context.Background(), []string{"verify", "-", "--store", "memory"}, noEnv, strings.NewReader(tok.plaintext), io.Discard, &stderr)
	if strings.Contains(stderr.String(), tok.plaintext) {
		t.Errorf("verify printed the token on stderr: %s", stderr.String())
	}
}
