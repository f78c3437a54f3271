package samtest

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/app"
)

// isPutEvents reports whether a policy statement is the lifecycle events' grant.
func isPutEvents(st any) bool {
	return slices.Equal(toStrings(get(st, "Action")), []string{"events:PutEvents"})
}

// publishers are the functions whose routes change tokens, and so publish lifecycle events, and
// the scheduled expiry reminders.
var publishers = []string{"CreateFunction", "UpdateFunction", "RevokeFunction", "RotateFunction", "LeaksFunction", "RevokeByTokenFunction", remindersFunction, quotaEventsFunction}

// quotaEventsFunction publishes the quota events the table's stream hands it.
const quotaEventsFunction = "QuotaEventsFunction"

// TestPutEventsGrants: exactly the functions that change tokens, the expiry reminders and the
// quota events may
// put events, to the stack's bus only, and are told its name (EVENT_BUS_NAME); the example rule
// listens on that bus.
func TestPutEventsGrants(t *testing.T) {
	tpl := mustTemplate(t)
	busName := []any{"CreateEventBus", tree{"Ref": "EventBus"}, tree{"Ref": "EventBusName"}}
	busArn := []any{"CreateEventBus", tree{"Fn::GetAtt": []any{"EventBus", "Arn"}},
		tree{"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}}
	for id, fn := range resourcesOfType(tpl, "AWS::Serverless::Function") {
		var grants []any
		policies, _ := get(fn, "Properties", "Policies").([]any)
		for _, doc := range policies {
			statements, _ := get(doc, "Statement").([]any)
			for _, st := range statements {
				if isPutEvents(st) || slices.ContainsFunc(toStrings(get(st, "Action")), func(a string) bool { return strings.HasPrefix(a, "events:") }) {
					grants = append(grants, st)
				}
			}
		}
		env := get(fn, "Properties", "Environment", "Variables", app.EnvEventBusName)
		if !slices.Contains(publishers, id) {
			if len(grants) != 0 || env != nil {
				t.Errorf("%s changes no token, yet has %v and %s=%v", id, grants, app.EnvEventBusName, env)
			}
			continue
		}
		if len(grants) != 1 || get(grants[0], "Effect") != "Allow" || !reflect.DeepEqual(get(grants[0], "Resource", "Fn::If"), busArn) ||
			get(grants[0], "Condition") != nil {
			t.Errorf("%s: events grants %v, want one Allow of events:PutEvents on the bus", id, grants)
		}
		if !reflect.DeepEqual(get(env, "Fn::If"), busName) {
			t.Errorf("%s: %s = %v, want the bus's name", id, app.EnvEventBusName, env)
		}
	}
	rule := get(tpl, "Resources", "RevocationEventsRule", "Properties")
	if !reflect.DeepEqual(get(rule, "EventBusName", "Fn::If"), busName) ||
		!reflect.DeepEqual(toStrings(get(rule, "EventPattern", "source")), []string{"apitokens"}) {
		t.Errorf("example rule %v: not on the bus, or not for source apitokens", rule)
	}
}
