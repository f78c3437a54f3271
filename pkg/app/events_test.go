package app_test

import (
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/lifecycle"
)

func TestPublisher(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	if p, err := app.Publisher(env(nil)); p != nil || err != nil {
		t.Errorf("unset EVENT_BUS_NAME: %v %v, want none", p, err)
	}
	if _, err := app.Publisher(env(map[string]string{"EVENT_BUS_NAME": "default"})); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no AWS environment: %v", err)
	}
	p, err := app.Publisher(env(map[string]string{"EVENT_BUS_NAME": "apitokens-prod", "AWS_REGION": "eu-west-1",
		"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}))
	if _, ok := p.(*lifecycle.EventBridge); !ok || err != nil {
		t.Errorf("EVENT_BUS_NAME set: %T %v", p, err)
	}
	if _, err := app.LambdaRouteWithStore(nil, env(map[string]string{"EVENT_BUS_NAME": "default"}), "POST /tokens"); err == nil {
		t.Error("a function with EVENT_BUS_NAME but no AWS environment started")
	}
}
