package httpapi_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/secretscan"
	"github.com/apitokens/apitokens/pkg/token"
	"github.com/apitokens/apitokens/pkg/token/storetest"
)

// signingKeys plays GitHub: it holds the private keys of the secret scanning program and serves
// their public halves as https://api.github.com/meta/public_keys/secret_scanning does.
type signingKeys struct {
	*httptest.Server
	mu   sync.Mutex
	keys map[string]*ecdsa.PrivateKey
}

func newSigningKeys(t *testing.T, ids ...string) *signingKeys {
	t.Helper()
	sk := &signingKeys{keys: map[string]*ecdsa.PrivateKey{}}
	for _, id := range ids {
		sk.add(t, id)
	}
	sk.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sk.mu.Lock()
		defer sk.mu.Unlock()
		var list struct {
			PublicKeys []map[string]any `json:"public_keys"`
		}
		for id, k := range sk.keys {
			der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
			list.PublicKeys = append(list.PublicKeys, map[string]any{
				"key_identifier": id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true,
			})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	}))
	t.Cleanup(sk.Close)
	return sk
}

// add publishes a new key (a rotation) and returns it.
func (sk *signingKeys) add(t *testing.T, id string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk.mu.Lock()
	sk.keys[id] = k
	sk.mu.Unlock()
	return k
}

func (sk *signingKeys) key(id string) *ecdsa.PrivateKey {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return sk.keys[id]
}

func signBody(t *testing.T, k *ecdsa.PrivateKey, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// newLeakEnv is newEnv with cfg, and leak reports checked against the keys sk serves.
func newLeakEnv(t *testing.T, store token.Store, sk *signingKeys, cfg token.Config) *env {
	t.Helper()
	// The real time: DynamoDB Local's TTL deletes items whose ttl has passed by the real clock,
	// and a revoked token carries one (its purge, 30 days on).
	clock := storetest.NewClockAt(time.Now().UTC().Truncate(time.Second))
	if store == nil {
		store = memstore.New(clock.Now)
	}
	cfg.Now = clock.Now
	svc, err := token.NewService(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	verifier, err := secretscan.New(secretscan.Config{KeysURL: sk.URL, Now: clock.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	api := &httpapi.API{Service: svc, Authenticate: authenticator(store, clock.Now, logger), Logger: logger, Reports: verifier}
	e := &env{t: t, clock: clock, store: store, svc: svc, handler: api.Handler(), logs: logs}
	e.admin = e.mint("admin", token.PermAdmin, token.PermManage)
	return e
}

// leakStores runs f on the memory store and on DynamoDB Local (skipped without it, failed
// under make test when it is missing).
func leakStores(t *testing.T, f func(t *testing.T, newStore func(clock func() time.Time) token.Store)) {
	t.Run("memory", func(t *testing.T) {
		f(t, func(clock func() time.Time) token.Store { return memstore.New(clock) })
	})
	t.Run("dynamodb", func(t *testing.T) {
		client := dynamotest.MustClient(t)
		f(t, func(clock func() time.Time) token.Store {
			return dynamo.New(client, dynamotest.MustTable(t, client, dynamo.CreateTable), dynamo.Options{Now: clock})
		})
	})
}

// onStore builds a leak env on the store newStore makes, whose clock is the env's.
func onStore(t *testing.T, newStore func(func() time.Time) token.Store, sk *signingKeys, cfg token.Config) *env {
	t.Helper()
	var e *env
	store := newStore(func() time.Time { return e.clock.Now() })
	e = newLeakEnv(t, store, sk, cfg)
	return e
}

// post sends a raw request and records it for the OpenAPI check; the answer may be any JSON.
func (e *env) post(path, body string, header map[string]string, remoteAddr string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	if remoteAddr != "" {
		r.RemoteAddr = remoteAddr
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	record(e.t, r, body, w)
	return w
}

// report posts body to /leaks signed by key id of sk.
func (e *env) report(sk *signingKeys, id, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.post("/leaks", body, map[string]string{
		httpapi.HeaderLeakKeyID: id, httpapi.HeaderLeakSignature: signBody(e.t, sk.key(id), body),
	}, "")
}

type feedback struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func mustFeedback(t *testing.T, w *httptest.ResponseRecorder) []feedback {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("POST /leaks: %d %s", w.Code, w.Body)
	}
	var out []feedback
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("POST /leaks answer %s: %v", w.Body, err)
	}
	return out
}

func reportBody(tokens ...string) string {
	var matches []map[string]string
	for i, tok := range tokens {
		matches = append(matches, map[string]string{"token": tok, "type": "apitokens_token",
			"url": fmt.Sprintf("https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/f%d.txt", i), "source": "content"})
	}
	b, _ := json.Marshal(matches)
	return string(b)
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// auditCount is the number of audit events of every owner.
func (e *env) auditCount() int {
	e.t.Helper()
	n, cursor := 0, ""
	for {
		resp := e.must(200, "GET", "/audit?limit=100&cursor="+cursor, e.admin, "")
		n += len(resp.body["events"].([]any))
		if cursor = resp.str("nextCursor"); cursor == "" {
			return n
		}
	}
}

// TestLeakReport: a report mixing a real token, a revoked one, a malformed one, another
// deployment's (with the real token's own id and secret), a wrong secret and an unknown id
// revokes the real one only, audits it with the report's URL and source, answers GitHub's
// feedback in order, and changes nothing when repeated. On both stores.
func TestLeakReport(t *testing.T) {
	leakStores(t, func(t *testing.T, newStore func(func() time.Time) token.Store) {
		sk := newSigningKeys(t, "k1")
		e := onStore(t, newStore, sk, token.Config{})
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"ci","owner":"alice","environment":"live","clientId":"app"}`)
		real, id := created.str("token"), created.str("id")
		old := e.must(201, "POST", "/tokens", e.admin, `{"name":"old","owner":"alice"}`)
		e.must(200, "DELETE", "/tokens/"+old.str("id"), e.admin, "")
		p, _ := token.Parse(token.DefaultPrefix, real)
		wrongSecret := token.Format(token.DefaultPrefix, p.Env, p.ID, strings.Repeat("A", token.SecretLen))
		tokens := []string{
			real, old.str("token"), "tok_live_short",
			token.Format("acme", p.Env, p.ID, p.Secret), wrongSecret,
			token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret()),
		}
		wantLabels := []string{"true_positive", "true_positive", "false_positive", "false_positive", "false_positive", "false_positive"}
		e.clock.Advance(time.Minute)
		before := e.auditCount()

		body := reportBody(tokens...)
		first := e.report(sk, "k1", body)
		got := mustFeedback(t, first)
		if len(got) != len(tokens) {
			t.Fatalf("%d feedback entries for %d matches", len(got), len(tokens))
		}
		for i, f := range got {
			if f.Label != wantLabels[i] || f.TokenHash != sha(tokens[i]) || f.TokenType != "apitokens_token" {
				t.Errorf("feedback %d: %+v; want %s, the token's SHA-256, the reported type", i, f, wantLabels[i])
			}
		}
		if strings.Contains(first.Body.String(), real) {
			t.Fatal("the answer carries the reported token")
		}
		if v := e.must(200, "POST", "/verify", "", `{"token":"`+real+`"}`); v.str("code") != token.CodeRevoked {
			t.Fatalf("the reported token verifies %s; want REVOKED", v.str("code"))
		}
		events := e.must(200, "GET", "/audit?tokenId="+id+"&limit=1", e.admin, "").body["events"].([]any)
		ev := events[0].(map[string]any)
		report, _ := ev["report"].(map[string]any)
		wantReport := map[string]any{"reporter": "github-secret-scanning", "type": "apitokens_token", "source": "content",
			"url": "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/f0.txt"}
		if ev["action"] != "leak_revoked" || fmt.Sprint(report) != fmt.Sprint(wantReport) || ev["actorTokenId"] != nil {
			t.Fatalf("audit event %v; want leak_revoked with report %v and no actor token", ev, wantReport)
		}
		if n := e.auditCount(); n != before+1 {
			t.Fatalf("%d audit events written; want 1 (the real token; the revoked one needs none)", n-before)
		}

		// GitHub retries, or sends the same report again: the same answer, nothing written.
		e.clock.Advance(time.Minute)
		again := e.report(sk, "k1", body)
		if again.Code != 200 || again.Body.String() != first.Body.String() {
			t.Fatalf("repeated report: %d %s; want the first answer %s", again.Code, again.Body, first.Body)
		}
		if n := e.auditCount(); n != before+1 {
			t.Fatalf("a repeated report wrote %d events", n-before-1)
		}

		// Logs count; they never show a token or the body.
		logs := e.logs.String()
		for _, tok := range tokens[:2] {
			if strings.Contains(logs, tok) || strings.Contains(logs, p.Secret) {
				t.Fatal("a reported token is in the logs")
			}
		}
		if !strings.Contains(logs, `"msg":"leak report","reporter":"github-secret-scanning","matches":6,"truePositives":2`) {
			t.Errorf("logs lack the report's counts:\n%s", logs)
		}
	})
}

// TestLeakReportDisable: with LeakDisable a reported token is disabled, and audited leak_disabled.
func TestLeakReportDisable(t *testing.T) {
	sk := newSigningKeys(t, "k1")
	e := newLeakEnv(t, nil, sk, token.Config{LeakAction: token.LeakDisable})
	created := e.must(201, "POST", "/tokens", e.admin, `{"name":"ci","owner":"alice","clientId":"app"}`)
	e.clock.Advance(time.Minute)
	got := mustFeedback(t, e.report(sk, "k1", reportBody(created.str("token"))))
	if got[0].Label != "true_positive" {
		t.Fatalf("feedback %+v", got)
	}
	rec := e.must(200, "GET", "/tokens/"+created.str("id"), e.admin, "")
	if rec.str("status") != "disabled" {
		t.Fatalf("status %s; want disabled", rec.str("status"))
	}
	ev := e.must(200, "GET", "/audit?tokenId="+created.str("id")+"&limit=1", e.admin, "").body["events"].([]any)[0].(map[string]any)
	if ev["action"] != "leak_disabled" {
		t.Fatalf("audit event %v; want leak_disabled", ev)
	}
}

// TestLeakReportRefusals: an unsigned report, one signed by a key GitHub does not publish, one
// whose body is not the signed one, one with an unknown key id, a body over 1 MiB or with more
// than 1,000 matches: each refused, nothing changed.
func TestLeakReportRefusals(t *testing.T) {
	leakStores(t, func(t *testing.T, newStore func(func() time.Time) token.Store) {
		sk := newSigningKeys(t, "k1")
		e := onStore(t, newStore, sk, token.Config{})
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"ci","owner":"alice"}`)
		real := created.str("token")
		body := reportBody(real)
		outsider, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		before, events := e.snapshot(), e.auditCount()

		for _, tc := range []struct {
			name    string
			body    string
			header  map[string]string
			status  int
			message string
		}{
			{"unsigned", body, nil, 401, "Missing Github-Public-Key-Identifier or Github-Public-Key-Signature header."},
			{"no key id", body, map[string]string{httpapi.HeaderLeakSignature: signBody(t, sk.key("k1"), body)}, 401,
				"Missing Github-Public-Key-Identifier or Github-Public-Key-Signature header."},
			{"signed by another key", body, map[string]string{httpapi.HeaderLeakKeyID: "k1", httpapi.HeaderLeakSignature: signBody(t, outsider, body)}, 401,
				"Signature does not match the body."},
			{"another body's signature", body, map[string]string{httpapi.HeaderLeakKeyID: "k1", httpapi.HeaderLeakSignature: signBody(t, sk.key("k1"), reportBody("tok_x"))}, 401,
				"Signature does not match the body."},
			{"a signed body with a token added", strings.Replace(body, "[", `[{"token":"`+real+`"},`, 1),
				map[string]string{httpapi.HeaderLeakKeyID: "k1", httpapi.HeaderLeakSignature: signBody(t, sk.key("k1"), body)}, 401,
				"Signature does not match the body."},
			{"unknown key id", body, map[string]string{httpapi.HeaderLeakKeyID: "k9", httpapi.HeaderLeakSignature: signBody(t, outsider, body)}, 401,
				"Unknown signing key."},
			{"garbage signature", body, map[string]string{httpapi.HeaderLeakKeyID: "k1", httpapi.HeaderLeakSignature: "not base64!"}, 401,
				"Signature does not match the body."},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := e.post("/leaks", tc.body, tc.header, "")
				want := fmt.Sprintf(`{"code":"unauthorized","message":%q}`+"\n", tc.message)
				if w.Code != tc.status || w.Body.String() != want {
					t.Fatalf("%d %s; want %d %s", w.Code, w.Body, tc.status, want)
				}
			})
		}

		// Too large: read before anything else, signature or not.
		huge := reportBody(real) + strings.Repeat(" ", httpapi.MaxLeakBodyBytes)
		if w := e.post("/leaks", huge, map[string]string{httpapi.HeaderLeakKeyID: "k1", httpapi.HeaderLeakSignature: signBody(t, sk.key("k1"), huge)}, ""); w.Code != 413 ||
			w.Body.String() != `{"code":"too_large","message":"Report is larger than 1 MiB."}`+"\n" {
			t.Fatalf("a body over 1 MiB: %d %s", w.Code, w.Body)
		}
		many := make([]string, token.MaxLeakReports+1)
		for i := range many {
			many[i] = real
		}
		if w := e.report(sk, "k1", reportBody(many...)); w.Code != 413 ||
			w.Body.String() != `{"code":"too_large","message":"A report may list at most 1000 tokens."}`+"\n" {
			t.Fatalf("1001 matches: %d %s", w.Code, w.Body)
		}
		// Signed, but not GitHub's format.
		for _, bad := range []string{`{"token":"` + real + `"}`, `[{"token":1}]`, `["` + real + `"]`, `[{"type":"x"}]`, `[] []`, `[`} {
			if w := e.report(sk, "k1", bad); w.Code != 400 || strings.Contains(w.Body.String(), real) {
				t.Errorf("signed body %.30q: %d %s; want 400 without echoing it", bad, w.Code, w.Body)
			}
		}

		if after := e.snapshot(); after != before {
			t.Fatalf("refused reports changed tokens:\n%s\nwant\n%s", after, before)
		}
		if n := e.auditCount(); n != events {
			t.Fatalf("refused reports wrote %d audit events", n-events)
		}
		if v := e.must(200, "POST", "/verify", "", `{"token":"`+real+`"}`); v.str("code") != token.CodeValid {
			t.Fatalf("after refused reports the token verifies %s", v.str("code"))
		}
		if strings.Contains(e.logs.String(), real) {
			t.Fatal("a reported token is in the logs")
		}
	})
}

// TestLeakReportKeyRotation: GitHub publishes a new key and signs with it; the first report
// signed by it is accepted (the unknown id fetches the list again), and the old key still works
// while published.
func TestLeakReportKeyRotation(t *testing.T) {
	sk := newSigningKeys(t, "old")
	e := newLeakEnv(t, nil, sk, token.Config{})
	first := e.must(201, "POST", "/tokens", e.admin, `{"name":"a","owner":"alice"}`).str("token")
	second := e.must(201, "POST", "/tokens", e.admin, `{"name":"b","owner":"alice"}`).str("token")
	if got := mustFeedback(t, e.report(sk, "old", reportBody(first))); got[0].Label != "true_positive" {
		t.Fatalf("feedback %+v", got)
	}
	sk.add(t, "new")
	e.clock.Advance(secretscan.DefaultRefetchInterval)
	if got := mustFeedback(t, e.report(sk, "new", reportBody(second))); got[0].Label != "true_positive" {
		t.Fatalf("signed by the new key: feedback %+v", got)
	}
	if got := mustFeedback(t, e.report(sk, "old", reportBody(second))); got[0].Label != "true_positive" {
		t.Fatalf("signed by the old key, still published: feedback %+v", got)
	}
}

// TestRevokeByToken: whoever holds a token revokes it with POST /revoke and nothing else; the
// answer is byte for byte the same for a real token, the same token once revoked, an unknown
// one, a malformed one, another deployment's and a wrong secret. On both stores.
func TestRevokeByToken(t *testing.T) {
	leakStores(t, func(t *testing.T, newStore func(func() time.Time) token.Store) {
		e := onStore(t, newStore, newSigningKeys(t), token.Config{})
		created := e.must(201, "POST", "/tokens", e.admin, `{"name":"leaked","owner":"alice","environment":"live","clientId":"app"}`)
		real, id := created.str("token"), created.str("id")
		bystander := e.must(201, "POST", "/tokens", e.admin, `{"name":"bystander","owner":"alice"}`).str("token")
		p, _ := token.Parse(token.DefaultPrefix, real)

		type answer struct {
			status int
			header string
			body   string
		}
		answerOf := func(w *httptest.ResponseRecorder) answer {
			h := w.Header().Clone()
			return answer{w.Code, fmt.Sprint(h), w.Body.String()}
		}
		revoke := func(tok string) answer {
			b, _ := json.Marshal(map[string]string{"token": tok})
			return answerOf(e.post("/revoke", string(b), nil, ""))
		}
		want := answer{200, fmt.Sprint(http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}}), `{"status":"received"}` + "\n"}
		for _, tc := range []struct{ name, tok string }{
			{"unknown", token.Format(token.DefaultPrefix, "live", token.NewID(), token.NewSecret())},
			{"malformed", "tok_live_123"},
			{"not a token at all", "hello"},
			{"another deployment's, same id and secret", token.Format("acme", p.Env, p.ID, p.Secret)},
			{"wrong secret", token.Format(token.DefaultPrefix, p.Env, p.ID, strings.Repeat("B", token.SecretLen))},
			{"wrong environment label", token.Format(token.DefaultPrefix, "test", p.ID, p.Secret)},
			{"real", real},
			{"real, revoked already", real},
		} {
			if got := revoke(tc.tok); got != want {
				t.Errorf("%s: %+v; want %+v", tc.name, got, want)
			}
			if tc.name == "wrong environment label" {
				if v := e.must(200, "POST", "/verify", "", `{"token":"`+real+`"}`); v.str("code") != token.CodeValid {
					t.Fatalf("before the real token was presented, it verifies %s", v.str("code"))
				}
			}
		}
		if v := e.must(200, "POST", "/verify", "", `{"token":"`+real+`"}`); v.str("code") != token.CodeRevoked {
			t.Fatalf("after POST /revoke the token verifies %s", v.str("code"))
		}
		if v := e.must(200, "POST", "/verify", "", `{"token":"`+bystander+`"}`); v.str("code") != token.CodeValid {
			t.Fatalf("another token of the owner verifies %s", v.str("code"))
		}
		events := e.must(200, "GET", "/audit?tokenId="+id, e.admin, "").body["events"].([]any)
		revokes := 0
		for _, ev := range events {
			ev := ev.(map[string]any)
			if ev["action"] != "revoke" {
				continue
			}
			revokes++
			report, _ := ev["report"].(map[string]any)
			if ev["actorTokenId"] != id || ev["sourceIp"] != "192.0.2.1" || report["reporter"] != "self-revocation" || report["url"] != nil {
				t.Errorf("revoke event %v; want the token itself from 192.0.2.1, reported by self-revocation", ev)
			}
		}
		if revokes != 1 {
			t.Fatalf("%d revoke events; want 1", revokes)
		}
		if strings.Contains(e.logs.String(), p.Secret) {
			t.Fatal("a presented token is in the logs")
		}

		// Bodies that are not {"token": "..."} are refused, whatever they hold.
		for _, body := range []string{`{}`, `{"token":""}`, `{"token":"  "}`, `{"token":1}`, `{"token":"x","extra":1}`, `[]`, `tok`} {
			if w := e.post("/revoke", body, nil, ""); w.Code != 400 {
				t.Errorf("body %s: %d %s; want 400", body, w.Code, w.Body)
			}
		}
	})
}

// TestRevokeByTokenRateLimit: each address gets SelfRevokeLimit calls a minute; over it, 429
// with Retry-After and nothing looked up or revoked; other addresses are unaffected.
func TestRevokeByTokenRateLimit(t *testing.T) {
	e := newLeakEnv(t, nil, newSigningKeys(t), token.Config{SelfRevokeLimit: 2})
	real := e.must(201, "POST", "/tokens", e.admin, `{"name":"leaked","owner":"alice"}`).str("token")
	body := func(tok string) string { return `{"token":"` + tok + `"}` }
	for range 2 {
		if w := e.post("/revoke", body("junk"), nil, "203.0.113.5:4000"); w.Code != 200 {
			t.Fatalf("within the limit: %d %s", w.Code, w.Body)
		}
	}
	w := e.post("/revoke", body(real), nil, "203.0.113.5:4001")
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || w.Header().Get("RateLimit-Limit") != "2" ||
		w.Body.String() != `{"code":"rate_limited","message":"Too many revocations from this address; retry after the Retry-After delay."}`+"\n" {
		t.Fatalf("over the limit: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if v := e.must(200, "POST", "/verify", "", body(real)); v.str("code") != token.CodeValid {
		t.Fatalf("a refused call revoked the token: %s", v.str("code"))
	}
	if w := e.post("/revoke", body(real), nil, "198.51.100.9:4000"); w.Code != 200 {
		t.Fatalf("another address: %d %s", w.Code, w.Body)
	}
	if v := e.must(200, "POST", "/verify", "", body(real)); v.str("code") != token.CodeRevoked {
		t.Fatalf("after a call from another address the token verifies %s", v.str("code"))
	}
}
