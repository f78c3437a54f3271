package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

// TestServe runs `apitokens serve` as make run does, uses the printed admin token, and stops it
// with a cancelled context, as SIGINT does.
func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0"}, noEnv, &stdout, &stderr) }()

	re := regexp.MustCompile(`(?m)^apitokens listening on (http://\S+)[\s\S]*^Admin token: (tok_\S+)$`)
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil; {
		select {
		case err := <-done:
			t.Fatalf("serve stopped early: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if m = re.FindStringSubmatch(stdout.String()); m == nil && time.Now().After(deadline) {
			t.Fatalf("no admin token printed:\n%s", stdout.String())
		}
	}
	base, admin := m[1], m[2]
	if !strings.Contains(stdout.String(), "curl") {
		t.Errorf("no curl example printed:\n%s", stdout.String())
	}

	req, _ := http.NewRequest("POST", base+"/tokens", strings.NewReader(`{"name":"from test","permissions":["upload"]}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Token, Owner string }
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 || created.Owner != "admin" || !strings.HasPrefix(created.Token, "tok_") {
		t.Fatalf("create with the printed admin token: %d %+v %v", resp.StatusCode, created, err)
	}
	if strings.Contains(stderr.String(), created.Token) || strings.Contains(stderr.String(), admin) {
		t.Fatal("the server log shows a token")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
}

func TestCreateCommandMemory(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"create", "--store", "memory", "--owner", "ops", "--name", "root",
		"--permissions", "admin,manage", "--expires-in", "7", "--env", "live"}, noEnv, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Token: tok_live_\w{65}$`).MatchString(stdout.String()) ||
		!strings.Contains(stdout.String(), "Permissions: admin,manage") {
		t.Fatalf("create printed:\n%s", stdout.String())
	}
}

// TestUsageErrors: a command line that cannot run is a usage error (exit 2); a refused value is a
// failure of the command (exit 1).
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
	}{
		{nil, true},
		{[]string{"frobnicate"}, true},
		{[]string{"create", "--store", "memory", "--name", "x"}, true},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--permissions", "a", "extra"}, true},
		{[]string{"create", "--store", "memory", "--owner", "o", "--name", "x", "--permissions", "Bad Perm"}, false},
		{[]string{"serve", "--store", "dynamodb"}, true},
		{[]string{"serve", "--store", "sqlite"}, true},
		{[]string{"serve", "--port", "80"}, true},
		{[]string{"table"}, true},
		{[]string{"table", "create"}, true},
	} {
		var out bytes.Buffer
		err := run(context.Background(), tc.args, noEnv, &out, &out)
		if err == nil {
			t.Errorf("run(%q) succeeded; want an error", tc.args)
		} else if got := errors.As(err, new(usageError)); got != tc.usage {
			t.Errorf("run(%q) = %v: usage error %v, want %v", tc.args, err, got, tc.usage)
		}
	}
}
