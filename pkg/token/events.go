package token

import (
	"context"
	"log/slog"
	"time"
)

// Lifecycle event types: the EventBridge detail-type of each event (source EventSource). Every
// type shares the detail schema Event, version EventVersion; the fields a type adds are named on
// Event.
const (
	EventCreated      = "token.created"         // a token was created
	EventRotated      = "token.rotated"         // a token got a new secret
	EventRevoked      = "token.revoked"         // a token was revoked (by DELETE, a cascade or POST /revoke)
	EventDisabled     = "token.disabled"        // an update set enabled to false
	EventEnabled      = "token.enabled"         // an update set enabled to true
	EventLeakRevoked  = "token.leak_revoked"    // a leak report revoked the token (LeakRevoke)
	EventLeakDisabled = "token.leak_disabled"   // a leak report disabled the token (LeakDisable)
	EventExpiring     = "token.expiring"        // a token expires in DaysBefore days (Reminders)
	EventQuotaLow     = "token.quota_low"       // a quota fell to its low mark (Quota.LowPercent of its size)
	EventQuotaSpent   = "token.quota_exhausted" // a quota has no use left this period
)

// EventSource is the EventBridge source of every lifecycle event.
const EventSource = "apitokens"

// EventVersion is the version of the detail schema (Event); a change that removes or changes
// a field gets a new version.
const EventVersion = "1"

// Event is a lifecycle event: one change of one token, for operators to route (EventBridge
// rules to email, chat or webhooks). Its JSON is the event's detail. It never holds a secret,
// a hash or a hint; the audit trail (AuditEvent, same EventID) holds the full record.
type Event struct {
	Type      string     `json:"-"`       // the detail-type: EventCreated, ...
	Version   string     `json:"version"` // EventVersion
	EventID   string     `json:"eventId"` // the id of the change's audit event (GET /audit); token.expiring: ReminderEventID
	Time      time.Time  `json:"time"`    // when the change was made
	TokenID   string     `json:"tokenId"`
	Owner     string     `json:"owner"`
	Name      string     `json:"name"`
	Env       string     `json:"env,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"` // nil: never expires
	Actor     EventActor `json:"actor"`
	RequestID string     `json:"requestId,omitempty"`

	// token.rotated: until when the previous secret still works; nil without a grace period.
	PreviousSecretUntil *time.Time `json:"previousSecretUntil,omitempty"`
	// token.revoked by a cascade: the token the cascade started from.
	CascadeFrom string `json:"cascadeFrom,omitempty"`
	// token.leak_revoked, token.leak_disabled, and token.revoked by POST /revoke: who reported
	// the secret and where it was found (never the secret).
	Report *EventReport `json:"report,omitempty"`
	// token.expiring: the reminder's threshold, in days before ExpiresAt (EXPIRY_REMINDER_DAYS).
	DaysBefore int `json:"daysBefore,omitempty"`
	// token.quota_low, token.quota_exhausted: the quota when the event was seen.
	Quota *EventQuota `json:"quota,omitempty"`
}

// EventQuota is the quota of a token.quota_low or token.quota_exhausted event. Remaining is what
// the counter held right after the lease that crossed the mark; uses leased to instances and not
// yet used count as spent.
type EventQuota struct {
	Remaining    int64      `json:"remaining"`
	Size         int64      `json:"size"`       // the refill amount, or the quota as set without a refill
	LowPercent   int        `json:"lowPercent"` // the low mark, in percent of Size
	PeriodStart  time.Time  `json:"periodStart"`
	NextRefillAt *time.Time `json:"nextRefillAt,omitempty"` // nil: no refill
}

// EventActor is who made the change: a token, a person signed in (subject), or the CLI (all "").
type EventActor struct {
	TokenID  string `json:"tokenId,omitempty"`
	Owner    string `json:"owner,omitempty"`
	Subject  string `json:"subject,omitempty"`
	SourceIP string `json:"sourceIp,omitempty"`
}

// EventReport is Report in an event.
type EventReport struct {
	Reporter string `json:"reporter"`
	URL      string `json:"url,omitempty"`
	Source   string `json:"source,omitempty"`
	Type     string `json:"type,omitempty"`
}

// Publisher sends lifecycle events on (EventBridge, or memory for the local server). Publish
// returns an error when some event was not accepted; it may have sent the others.
type Publisher interface {
	Publish(ctx context.Context, events []Event) error
}

// lifecycleEvent returns the event of the change ev made from before to t, and false for a
// change that has none (an update that leaves enabled alone).
func lifecycleEvent(ev *AuditEvent, before, t *Token) (Event, bool) {
	e := Event{
		Version:   EventVersion,
		EventID:   ev.ID,
		Time:      ev.At,
		TokenID:   t.ID,
		Owner:     t.Owner,
		Name:      t.Name,
		Env:       t.Env,
		Actor:     EventActor{TokenID: ev.ActorTokenID, Owner: ev.ActorOwner, Subject: ev.ActorSubject, SourceIP: ev.SourceIP},
		RequestID: ev.RequestID,
	}
	if !t.ExpiresAt.IsZero() {
		at := t.ExpiresAt
		e.ExpiresAt = &at
	}
	if ev.Report != nil {
		r := EventReport(*ev.Report)
		e.Report = &r
	}
	switch ev.Action {
	case ActionCreate:
		e.Type = EventCreated
	case ActionRotate:
		e.Type = EventRotated
		if !t.PrevSecretUntil.IsZero() {
			at := t.PrevSecretUntil
			e.PreviousSecretUntil = &at
		}
	case ActionRevoke:
		e.Type, e.CascadeFrom = EventRevoked, ev.Cascade
	case ActionLeakRevoked:
		e.Type = EventLeakRevoked
	case ActionLeakDisabled:
		e.Type = EventLeakDisabled
	case ActionUpdate:
		switch {
		case before.Enabled && !t.Enabled:
			e.Type = EventDisabled
		case !before.Enabled && t.Enabled:
			e.Type = EventEnabled
		default:
			return Event{}, false
		}
	default:
		return Event{}, false
	}
	return e, true
}

// publish sends the event of a change that was written: at most once. A failure is logged and
// never fails the change, which the audit trail records in any case.
func (s *Service) publish(ctx context.Context, ev *AuditEvent, before, t *Token) {
	if s.cfg.Events == nil {
		return
	}
	e, ok := lifecycleEvent(ev, before, t)
	if !ok {
		return
	}
	if err := s.cfg.Events.Publish(ctx, []Event{e}); err != nil {
		logger := s.cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.ErrorContext(ctx, "lifecycle event not published", "type", e.Type, "tokenId", e.TokenID, "eventId", e.EventID, "error", err)
	}
}
