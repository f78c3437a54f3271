package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/token"
)

// uniqueOwner is an owner no other test uses: the memory store is shared by the process.
func uniqueOwner() string {
	return fmt.Sprintf("audit-%d", time.Now().UnixNano())
}

// mustRun runs the command line args and returns what it printed to stdout.
func mustRun(t *testing.T, getenv func(string) string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), args, getenv, noInput(), &stdout, &stderr); err != nil {
		t.Fatalf("apitokens %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// created is a token made by `apitokens create`.
type created struct{ id, plaintext string }

func mustCreateToken(t *testing.T, getenv func(string) string, store []string, owner string) created {
	t.Helper()
	out := mustRun(t, getenv, append([]string{"create", "--owner", owner, "--name", "ci", "--permissions", "upload,manage"}, store...)...)
	m := regexp.MustCompile(`(?m)^Token: (\S+)\nID:\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("create printed %q", out)
	}
	return created{id: m[2], plaintext: m[1]}
}

// auditJSON runs `apitokens audit --json` with args and returns the events it printed.
func auditJSON(t *testing.T, getenv func(string) string, args ...string) (string, []map[string]any) {
	t.Helper()
	out := mustRun(t, getenv, append([]string{"audit", "--json"}, args...)...)
	var events []map[string]any
	if err := json.Unmarshal([]byte(out), &events); err != nil || events == nil {
		t.Fatalf("audit --json printed %q, not a JSON array: %v", out, err)
	}
	return out, events
}

// checkCreateEvent: out, the events audit --json printed, are exactly the create event of tok, made
// at the command line, with no secret.
func checkCreateEvent(t *testing.T, out string, events []map[string]any, tok created, owner string) {
	t.Helper()
	if len(events) != 1 {
		t.Fatalf("%d events, want the one create event: %s", len(events), out)
	}
	e := events[0]
	for field, want := range map[string]any{
		"action": "create", "tokenId": tok.id, "owner": owner, "requestId": cliRequestID,
		"actorTokenId": nil, "actorOwner": nil, "sourceIp": nil, "cascade": nil,
	} {
		if got := e[field]; got != want {
			t.Errorf("event %s = %v, want %v: %s", field, got, want, out)
		}
	}
	fields := map[string]bool{}
	for _, c := range e["changes"].([]any) {
		fields[c.(map[string]any)["field"].(string)] = true
	}
	if !fields["name"] || !fields["permissions"] || fields["secret"] {
		t.Errorf("changes name %v, want the new token's settings and no secret: %s", fields, out)
	}
	p, ok := token.Parse(token.DefaultPrefix, tok.plaintext)
	if !ok {
		t.Fatalf("create printed an unparsable token %q", tok.plaintext)
	}
	for _, secret := range []string{tok.plaintext, p.Secret, "secretHash", "SecretHash"} {
		if strings.Contains(out, secret) {
			t.Errorf("audit --json shows %q: %s", secret, out)
		}
	}
}

func TestAuditCommandMemory(t *testing.T) {
	owner := uniqueOwner()
	store := []string{"--store", "memory"}
	tok := mustCreateToken(t, noEnv, store, owner)

	out, events := auditJSON(t, noEnv, append(store, "--owner", owner)...)
	checkCreateEvent(t, out, events, tok, owner)
	out, events = auditJSON(t, noEnv, append(store, "--token", tok.id)...)
	checkCreateEvent(t, out, events, tok, owner)

	table := mustRun(t, noEnv, append([]string{"audit", "--owner", owner}, store...)...)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`^TIME\s+ACTION\s+TOKEN\s+OWNER\s+ACTOR\s+CHANGED$`).MatchString(lines[0]) {
		t.Fatalf("audit printed %q, want a header and one event", table)
	}
	row := regexp.MustCompile(`^\S+Z\s+create\s+` + tok.id + `\s+` + owner + `\s+cli\s+\S*name\S*$`)
	if !row.MatchString(lines[1]) || strings.Index(lines[0], "ACTION") != strings.Index(lines[1], "create") {
		t.Errorf("audit row %q is not the aligned create event of %s", lines[1], tok.id)
	}
	if parsed, _ := token.Parse(token.DefaultPrefix, tok.plaintext); strings.Contains(table, parsed.Secret) {
		t.Errorf("audit shows the secret: %s", table)
	}
}

// TestAuditCommandPages: --limit past one page of the service (100) pages on, newest first,
// each event once; without --limit, the newest 20.
func TestAuditCommandPages(t *testing.T) {
	owner := uniqueOwner()
	store := []string{"--store", "memory"}
	var ids []string
	for range token.MaxListLimit + 5 {
		ids = append(ids, mustCreateToken(t, noEnv, store, owner).id)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, defaultAuditLimit},
		{[]string{"--limit", "103"}, 103},
		{[]string{"--limit", "1000"}, len(ids)},
	} {
		out, events := auditJSON(t, noEnv, append(append(store, "--owner", owner), tc.args...)...)
		if len(events) != tc.want {
			t.Errorf("audit %v: %d events, want %d", tc.args, len(events), tc.want)
			continue
		}
		var got []string
		for i, e := range events {
			got = append(got, e["tokenId"].(string))
			if i > 0 && e["at"].(string) > events[i-1]["at"].(string) {
				t.Errorf("audit %v: event %d at %s is newer than the one before: %s", tc.args, i, e["at"], out)
			}
		}
		// Created one after another, the tokens' create events list in reverse.
		want := slices.Clone(ids)
		slices.Reverse(want)
		if !slices.Equal(got, want[:tc.want]) {
			t.Errorf("audit %v lists tokens %v, want %v", tc.args, got, want[:tc.want])
		}
	}
}

// TestAuditJSONMatchesTheAPI: audit --json prints what GET /audit answers in "events", for the
// same events (serve and audit share the process's memory store).
func TestAuditJSONMatchesTheAPI(t *testing.T) {
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
	status, body := call(t, "POST", base+"/tokens", admin, `{"name":"ci","permissions":["upload"],"clientId":"ci-1"}`)
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var tok struct{ ID string }
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatal(err)
	}
	for _, change := range []struct{ method, path, body string }{
		{"PATCH", "/tokens/" + tok.ID, `{"name":"ci renamed","meta":{"team":"platform"}}`},
		{"POST", "/tokens/" + tok.ID + "/rotate", `{"gracePeriodSeconds":60}`},
		{"DELETE", "/tokens/" + tok.ID + "?cascade=true", ""},
	} {
		if status, body := call(t, change.method, base+change.path, admin, change.body); status != 200 {
			t.Fatalf("%s %s: %d %s", change.method, change.path, status, body)
		}
	}

	status, body = call(t, "GET", base+"/audit?owner="+owner+"&limit=100", admin, "")
	var api struct{ Events []any }
	if err := json.Unmarshal([]byte(body), &api); status != 200 || err != nil {
		t.Fatalf("GET /audit: %d %s", status, body)
	}
	out := mustRun(t, noEnv, "audit", "--store", "memory", "--owner", owner, "--limit", "100", "--json")
	var cli []any
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("audit --json printed %q: %v", out, err)
	}
	if len(cli) != 5 { // the admin token's create, then the token's create, update, rotate, revoke
		t.Errorf("audit --json: %d events, want 5: %s", len(cli), out)
	}
	if !reflect.DeepEqual(cli, api.Events) {
		t.Errorf("audit --json differs from GET /audit's events:\n%s\nGET /audit: %s", out, body)
	}
}

// TestAuditCommandDynamoDB is the operator's path on a deployed table: create a token at the
// command line, then read its audit trail.
func TestAuditCommandDynamoDB(t *testing.T) {
	useEndpoint(t, dynamotest.MustEndpoint(t))
	table := fmt.Sprintf("apitokens-audit-%d", time.Now().UnixNano())
	mustRun(t, os.Getenv, "table", "create", "--table", table)
	owner := uniqueOwner()
	store := []string{"--table", table} // --store dynamodb is the default
	before := time.Now().UTC().Add(-time.Second).Format(time.RFC3339)
	tok := mustCreateToken(t, os.Getenv, store, owner)
	mustCreateToken(t, os.Getenv, store, owner+"-other")

	out, events := auditJSON(t, os.Getenv, append(store, "--token", tok.id)...)
	checkCreateEvent(t, out, events, tok, owner)
	out, events = auditJSON(t, os.Getenv, append(store, "--owner", owner, "--since", before)...)
	checkCreateEvent(t, out, events, tok, owner)
	if _, all := auditJSON(t, os.Getenv, store...); len(all) != 2 {
		t.Errorf("audit of every owner: %d events, want the 2 creates", len(all))
	}
	if out, none := auditJSON(t, os.Getenv, append(store, "--owner", owner, "--until", before)...); len(none) != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("audit --until before the create printed %q, want []", out)
	}
}

func TestAuditUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"audit", "--store", "memory", "--since", "yesterday"},
		{"audit", "--store", "memory", "--until", "2026-01-02"},
		{"audit", "--store", "memory", "--limit", "0"},
		{"audit", "--store", "memory", "--frobnicate"},
		{"audit", "--store", "memory", "ops"},
		{"audit", "--store", "sqlite"},
		{"audit", "--store", "dynamodb"},
	} {
		err := run(context.Background(), args, noEnv, noInput(), io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("run(%q) = %v; want a usage error (exit 2)", args, err)
		}
	}
	// A token id the service refuses is a failure of the command, not of its usage.
	err := run(context.Background(), []string{"audit", "--store", "memory", "--token", "not-an-id"}, noEnv, noInput(), io.Discard, io.Discard)
	if err == nil || errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "tokenId") {
		t.Errorf("audit --token not-an-id: %v; want the service's refusal naming tokenId", err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"audit", "-h"}, noEnv, noInput(), &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "--since") {
		t.Errorf("audit -h: %v, printed %q; want the flags and no error", err, stdout.String())
	}
}
