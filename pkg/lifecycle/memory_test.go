package lifecycle_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// Memory keeps the last max events, oldest first, and logs every one without a secret field.
func TestMemoryKeepsTheLast(t *testing.T) {
	var log bytes.Buffer
	mem := lifecycle.NewMemory(slog.New(slog.NewTextHandler(&log, nil)), 3)
	events := sample(5)
	if err := mem.Publish(ctx, events[:2]); err != nil {
		t.Fatal(err)
	}
	if err := mem.Publish(ctx, events[2:]); err != nil {
		t.Fatal(err)
	}
	got := mem.Events()
	if len(got) != 3 || got[0].Detail.TokenID != "id02" || got[2].Detail.TokenID != "id04" || got[2].Source != "apitokens" || got[1].DetailType != token.EventRevoked {
		t.Fatalf("kept %+v", got)
	}
	if n := strings.Count(log.String(), `msg="lifecycle event"`); n != 5 {
		t.Errorf("%d events logged, want 5:\n%s", n, log.String())
	}
}

// GET /events answers 401 without a valid token, 403 to a caller that is not an admin.
func TestMemoryHandler(t *testing.T) {
	mem := lifecycle.NewMemory(slog.New(slog.DiscardHandler), 0)
	_ = mem.Publish(ctx, sample(1))
	for _, tc := range []struct {
		name   string
		caller token.Principal
		err    error
		status int
		events bool
	}{
		{"no token", token.Principal{}, errors.New("no token"), http.StatusUnauthorized, false},
		{"manage of the same owner", token.Principal{Owner: "alice", Permissions: []string{token.PermManage}}, nil, http.StatusForbidden, false},
		{"admin", token.Principal{Owner: "root", Permissions: []string{token.PermAdmin}}, nil, http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := mem.Handler(func(*http.Request) (token.Principal, error) { return tc.caller, tc.err })
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/events", nil))
			body := rec.Body.String()
			if rec.Code != tc.status || strings.Contains(body, "id00") != tc.events || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%d %s", rec.Code, body)
			}
		})
	}
}
