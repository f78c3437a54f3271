// Command example-whoami is the backend of the example REST API in template.yaml, which another
// team would own: its REQUEST authorizer is an instance of apitokens' consumer authorizer
// application (authorizer/template.yaml), and this function only echoes the caller that the
// authorizer's context describes (pkg/example, which apitokens serve also serves locally). It
// needs no table: the context is all a protected API gets, and all it needs.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/apitokens/apitokens/pkg/example"
)

func main() {
	lambda.Start(whoami)
}

// whoami answers the caller from requestContext.authorizer, where API Gateway puts a REST API
// Lambda authorizer's context.
func whoami(_ context.Context, req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	r := example.Whoami(req.RequestContext.Authorizer)
	return events.APIGatewayProxyResponse{
		StatusCode: r.Status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(r.Body),
	}, nil
}
