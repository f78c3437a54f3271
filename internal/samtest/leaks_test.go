package samtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/secretscan"
)

// leakSigningScalar is the private key (P-256 scalar, hex) that signed events/leaks.json, playing
// GitHub's secret scanning key in tests only; its key id is the SHA-256 of its public key's DER.
const leakSigningScalar = "3a098e69ff60a22eeaafb3f48e392f8147f4ad9f8540d8214a9cd2c2f5c0a4c5"

func leakSigningKey(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	raw, err := hex.DecodeString(leakSigningScalar)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id := sha256.Sum256(der)
	return k, hex.EncodeToString(id[:])
}

// leakEnv is the environment a route function gets in these tests: the case's own, and for the
// leaks function LEAK_KEYS_URL naming a server of this test that publishes the signing key of
// events/leaks.json as GitHub publishes its keys.
func leakEnv(t *testing.T, tc eventCase) map[string]string {
	t.Helper()
	env := maps.Clone(tc.env)
	if tc.function != "leaks" {
		return env
	}
	k, id := leakSigningKey(t)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	list, err := json.Marshal(map[string]any{"public_keys": []map[string]any{{
		"key_identifier": id, "key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "is_current": true,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(list)
	}))
	t.Cleanup(srv.Close)
	if env == nil {
		env = map[string]string{}
	}
	env[app.EnvLeakKeysURL] = srv.URL
	return env
}

// TestLeakEventSignature: events/leaks.json carries a valid signature of its body by the test
// signing key, with the key's id; when its body is edited, this prints the signature to put in.
func TestLeakEventSignature(t *testing.T) {
	ev := mustEvent(t, "leaks.json")
	k, id := leakSigningKey(t)
	if got := ev.Headers["github-public-key-identifier"]; got != id {
		t.Errorf("github-public-key-identifier %q; want %q", got, id)
	}
	sig, err := base64.StdEncoding.DecodeString(ev.Headers["github-public-key-signature"])
	sum := sha256.Sum256([]byte(ev.Body))
	if err != nil || !ecdsa.VerifyASN1(&k.PublicKey, sum[:], sig) {
		fresh, err := ecdsa.SignASN1(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("events/leaks.json: github-public-key-signature does not sign its body; set it to %s", base64.StdEncoding.EncodeToString(fresh))
	}
}

// TestLeakFunctionsEnvironment: the variables template.yaml sets on the leak functions are read
// by pkg/app, and every value their parameters allow is one it accepts.
func TestLeakFunctionsEnvironment(t *testing.T) {
	tpl := mustTemplate(t)
	for id, want := range map[string][]string{
		"LeaksFunction":         {app.EnvLeakAction, app.EnvLeakKeysURL},
		"RevokeByTokenFunction": {app.EnvSelfRevokeLimit},
	} {
		vars, _ := get(tpl, "Resources", id, "Properties", "Environment", "Variables").(tree)
		vars = maps.Clone(vars)
		delete(vars, app.EnvEventBusName) // the lifecycle events' bus: TestPutEventsGrants
		if got := slices.Sorted(maps.Keys(vars)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s sets %v; want %v", id, got, want)
		}
		for name, v := range vars {
			p, _ := get(tpl, "Parameters", ref(v)).(tree)
			if p == nil {
				t.Errorf("%s: %s = %v, want a parameter", id, name, v)
				continue
			}
			values := toStrings(p["AllowedValues"])
			for _, bound := range []string{"Default", "MinValue", "MaxValue"} {
				if s := str(p[bound]); s != "" {
					values = append(values, s)
				}
			}
			for _, value := range values {
				env := map[string]string{name: value}
				getenv := func(k string) string { return env[k] }
				if _, err := app.ServiceConfig(getenv); err != nil {
					t.Errorf("parameter %s allows %s=%s, which pkg/app refuses: %v", ref(v), name, value, err)
				}
				if _, err := app.LeakVerifier(getenv, nil); err != nil {
					t.Errorf("parameter %s allows %s=%s, which pkg/app refuses: %v", ref(v), name, value, err)
				}
			}
		}
	}
	if got := str(get(tpl, "Parameters", "LeakKeysUrl", "Default")); got != secretscan.DefaultKeysURL {
		t.Errorf("LeakKeysUrl defaults to %s; want GitHub's %s", got, secretscan.DefaultKeysURL)
	}
}
