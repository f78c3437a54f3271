package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// defaultAuditLimit is how many events `apitokens audit` lists without --limit.
const defaultAuditLimit = 20

// audit lists the audit trail newest first, as an aligned table or, with --json, as the JSON
// array GET /audit answers in "events". It reads as an admin: every owner, or --owner's.
func audit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	owner := fs.String("owner", "", "only the events of this owner's tokens; empty for every owner")
	tokenID := fs.String("token", "", "only the events of this token id")
	since := fs.String("since", "", "only events at or after this RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	until := fs.String("until", "", "only events before this RFC 3339 time")
	limit := fs.Int("limit", defaultAuditLimit, "most events to list (newest first)")
	asJSON := fs.Bool("json", false, "print the events as a JSON array, as GET /audit's events")
	var sf storeFlags
	sf.register(fs, getenv, "dynamodb")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	in := token.AuditInput{Owner: *owner, TokenID: *tokenID}
	for _, f := range []struct {
		name, value string
		dst         *time.Time
	}{{"since", *since, &in.Since}, {"until", *until, &in.Until}} {
		if f.value == "" {
			continue
		}
		at, err := time.Parse(time.RFC3339, f.value)
		if err != nil {
			return usagef("--%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name, f.value)
		}
		*f.dst = at
	}
	if *limit < 1 {
		return usagef("--limit %d: want at least 1", *limit)
	}
	_, svc, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}

	var events []*token.AuditEvent
	for len(events) < *limit {
		in.Limit = min(*limit-len(events), token.MaxListLimit)
		page, err := svc.Audit(ctx, cliPrincipal(), in)
		if err != nil {
			return failure(err)
		}
		events = append(events, page.Events...)
		if page.NextCursor == "" {
			break
		}
		in.Cursor = page.NextCursor
	}

	if *asJSON {
		out := make([]auditEventJSON, 0, len(events))
		for _, e := range events {
			out = append(out, auditEventJSONOf(e))
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if len(events) == 0 {
		fmt.Fprintln(stderr, "no audit events")
		return nil
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tACTION\tTOKEN\tOWNER\tACTOR\tCHANGED")
	for _, e := range events {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Action, e.TargetID, e.TargetOwner, actor(e), changed(e))
	}
	return w.Flush()
}

// actor names who made a change: the token and its owner, or the command line.
func actor(e *token.AuditEvent) string {
	switch {
	case e.ActorTokenID != "":
		return e.ActorTokenID + " (" + e.ActorOwner + ")"
	case e.RequestID == cliRequestID:
		return "cli"
	}
	return "-"
}

// changed lists the names of the fields a change set, and the token a cascade started from.
func changed(e *token.AuditEvent) string {
	names := make([]string, 0, len(e.Changes))
	for _, c := range e.Changes {
		names = append(names, c.Field)
	}
	s := strings.Join(names, ",")
	if s == "" {
		s = "-"
	}
	if e.Cascade != "" {
		s += " (cascade from " + e.Cascade + ")"
	}
	return s
}

// auditEventJSON is an audit event as GET /audit shows it (pkg/httpapi's auditEventView);
// TestAuditJSONMatchesTheAPI holds the two to the same output.
type auditEventJSON struct {
	ID           string         `json:"id"`
	At           time.Time      `json:"at"`
	Action       string         `json:"action"`
	TokenID      string         `json:"tokenId"`
	Owner        string         `json:"owner"`
	ActorTokenID *string        `json:"actorTokenId"`
	ActorOwner   *string        `json:"actorOwner"`
	Changes      []token.Change `json:"changes"`
	SourceIP     *string        `json:"sourceIp"`
	RequestID    *string        `json:"requestId"`
	Cascade      *string        `json:"cascade"`
}

func auditEventJSONOf(e *token.AuditEvent) auditEventJSON {
	changes := e.Changes
	if changes == nil {
		changes = []token.Change{}
	}
	return auditEventJSON{
		ID: e.ID, At: e.At, Action: e.Action, TokenID: e.TargetID, Owner: e.TargetOwner,
		ActorTokenID: stringOrNil(e.ActorTokenID), ActorOwner: stringOrNil(e.ActorOwner), Changes: changes,
		SourceIP: stringOrNil(e.SourceIP), RequestID: stringOrNil(e.RequestID), Cascade: stringOrNil(e.Cascade),
	}
}

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
