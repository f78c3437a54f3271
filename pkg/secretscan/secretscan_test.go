package secretscan_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/secretscan"
	"github.com/apitokens/apitokens/pkg/token"
)

var ctx = context.Background()

// keyServer serves a key list as GitHub does, with an ETag, and counts its requests.
type keyServer struct {
	*httptest.Server
	mu       sync.Mutex
	entries  []map[string]any
	status   int
	requests int
	notMod   int
}

func newKeyServer(t *testing.T, keys map[string]*ecdsa.PrivateKey) *keyServer {
	t.Helper()
	ks := &keyServer{status: http.StatusOK}
	ks.set(t, keys)
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.requests++
		if ks.status != http.StatusOK {
			w.WriteHeader(ks.status)
			return
		}
		b, _ := json.Marshal(map[string]any{"public_keys": ks.entries})
		sum := sha256.Sum256(b)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			ks.notMod++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}))
	t.Cleanup(ks.Close)
	return ks
}

// set replaces the served keys (a rotation on GitHub's side).
func (ks *keyServer) set(t *testing.T, keys map[string]*ecdsa.PrivateKey) {
	t.Helper()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.entries = nil
	for id, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		ks.entries = append(ks.entries, map[string]any{"key_identifier": id, "key": pemKey, "is_current": true})
	}
}

func (ks *keyServer) counts() (requests, notModified int) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.requests, ks.notMod
}

func newKey(t *testing.T, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t *testing.T, k *ecdsa.PrivateKey, body string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newVerifier(t *testing.T, url string, c *clock) *secretscan.Verifier {
	t.Helper()
	v, err := secretscan.New(secretscan.Config{KeysURL: url, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const body = `[{"token":"tok_live_x","type":"apitokens_token","url":"https://github.com/o/r","source":"content"}]`

func TestVerify(t *testing.T) {
	key, other := newKey(t, elliptic.P256()), newKey(t, elliptic.P256())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"k1": key})
	v := newVerifier(t, ks.URL, &clock{now: time.Now()})
	good := sign(t, key, body)
	for _, tc := range []struct {
		name, body, keyID, sig string
		ok                     bool
	}{
		{"valid", body, "k1", good, true},
		{"valid again (cached)", body, "k1", good, true},
		{"another valid signature of the same body", body, "k1", sign(t, key, body), true},
		{"wrong key", body, "k1", sign(t, other, body), false},
		{"wrong body", body + " ", "k1", good, false},
		{"body changed inside", strings.Replace(body, "content", "commit", 1), "k1", good, false},
		{"no signature", body, "k1", "", false},
		{"no key id", body, "", good, false},
		{"not base64", body, "k1", "%%%", false},
		{"not ASN.1", body, "k1", base64.StdEncoding.EncodeToString([]byte("garbage")), false},
		{"truncated", body, "k1", good[:len(good)-8], false},
		{"huge signature", body, "k1", strings.Repeat("A", 4096), false},
		{"huge key id", body, strings.Repeat("k", 1000), good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(ctx, []byte(tc.body), tc.keyID, tc.sig)
			if tc.ok && err != nil {
				t.Fatalf("Verify: %v; want nil", err)
			}
			if !tc.ok && token.ErrorCode(err) != token.EUNAUTHORIZED {
				t.Fatalf("Verify: %v; want %s", err, token.EUNAUTHORIZED)
			}
		})
	}
	if n, _ := ks.counts(); n != 1 {
		t.Errorf("%d fetches of the key list; want 1 (cached)", n)
	}
}

func TestUnknownKeyIsFetchedAtMostOncePerInterval(t *testing.T) {
	key := newKey(t, elliptic.P256())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"k1": key})
	c := &clock{now: time.Now()}
	v := newVerifier(t, ks.URL, c)
	if err := v.Verify(ctx, []byte(body), "k1", sign(t, key, body)); err != nil {
		t.Fatal(err)
	}
	c.Advance(secretscan.DefaultRefetchInterval)
	// A flood of forged key ids: one fetch, then 401s from memory until the interval has passed.
	for range 20 {
		if err := v.Verify(ctx, []byte(body), "forged", sign(t, key, body)); token.ErrorCode(err) != token.EUNAUTHORIZED {
			t.Fatalf("unknown key: %v; want %s", err, token.EUNAUTHORIZED)
		}
	}
	if n, _ := ks.counts(); n != 2 {
		t.Fatalf("%d fetches; want 2 (the first, and one for the unknown ids)", n)
	}
	c.Advance(secretscan.DefaultRefetchInterval)
	_ = v.Verify(ctx, []byte(body), "forged", sign(t, key, body))
	if n, _ := ks.counts(); n != 3 {
		t.Fatalf("%d fetches; want 3 once the interval passed", n)
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, fresh := newKey(t, elliptic.P256()), newKey(t, elliptic.P256())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"old": oldKey})
	c := &clock{now: time.Now()}
	v := newVerifier(t, ks.URL, c)
	if err := v.Verify(ctx, []byte(body), "old", sign(t, oldKey, body)); err != nil {
		t.Fatal(err)
	}
	// GitHub starts signing with a new key and publishes it next to the old one.
	ks.set(t, map[string]*ecdsa.PrivateKey{"old": oldKey, "new": fresh})
	c.Advance(secretscan.DefaultRefetchInterval)
	if err := v.Verify(ctx, []byte(body), "new", sign(t, fresh, body)); err != nil {
		t.Fatalf("a report signed by the new key: %v", err)
	}
	if err := v.Verify(ctx, []byte(body), "old", sign(t, oldKey, body)); err != nil {
		t.Fatalf("a report signed by the old key, still published: %v", err)
	}
	// The new key's id with the old key's signature is still refused.
	if err := v.Verify(ctx, []byte(body), "new", sign(t, oldKey, body)); token.ErrorCode(err) != token.EUNAUTHORIZED {
		t.Fatalf("old key's signature under the new id: %v", err)
	}
	// GitHub withdraws the old key: once the list is revalidated (MaxAge), it is refused.
	ks.set(t, map[string]*ecdsa.PrivateKey{"new": fresh})
	c.Advance(secretscan.DefaultMaxAge)
	if err := v.Verify(ctx, []byte(body), "old", sign(t, oldKey, body)); token.ErrorCode(err) != token.EUNAUTHORIZED {
		t.Fatalf("a withdrawn key after revalidation: %v; want %s", err, token.EUNAUTHORIZED)
	}
}

func TestRevalidationUsesETagAndSurvivesOutages(t *testing.T) {
	key := newKey(t, elliptic.P256())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"k1": key})
	c := &clock{now: time.Now()}
	v := newVerifier(t, ks.URL, c)
	sig := sign(t, key, body)
	if err := v.Verify(ctx, []byte(body), "k1", sig); err != nil {
		t.Fatal(err)
	}
	c.Advance(secretscan.DefaultMaxAge)
	if err := v.Verify(ctx, []byte(body), "k1", sig); err != nil {
		t.Fatal(err)
	}
	if n, notMod := ks.counts(); n != 2 || notMod != 1 {
		t.Fatalf("%d fetches, %d answered 304; want the revalidation to be a conditional request", n, notMod)
	}
	// GitHub's endpoint fails: the known key keeps working, an unknown one is an error (500),
	// not a 401, so that GitHub retries.
	ks.mu.Lock()
	ks.status = http.StatusServiceUnavailable
	ks.mu.Unlock()
	c.Advance(secretscan.DefaultMaxAge)
	if err := v.Verify(ctx, []byte(body), "k1", sig); err != nil {
		t.Fatalf("known key during an outage: %v", err)
	}
	c.Advance(secretscan.DefaultRefetchInterval)
	if err := v.Verify(ctx, []byte(body), "k2", sig); err == nil || token.ErrorCode(err) != token.EINTERNAL {
		// It may be a key GitHub just started to use.
		t.Fatalf("unknown key during an outage: %v; want an internal error", err)
	}
}

func TestFirstFetchFailure(t *testing.T) {
	key := newKey(t, elliptic.P256())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"k1": key})
	ks.mu.Lock()
	ks.status = http.StatusInternalServerError
	ks.mu.Unlock()
	c := &clock{now: time.Now()}
	v := newVerifier(t, ks.URL, c)
	sig := sign(t, key, body)
	for range 2 { // the second within the interval: no fetch, still not a 401
		if err := v.Verify(ctx, []byte(body), "k1", sig); err == nil || token.ErrorCode(err) != token.EINTERNAL {
			t.Fatalf("no keys to be had: %v; want an internal error", err)
		}
	}
	if n, _ := ks.counts(); n != 1 {
		t.Fatalf("%d fetches; want 1", n)
	}
	ks.mu.Lock()
	ks.status = http.StatusOK
	ks.mu.Unlock()
	c.Advance(secretscan.DefaultRefetchInterval)
	if err := v.Verify(ctx, []byte(body), "k1", sig); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestKeyListEntries(t *testing.T) {
	p256, p384 := newKey(t, elliptic.P256()), newKey(t, elliptic.P384())
	ks := newKeyServer(t, map[string]*ecdsa.PrivateKey{"p256": p256, "p384": p384})
	ks.mu.Lock()
	ks.entries = append(ks.entries, map[string]any{"key_identifier": "junk", "key": "not a pem", "is_current": false})
	ks.mu.Unlock()
	v := newVerifier(t, ks.URL, &clock{now: time.Now()})
	if err := v.Verify(ctx, []byte(body), "p256", sign(t, p256, body)); err != nil {
		t.Fatalf("P-256 key next to unusable entries: %v", err)
	}
	for _, id := range []string{"p384", "junk"} {
		if err := v.Verify(ctx, []byte(body), id, sign(t, p384, body)); token.ErrorCode(err) != token.EUNAUTHORIZED {
			t.Errorf("key %s: %v; want %s (not a P-256 key)", id, err, token.EUNAUTHORIZED)
		}
	}
	// A list without a usable key is no list.
	only := newKeyServer(t, map[string]*ecdsa.PrivateKey{"p384": p384})
	if err := newVerifier(t, only.URL, &clock{now: time.Now()}).Verify(ctx, []byte(body), "p384", sign(t, p384, body)); token.ErrorCode(err) != token.EINTERNAL {
		t.Errorf("a list of P-384 keys only: %v; want an internal error", err)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"ftp://x/keys", "/keys", "https://", "not a url\x00"} {
		if _, err := secretscan.New(secretscan.Config{KeysURL: u}); err == nil {
			t.Errorf("New(%q): no error", u)
		}
	}
	if _, err := secretscan.New(secretscan.Config{}); err != nil {
		t.Errorf("New with the default URL: %v", err)
	}
}
