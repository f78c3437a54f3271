// Command seedevent prepares a throwaway DynamoDB table for one event of events/, so that make
// invoke (scripts/invoke.sh) runs the event's function against DynamoDB Local and gets the answer
// the event is for. It creates the table TABLE_NAME as apitokens table create does, then in it
// the tokens the event names, as they would exist in a deployment, each with the audit event of
// its creation:
//
//   - the caller its authorizer context describes (requestContext.authorizer.lambda): that token
//     id, owner, name, permissions and expiry;
//   - the token its path (pathParameters.id) or its ?tokenId names, of the caller's owner, unless
//     the event's file name contains "not-found" (get-not-found.json names a token that must not
//     exist);
//   - the token the body of a verify presents, with the id and secret written in the event;
//   - for the authorizer's events, which present the placeholder tok_live_REPLACE_WITH_A_TOKEN, a
//     new token, written into the event in place of the placeholder.
//
// It writes the event to run to -out: the placeholder replaced, otherwise as read.
//
//	seedevent -event events/get.json -out .build/host/invoke/get.json
//
// Like the functions, it reads the table and the client's settings from the environment
// (TABLE_NAME, AWS_REGION, credentials, TOKEN_PREFIX), and it refuses to run without
// AWS_ENDPOINT_URL_DYNAMODB: it writes tokens with the fixed ids of the events, which belong in a
// table of DynamoDB Local, never in a deployment's.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/token"
)

// Placeholder is the token the authorizer's events present (events/authorizer-*.json).
const Placeholder = "tok_live_REPLACE_WITH_A_TOKEN"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "seedevent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("seedevent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	eventPath := fs.String("event", "", "the event file (events/<name>.json)")
	out := fs.String("out", "", "where to write the event to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventPath == "" || *out == "" || fs.NArg() > 0 {
		return errors.New("usage: seedevent -event events/<name>.json -out <file>")
	}
	if getenv("AWS_ENDPOINT_URL_DYNAMODB") == "" {
		return errors.New("AWS_ENDPOINT_URL_DYNAMODB is not set: seedevent writes tokens with fixed ids, for DynamoDB Local only")
	}
	table := getenv(app.EnvTableName)
	if table == "" {
		return fmt.Errorf("%s is not set", app.EnvTableName)
	}
	raw, err := os.ReadFile(*eventPath)
	if err != nil {
		return err
	}
	prefix := getenv(app.EnvPrefix)
	if prefix == "" {
		prefix = token.DefaultPrefix
	}
	client, err := dynamo.NewEnvClient(getenv)
	if err != nil {
		return err
	}
	if err := dynamo.CreateTable(ctx, client, table); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	seeds, err := tokensOf(raw, filepath.Base(*eventPath), prefix, time.Now())
	if err != nil {
		return fmt.Errorf("%s: %w", *eventPath, err)
	}
	if bytes.Contains(raw, []byte(Placeholder)) {
		tok, plaintext := newToken(token.NewID(), "acme", "make invoke", []string{"upload", "list"}, token.NewSecret(), prefix, time.Now())
		seeds = append(seeds, seed{tok, "the token in place of " + Placeholder})
		raw = bytes.ReplaceAll(raw, []byte(Placeholder), []byte(plaintext))
	}
	store := dynamo.New(client, table, dynamo.Options{})
	for _, s := range seeds {
		ev := &token.AuditEvent{
			ID: token.NewID(), At: s.tok.CreatedAt, Action: token.ActionCreate, TargetID: s.tok.ID, TargetOwner: s.tok.Owner,
			RequestID: "make invoke", ExpiresAt: s.tok.CreatedAt.Add(token.DefaultAuditRetention),
		}
		if err := store.CreateToken(ctx, s.tok, ev); err != nil {
			return fmt.Errorf("create token %s (%s): %w", s.tok.ID, s.what, err)
		}
		fmt.Fprintf(stderr, "seedevent: table %s: token %s of %s, %s\n", table, s.tok.ID, s.tok.Owner, s.what)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(*out, raw, 0o644)
}

// seed is a token to create, and what it is for.
type seed struct {
	tok  *token.Token
	what string
}

// routeEvent is what seedevent reads of an HTTP API payload 2.0 event.
type routeEvent struct {
	PathParameters        map[string]string `json:"pathParameters"`
	QueryStringParameters map[string]string `json:"queryStringParameters"`
	Body                  string            `json:"body"`
	RequestContext        struct {
		Authorizer struct {
			Lambda map[string]any `json:"lambda"`
		} `json:"authorizer"`
	} `json:"requestContext"`
}

// tokensOf returns the tokens an event names (see the package comment), but not the
// placeholder's: the caller, the target unless name says not-found, the body's token.
func tokensOf(raw []byte, name, prefix string, now time.Time) ([]seed, error) {
	var ev routeEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, err
	}
	var seeds []seed
	owner := "acme"
	if c := ev.RequestContext.Authorizer.Lambda; c != nil {
		str := func(k string) string { s, _ := c[k].(string); return s }
		id := str(authorizer.ContextTokenID)
		owner = str(authorizer.ContextOwner)
		if id == "" || owner == "" {
			return nil, errors.New("requestContext.authorizer.lambda has no tokenId and owner")
		}
		caller, _ := newToken(id, owner, str(authorizer.ContextName), strings.Fields(str(authorizer.ContextPermissions)), token.NewSecret(), prefix, now)
		// The caller's expiry is the ceiling of what it creates (token.Service.Create).
		if at, err := time.Parse(time.RFC3339, str(authorizer.ContextExpiresAt)); err == nil {
			caller.ExpiresAt = at
		}
		seeds = append(seeds, seed{caller, "the caller of requestContext.authorizer"})
	}
	target := ev.PathParameters["id"]
	if target == "" {
		target = ev.QueryStringParameters["tokenId"]
	}
	if target != "" && !strings.Contains(name, "not-found") {
		tok, _ := newToken(target, owner, "target", []string{"upload", "list"}, token.NewSecret(), prefix, now)
		seeds = append(seeds, seed{tok, "the token the request names"})
	}
	var body struct {
		Token string `json:"token"`
	}
	if json.Unmarshal([]byte(ev.Body), &body) == nil && body.Token != "" {
		if p, ok := token.Parse(prefix, body.Token); ok {
			tok, _ := newToken(p.ID, "acme", "verified", []string{"upload", "list"}, p.Secret, prefix, now)
			tok.Env = p.Env
			tok.Hint = token.Hint(prefix, p.Env, p.ID)
			seeds = append(seeds, seed{tok, "the token the body presents"})
		}
	}
	return seeds, nil
}

// newToken returns an active token, live for 30 days, and its plaintext.
func newToken(id, owner, name string, perms []string, secret, prefix string, now time.Time) (*token.Token, string) {
	now = now.UTC().Truncate(time.Millisecond)
	if name == "" {
		name = "seeded by make invoke"
	}
	return &token.Token{
		ID:          id,
		Owner:       owner,
		Name:        name,
		Env:         "live",
		Hint:        token.Hint(prefix, "live", id),
		Permissions: perms,
		SecretHash:  token.HashSecret(secret),
		CreatedAt:   now,
		UpdatedAt:   now,
		ExpiresAt:   now.Add(30 * token.Day),
		Enabled:     true,
		Version:     1,
	}, token.Format(prefix, "live", id, secret)
}
