package app

import (
	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

// EnvEventBusName names the EventBridge bus lifecycle events go to ("default" for the account's
// default bus); unset: no events are published.
const EnvEventBusName = "EVENT_BUS_NAME"

// Publisher returns the EventBridge publisher of EVENT_BUS_NAME, or nil when it is unset.
// Returns an error naming what is missing from the AWS environment (lifecycle.NewEnvClient).
func Publisher(getenv func(string) string) (token.Publisher, error) {
	bus := getenv(EnvEventBusName)
	if bus == "" {
		return nil, nil
	}
	client, err := lifecycle.NewEnvClient(getenv)
	if err != nil {
		return nil, err
	}
	return lifecycle.NewEventBridge(client, bus), nil
}
