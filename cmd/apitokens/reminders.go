package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// envReminderInterval is how often `apitokens serve` runs the expiry reminders.
const envReminderInterval = "EXPIRY_REMINDER_INTERVAL"

// defaultReminderInterval is the local server's interval on the memory store.
const defaultReminderInterval = time.Minute

// reminderInterval reads EXPIRY_REMINDER_INTERVAL for serve: a Go duration of at least a second,
// or 0 for none. Unset, the memory store sweeps every minute and a DynamoDB table not at all: a
// local server must not claim (and so take from the deployed function) the reminders of a table
// it shares, unless told to.
func reminderInterval(getenv func(string) string, memory bool) (time.Duration, error) {
	s := getenv(envReminderInterval)
	if s == "" {
		if memory {
			return defaultReminderInterval, nil
		}
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d != 0 && d < time.Second {
		return 0, usagef("%s=%q: want a duration of at least 1s (e.g. 1m), or 0 for none", envReminderInterval, s)
	}
	return d, nil
}

// startReminders runs the expiry reminders of store every interval (after the first interval) until
// ctx ends, publishing to pub; nothing for interval 0. Returns an error when EXPIRY_REMINDER_DAYS
// is malformed.
func startReminders(ctx context.Context, store token.Store, pub token.Publisher, getenv func(string) string, interval time.Duration, logger *slog.Logger) error {
	if interval == 0 {
		return nil
	}
	days, err := app.ReminderDays(getenv)
	if err != nil {
		return err
	}
	r, err := token.NewReminders(store, token.ReminderConfig{Days: days, Events: pub, Logger: logger})
	if err != nil {
		return err
	}
	go every(ctx, interval, func() {
		if _, err := r.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("expiry reminders", "error", err)
		}
	})
	return nil
}

func (c *cli) remindCommand() *cobra.Command {
	var sf storeFlags
	var bus string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "remind-expiring",
		Short: "Publish the expiry reminders that are due, once (what the scheduled function does hourly)",
		Long: `Remind-expiring runs the expiry reminders once, as the stack's scheduled function does every
hour: for each threshold of EXPIRY_REMINDER_DAYS (default 30,7) it publishes a token.expiring
event for every token whose reminder fell due in the last 3 hours and was not sent yet, to the
EventBridge bus --bus (or EVENT_BUS_NAME), through the AWS SDK's standard configuration. A
reminder it sends is never sent again by the function, and the other way round.`,
		Example: `  apitokens remind-expiring --table apitokens --bus apitokens-prod
  EXPIRY_REMINDER_DAYS=14 apitokens remind-expiring --stack apitokens --bus default --json`,
		Args: noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(concat([]envVar{
			{app.EnvEventBusName, "EventBridge bus of the events (--bus)"},
			{app.EnvExpiryReminderDays, "thresholds in days before expiry, comma-separated; default 30,7"},
		}, commandEnv)...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if bus == "" {
				return usagef("remind-expiring needs --bus or %s: the EventBridge bus of the reminders", app.EnvEventBusName)
			}
			days, err := app.ReminderDays(c.getenv)
			if err != nil {
				return usageError{msg: err.Error()}
			}
			store, _, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			cfg, err := sf.aws.config(cmd.Context())
			if err != nil {
				return err
			}
			pub := lifecycle.NewEventBridge(eventbridge.NewFromConfig(cfg), bus)
			r, err := token.NewReminders(store, token.ReminderConfig{Days: days, Events: pub, Logger: slog.New(slog.NewTextHandler(c.stderr, nil))})
			if err != nil {
				return err
			}
			run, err := r.Run(cmd.Context())
			if asJSON {
				b, _ := json.Marshal(run)
				fmt.Fprintln(c.stdout, string(b))
			} else {
				fmt.Fprintf(c.stdout, "due: %d\nsent: %d\nskipped: %d (sent before)\nfailed: %d (left for the next run)\n", run.Due, run.Sent, run.Skipped, run.Failed)
			}
			return err
		}),
	}
	cmd.Flags().StringVar(&bus, "bus", c.getenv(app.EnvEventBusName), "EventBridge bus name, or default (env "+app.EnvEventBusName+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what the run did as JSON")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

// every runs f every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, f func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}
