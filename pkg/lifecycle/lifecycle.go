// Package lifecycle publishes the token service's lifecycle events (token.Event): to Amazon
// EventBridge on AWS (EventBridge), and to memory on the local server (Memory), which logs them
// and serves the last ones at GET /events for tests.
package lifecycle

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Envelope is an event as EventBridge delivers it to a rule's target (the fields a rule can
// match), and as GET /events shows it.
type Envelope struct {
	Source     string      `json:"source"`      // token.EventSource
	DetailType string      `json:"detail-type"` // the event's type, e.g. token.revoked
	Time       time.Time   `json:"time"`
	Detail     token.Event `json:"detail"`
}

// detail returns the event's detail JSON. token.Event holds only strings and times, so it
// always encodes.
func detail(e token.Event) string {
	b, _ := json.Marshal(e)
	return string(b)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"code":"internal","message":"Internal error."}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers the API's error JSON: {"code":..., "message":...}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"code": code, "message": message})
}
