package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeDashboard: `apitokens serve` prints the dashboard's URL under the admin token and
// serves the page there, under its Content-Security-Policy, next to the API.
func TestServeDashboard(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, noEnv, noInput(), &stdout, &stderr)
	}()
	defer func() {
		cancel()
		<-done
	}()
	re := regexp.MustCompile(`(?m)^Admin token: tok_\S+\nDashboard: +(http://\S+/) \(sign in with the admin token\)$`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = re.FindStringSubmatch(stdout.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no dashboard URL under the admin token:\n%s", stdout.String())
		}
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") || !strings.Contains(string(body), `<script type="module"`) {
		t.Errorf("GET %s: %d %q %q", m[1], resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"))
	}
	// The API is still the fallback of every other path.
	resp, err = http.Get(strings.TrimSuffix(m[1], "/") + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /nothing: %d %q, want the API's JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
