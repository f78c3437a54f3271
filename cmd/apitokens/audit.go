package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// defaultAuditLimit is how many events `apitokens audit` lists without --limit.
const defaultAuditLimit = 20

func (c *cli) auditCommand() *cobra.Command {
	var sf storeFlags
	var owner, tokenID, since, until string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List the audit trail of token changes, newest first",
		Long: `Audit lists the audit trail newest first: every create, update, rotate and revoke, who made it
and what it changed (never a secret), as an aligned table or, with --json, as the JSON array
GET /audit answers in "events". It reads as an admin: every owner's events, or --owner's.`,
		Example: `  apitokens audit --stack apitokens --owner ops --since 2026-01-01T00:00:00Z
  apitokens audit --table apitokens --token 4f9Xa1bC2dE3fG4h --json
  apitokens audit --table apitokens --limit 500`,
		Args:        noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			in := token.AuditInput{Owner: owner, TokenID: tokenID}
			for _, f := range []struct {
				name, value string
				dst         *time.Time
			}{{"since", since, &in.Since}, {"until", until, &in.Until}} {
				if f.value == "" {
					continue
				}
				at, err := time.Parse(time.RFC3339, f.value)
				if err != nil {
					return usagef("--%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", f.name, f.value)
				}
				*f.dst = at
			}
			if limit < 1 {
				return usagef("--limit %d: want at least 1", limit)
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			return c.audit(cmd.Context(), svc, in, limit, asJSON)
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&owner, "owner", "", "only the events of this owner's tokens; empty for every owner")
	fs.StringVar(&tokenID, "token", "", "only the events of this token id")
	fs.StringVar(&since, "since", "", "only events at or after this RFC 3339 time, e.g. 2026-01-02T15:04:05Z")
	fs.StringVar(&until, "until", "", "only events before this RFC 3339 time")
	fs.IntVar(&limit, "limit", defaultAuditLimit, "most events to list (newest first)")
	fs.BoolVar(&asJSON, "json", false, "print the events as a JSON array, as GET /audit's events")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

// audit lists the audit trail newest first, limit events at most, paging past the service's
// page size.
func (c *cli) audit(ctx context.Context, svc *token.Service, in token.AuditInput, limit int, asJSON bool) error {
	var events []*token.AuditEvent
	for len(events) < limit {
		in.Limit = min(limit-len(events), token.MaxListLimit)
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

	if asJSON {
		out := make([]httpapi.AuditEventView, 0, len(events))
		for _, e := range events {
			out = append(out, httpapi.AuditView(e))
		}
		return writeJSON(c.stdout, out)
	}
	rows := make([][]string, len(events))
	for i, e := range events {
		rows[i] = []string{e.At.UTC().Format(time.RFC3339), e.Action, e.TargetID, e.TargetOwner, actor(e), changed(e)}
	}
	return c.writeTable("no audit events", []string{"TIME", "ACTION", "TOKEN", "OWNER", "ACTOR", "CHANGED"}, rows)
}

// actor names who made a change: the token and its owner, a person signed in with OpenID
// Connect and their owner, the reporter of a leaked secret, or the command line.
func actor(e *token.AuditEvent) string {
	switch {
	case e.ActorSubject != "":
		return "person " + e.ActorSubject + " (" + e.ActorOwner + ")"
	case e.ActorTokenID != "":
		return e.ActorTokenID + " (" + e.ActorOwner + ")"
	case e.Report != nil:
		return e.Report.Reporter
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

func stringOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
