package lifecycle

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/apitokens/apitokens/pkg/token"
)

// DefaultMemoryEvents is how many events a Memory keeps when NewMemory is given 0.
const DefaultMemoryEvents = 1000

// Memory is the local server's Publisher: it logs every event and keeps the last ones.
type Memory struct {
	logger *slog.Logger
	max    int
	mu     sync.Mutex
	events []Envelope // oldest first
}

var _ token.Publisher = (*Memory)(nil)

// NewMemory returns a Memory that logs to logger (nil: slog.Default()) and keeps the last max
// events (0: DefaultMemoryEvents).
func NewMemory(logger *slog.Logger, max int) *Memory {
	if logger == nil {
		logger = slog.Default()
	}
	if max <= 0 {
		max = DefaultMemoryEvents
	}
	return &Memory{logger: logger, max: max}
}

// Publish logs and keeps events; it never fails.
func (m *Memory) Publish(ctx context.Context, events []token.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range events {
		m.logger.InfoContext(ctx, "lifecycle event", "source", token.EventSource, "detailType", e.Type, "detail", detail(e))
		m.events = append(m.events, Envelope{Source: token.EventSource, DetailType: e.Type, Time: e.Time, Detail: e})
	}
	if n := len(m.events) - m.max; n > 0 {
		m.events = append(m.events[:0:0], m.events[n:]...)
	}
	return nil
}

// Events returns the events kept, oldest first.
func (m *Memory) Events() []Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Envelope(nil), m.events...)
}

// Handler serves GET /events on the local server: the events kept, oldest first, as
// {"events":[envelope...]}. Events name every owner's tokens, so only an admin may read them:
// authenticate's failure answers 401, a caller that is not an admin 403.
func (m *Memory) Handler(authenticate func(*http.Request) (token.Principal, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := authenticate(r)
		switch {
		case err != nil:
			writeError(w, http.StatusUnauthorized, "unauthorized", "A valid admin token is required.")
			return
		case !caller.IsAdmin():
			writeError(w, http.StatusForbidden, "forbidden", "Only an admin token may read the events.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"events": m.Events()})
	})
}
