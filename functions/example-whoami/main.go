// Command example-whoami is the backend of the example REST API in template.yaml, which another
// team would own: its REQUEST authorizer is an instance of apitokens' consumer authorizer
// application (authorizer/template.yaml), and this function only echoes the caller that the
// authorizer's context describes. It needs no table and no apitokens
// package: the context is all a protected API gets, and all it needs.
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(whoami)
}

type caller struct {
	TokenID     string   `json:"tokenId"`
	Owner       string   `json:"owner"`
	Permissions []string `json:"permissions"`
}

// whoami answers the caller from requestContext.authorizer, where API Gateway puts a REST API
// Lambda authorizer's context; without a tokenId and owner there it answers 401.
func whoami(_ context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	c := req.RequestContext.Authorizer
	id, _ := c["tokenId"].(string)
	owner, _ := c["owner"].(string)
	perms, _ := c["permissions"].(string)
	if id == "" || owner == "" {
		return respond(http.StatusUnauthorized, map[string]any{"valid": false, "error": "No authorizer context"})
	}
	return respond(http.StatusOK, caller{TokenID: id, Owner: owner, Permissions: strings.Fields(perms)})
}

func respond(status int, body any) (events.APIGatewayProxyResponse, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return events.APIGatewayProxyResponse{}, err
	}
	return events.APIGatewayProxyResponse{
		StatusCode: status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(b),
	}, nil
}
