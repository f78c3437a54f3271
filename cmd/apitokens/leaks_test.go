package main

import (
	"testing"

	"github.com/apitokens/apitokens/pkg/token"
)

// TestActorOfReportedSecret: the audit table names who reported a leaked secret, and a token
// that revoked itself by its value (POST /revoke) as the token it is.
func TestActorOfReportedSecret(t *testing.T) {
	for _, tc := range []struct {
		e    token.AuditEvent
		want string
	}{
		{token.AuditEvent{Action: token.ActionLeakRevoked, Report: &token.Report{Reporter: token.ReporterGitHub}}, "github-secret-scanning"},
		{token.AuditEvent{Action: token.ActionRevoke, ActorTokenID: "4f9Xa1bC2dE3fG4h", ActorOwner: "acme",
			Report: &token.Report{Reporter: token.ReporterSelf}}, "4f9Xa1bC2dE3fG4h (acme)"},
		{token.AuditEvent{Action: token.ActionRevoke, RequestID: cliRequestID}, "cli"},
		{token.AuditEvent{Action: token.ActionRevoke}, "-"},
	} {
		if got := actor(&tc.e); got != tc.want {
			t.Errorf("actor(%s event) = %q; want %q", tc.e.Action, got, tc.want)
		}
	}
}
