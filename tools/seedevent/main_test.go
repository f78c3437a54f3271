package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// TestTokensOf: the tokens seedevent creates for events of events/, read from the events
// themselves.
func TestTokensOf(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		event string
		want  []string // "id owner permissions", in order
	}{
		{"create.json", []string{"Q7mZ2xK9pL4wN8rT acme manage,upload,list"}},
		{"get.json", []string{"Q7mZ2xK9pL4wN8rT acme manage", "4f9Xa1bC2dE3fG4h acme upload,list"}},
		{"get-not-found.json", []string{"Q7mZ2xK9pL4wN8rT acme manage"}},
		{"audit.json", []string{"Q7mZ2xK9pL4wN8rT acme manage", "4f9Xa1bC2dE3fG4h acme upload,list"}},
		{"verify.json", []string{"4f9Xa1bC2dE3fG4h acme upload,list"}},
		{"verify-malformed.json", nil},
		{"openapi.json", nil},
		{"authorizer-http-v2.json", nil}, // its token is the placeholder's, made by run
	} {
		t.Run(tc.event, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "events", tc.event))
			if err != nil {
				t.Fatal(err)
			}
			seeds, err := tokensOf(raw, tc.event, token.DefaultPrefix, now)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range seeds {
				got = append(got, s.tok.ID+" "+s.tok.Owner+" "+strings.Join(s.tok.Permissions, ","))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("seeds %q; want %q", got, tc.want)
			}
		})
	}
}

// TestSeededTokensVerify: the caller carries the context's expiry, and the token a verify body
// presents is stored with that token's own secret and label, so it verifies.
func TestSeededTokensVerify(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "create.json"))
	if err != nil {
		t.Fatal(err)
	}
	seeds, err := tokensOf(raw, "create.json", token.DefaultPrefix, time.Now())
	if err != nil || len(seeds) != 1 || !seeds[0].tok.ExpiresAt.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("caller %+v (%v); want the context's expiresAt", seeds, err)
	}
	raw, err = os.ReadFile(filepath.Join("..", "..", "events", "verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	seeds, err = tokensOf(raw, "verify.json", token.DefaultPrefix, time.Now())
	if err != nil || len(seeds) != 1 {
		t.Fatalf("seeds %+v (%v)", seeds, err)
	}
	p, ok := token.Parse(token.DefaultPrefix, "tok_live_4f9Xa1bC2dE3fG4hEx4mpleSecretNotRealDoNotUse0000000000000BB3CJSqU")
	if !ok {
		t.Fatal("the event's token does not parse")
	}
	if v := token.Judge(seeds[0].tok, p, time.Now()); !v.Valid() {
		t.Fatalf("the seeded token judges the event's token %s; want VALID", v.Code)
	}
}

// TestRunOnlyOnALocalEndpoint: without AWS_ENDPOINT_URL_DYNAMODB, seedevent writes nothing
// anywhere, since its tokens have the events' fixed ids.
func TestRunOnlyOnALocalEndpoint(t *testing.T) {
	env := map[string]string{"TABLE_NAME": "apitokens", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
	out := filepath.Join(t.TempDir(), "event.json")
	err := run(context.Background(), []string{"-event", "../../events/create.json", "-out", out}, func(k string) string { return env[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AWS_ENDPOINT_URL_DYNAMODB") {
		t.Fatalf("run: %v; want a refusal naming AWS_ENDPOINT_URL_DYNAMODB", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("run wrote %s", out)
	}
}
