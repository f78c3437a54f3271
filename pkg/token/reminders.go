package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultReminderDays are the thresholds of expiry reminders when none are configured: a
// token.expiring event 30 days and 7 days before a token expires.
var DefaultReminderDays = []int{30, 7}

const (
	// MaxReminderThresholds bounds how many thresholds a deployment may configure.
	MaxReminderThresholds = 10
	// DefaultReminderLookback is how long after a reminder falls due a run still sends it: three
	// runs of the hourly schedule, so that two missed or failed runs lose nothing.
	DefaultReminderLookback = 3 * time.Hour
	// reminderBatch is how many reminders are claimed and then published together: one PutEvents
	// call takes at most 10 entries.
	reminderBatch = 10
)

// ReminderConfig configures Reminders.
type ReminderConfig struct {
	// Days are the thresholds: a reminder falls due Days[i] days before a token expires
	// (default DefaultReminderDays). Each from 1 to MaxExpiryDays, distinct, at most
	// MaxReminderThresholds.
	Days []int
	// Lookback is how long after falling due a reminder is still sent (default
	// DefaultReminderLookback): a run at now sends the reminders of threshold d whose token
	// expires in [now + d days - Lookback, now + d days). At most a day.
	Lookback time.Duration
	// Events receives the token.expiring events; required.
	Events Publisher
	// Logger logs each run and what fails in it; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Reminders sends expiry reminders: token.expiring events, once per token, threshold and expiry.
// Run it periodically (on AWS the scheduled function functions/expiry-reminders, hourly); any
// number of runs may overlap.
type Reminders struct {
	store Store
	cfg   ReminderConfig
}

// NewReminders returns the reminder sweep of store. Returns EINVALID naming the rule cfg breaks.
func NewReminders(store Store, cfg ReminderConfig) (*Reminders, error) {
	if cfg.Events == nil {
		return nil, Errorf(EINVALID, "expiry reminders need a publisher of lifecycle events")
	}
	if cfg.Days == nil {
		cfg.Days = DefaultReminderDays
	}
	if err := CheckReminderDays(cfg.Days); err != nil {
		return nil, err
	}
	cfg.Days = slices.Clone(cfg.Days)
	slices.Sort(cfg.Days)
	slices.Reverse(cfg.Days) // the earliest reminders first
	if cfg.Lookback == 0 {
		cfg.Lookback = DefaultReminderLookback
	}
	if cfg.Lookback < 0 || cfg.Lookback > Day {
		return nil, Errorf(EINVALID, "reminder lookback %s: must be positive and at most 24h", cfg.Lookback)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reminders{store: store, cfg: cfg}, nil
}

// CheckReminderDays returns EINVALID unless days are 1 to MaxReminderThresholds distinct whole
// numbers of days from 1 to MaxExpiryDays.
func CheckReminderDays(days []int) error {
	if len(days) == 0 || len(days) > MaxReminderThresholds {
		return Errorf(EINVALID, "reminder days: want 1 to %d thresholds, got %d", MaxReminderThresholds, len(days))
	}
	for i, d := range days {
		if d < 1 || d > MaxExpiryDays {
			return Errorf(EINVALID, "reminder days: %d is not a whole number of days from 1 to %d", d, MaxExpiryDays)
		}
		if slices.Contains(days[:i], d) {
			return Errorf(EINVALID, "reminder days: %d is listed twice", d)
		}
	}
	return nil
}

// Days returns the thresholds, largest first.
func (r *Reminders) Days() []int { return slices.Clone(r.cfg.Days) }

// ReminderRun is what one run did.
type ReminderRun struct {
	Due     int `json:"due"`     // reminders found due in the window
	Sent    int `json:"sent"`    // claimed and published by this run
	Skipped int `json:"skipped"` // claimed already, by an overlapping or an earlier run
	Failed  int `json:"failed"`  // claimed, not published, released for a later run
}

// ReminderEventID is the eventId of reminder r's event: the same for every attempt to send it,
// so that a consumer can drop a repeat.
func ReminderEventID(r Reminder) string {
	return "reminder-" + r.TokenID + "-" + strconv.Itoa(r.DaysBefore) + "d-" + strconv.FormatInt(r.ExpiresAt.Unix(), 10)
}

// Run sends the reminders due now: for each threshold d, those of the tokens (not revoked, not
// gone, enabled or not) that expire in [now + d days - Lookback, now + d days). Each is first
// claimed (Store.ClaimReminder), so that of overlapping runs exactly one sends it; the claimed
// ones are published in batches of 10 (one PutEvents call each; the last may be smaller). A batch whose
// publication fails is released (Store.ReleaseReminder) for the next run to send again; its
// events that EventBridge did accept are then sent twice, with the same eventId.
// Returns what it did, and an error when a read or a claim failed (the run stops) or when some
// reminder could not be published (the others were).
func (r *Reminders) Run(ctx context.Context) (ReminderRun, error) {
	now := r.cfg.Now()
	var run ReminderRun
	var due []*dueReminder
	for _, d := range r.cfg.Days {
		until := now.Add(time.Duration(d) * Day)
		tokens, err := r.store.ExpiringTokens(ctx, until.Add(-r.cfg.Lookback), until)
		if err != nil {
			return run, fmt.Errorf("expiry reminders: tokens expiring in %d days: %w", d, err)
		}
		for _, t := range tokens {
			due = append(due, &dueReminder{token: t, rem: Reminder{TokenID: t.ID, DaysBefore: d, ExpiresAt: t.ExpiresAt}})
		}
	}
	run.Due = len(due)
	// Claims are made 10 at a time, in parallel; the claimed reminders are published in full
	// batches of 10 as they accumulate, so that a run stopped midway leaves few claims unsent.
	var pending []*dueReminder
	var publishErrs []error
	publish := func(batch []*dueReminder) {
		events := make([]Event, len(batch))
		for i, c := range batch {
			events[i] = reminderEvent(c, now)
		}
		if err := r.cfg.Events.Publish(ctx, events); err != nil {
			r.release(ctx, batch)
			run.Failed += len(batch)
			publishErrs = append(publishErrs, err)
			return
		}
		run.Sent += len(batch)
	}
	for start := 0; start < len(due); start += reminderBatch {
		batch := due[start:min(start+reminderBatch, len(due))]
		claimed, err := r.claim(ctx, batch)
		run.Skipped += len(batch) - len(claimed)
		pending = append(pending, claimed...)
		if err != nil {
			r.release(ctx, pending) // claimed, never to be sent by this run: for the next one
			return run, err
		}
		for len(pending) >= reminderBatch {
			publish(pending[:reminderBatch])
			pending = pending[reminderBatch:]
		}
	}
	if len(pending) > 0 {
		publish(pending)
	}
	r.cfg.Logger.InfoContext(ctx, "expiry reminders", "due", run.Due, "sent", run.Sent, "skipped", run.Skipped, "failed", run.Failed)
	if len(publishErrs) > 0 {
		return run, fmt.Errorf("expiry reminders: %d not published (released for the next run): %w", run.Failed, errors.Join(publishErrs...))
	}
	return run, nil
}

type dueReminder struct {
	token *Token
	rem   Reminder
}

// claim claims the reminders of batch in parallel and returns those this run won. On a failed
// claim it returns the error with the claims won so far.
func (r *Reminders) claim(ctx context.Context, batch []*dueReminder) ([]*dueReminder, error) {
	won := make([]bool, len(batch))
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i, d := range batch {
		wg.Go(func() { won[i], errs[i] = r.store.ClaimReminder(ctx, d.rem) })
	}
	wg.Wait()
	var claimed []*dueReminder
	for i, d := range batch {
		if won[i] && errs[i] == nil {
			claimed = append(claimed, d)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return claimed, fmt.Errorf("expiry reminders: claim: %w", err)
	}
	return claimed, nil
}

// release releases the claims of reminders that were not sent; a failed release is logged (that
// reminder is then lost: its claim stays until it expires).
func (r *Reminders) release(ctx context.Context, claimed []*dueReminder) {
	for _, c := range claimed {
		if err := r.store.ReleaseReminder(ctx, c.rem); err != nil {
			r.cfg.Logger.ErrorContext(ctx, "expiry reminder claim not released: the reminder is lost",
				"tokenId", c.rem.TokenID, "daysBefore", c.rem.DaysBefore, "error", err)
		}
	}
}

// reminderEvent is the token.expiring event of a due reminder, sent at now. Like every event, it
// holds no secret, hash or hint: only the fields the index projects.
func reminderEvent(d *dueReminder, now time.Time) Event {
	t, at := d.token, d.rem.ExpiresAt
	return Event{
		Type:       EventExpiring,
		Version:    EventVersion,
		EventID:    ReminderEventID(d.rem),
		Time:       now,
		TokenID:    t.ID,
		Owner:      t.Owner,
		Name:       t.Name,
		Env:        t.Env,
		ExpiresAt:  &at,
		DaysBefore: d.rem.DaysBefore,
	}
}
