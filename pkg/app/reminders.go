package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// EnvExpiryReminderDays lists the thresholds of expiry reminders (token.expiring events), in
// days before a token expires, comma-separated; unset: token.DefaultReminderDays (30,7).
const EnvExpiryReminderDays = "EXPIRY_REMINDER_DAYS"

// ReminderDays reads EXPIRY_REMINDER_DAYS. Returns an error naming the variable unless it is
// unset or 1 to token.MaxReminderThresholds distinct whole numbers of days from 1 to
// token.MaxExpiryDays, comma-separated.
func ReminderDays(getenv func(string) string) ([]int, error) {
	s := getenv(EnvExpiryReminderDays)
	if s == "" {
		return nil, nil
	}
	var days []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%s=%q: %q is not a whole number of days (want e.g. 30,7)", EnvExpiryReminderDays, s, strings.TrimSpace(part))
		}
		days = append(days, n)
	}
	if err := token.CheckReminderDays(days); err != nil {
		return nil, fmt.Errorf("%s=%q: %s", EnvExpiryReminderDays, s, token.ErrorMessage(err))
	}
	return days, nil
}

// ReminderHandler is the scheduled function's handler: one run of the sweep per scheduled event,
// answering what it did. An error makes Lambda retry the invocation, which is safe: claimed
// reminders are not sent twice.
type ReminderHandler func(ctx context.Context, ev events.EventBridgeEvent) (token.ReminderRun, error)

// LambdaReminders returns the handler of functions/expiry-reminders: the sweep of the DynamoDB
// table named by TABLE_NAME, publishing to the EventBridge bus named by EVENT_BUS_NAME, with the
// thresholds of EXPIRY_REMINDER_DAYS. Returns an error naming the variable when one is unset
// or malformed, or the AWS environment is incomplete.
func LambdaReminders(getenv func(string) string) (ReminderHandler, error) {
	store, err := lambdaStore(getenv)
	if err != nil {
		return nil, err
	}
	return LambdaRemindersWithStore(store, getenv)
}

// LambdaRemindersWithStore is LambdaReminders on a given store, so that tests run the function's
// wiring without DynamoDB.
func LambdaRemindersWithStore(store token.Store, getenv func(string) string) (ReminderHandler, error) {
	days, err := ReminderDays(getenv)
	if err != nil {
		return nil, err
	}
	pub, err := Publisher(getenv)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("%s is not set: expiry reminders are lifecycle events, published to that bus", EnvEventBusName)
	}
	r, err := token.NewReminders(store, token.ReminderConfig{Days: days, Events: pub, Logger: lambdacontext.NewLogger()})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, _ events.EventBridgeEvent) (token.ReminderRun, error) {
		return r.Run(ctx)
	}, nil
}

// LambdaQuotaEvents returns the handler of functions/quota-events: the table's stream hands it
// the QUOTAEVENT# items the enforcement points record (token.Store.ClaimQuotaEvent), and it
// publishes their events to the bus named by EVENT_BUS_NAME. Returns an error naming the variable
// when it is unset.
func LambdaQuotaEvents(getenv func(string) string) (func(context.Context, events.DynamoDBEvent) error, error) {
	pub, err := Publisher(getenv)
	if err != nil {
		return nil, err
	}
	if pub == nil {
		return nil, fmt.Errorf("%s is not set: quota events are lifecycle events, published to that bus", EnvEventBusName)
	}
	return lifecycle.PublishQuotaEvents(pub), nil
}
