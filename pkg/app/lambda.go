package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/apitokens/apitokens/pkg/app/authzenv"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/secretscan"
	"github.com/apitokens/apitokens/pkg/token"
)

// LambdaRoute returns the handler of one route of httpapi.Routes as its Lambda function serves
// it: on the DynamoDB table named by TABLE_NAME, configured by ServiceConfig, with the caller
// taken from the authorizer's context (AuthorizerContext). Call it once per container, in main.
// Its verifications (POST /verify) only count uses, which the function writes with
// Function.FlushUsage (lambdaext.Start runs it alongside each invocation, and at SIGTERM).
// Returns an error naming the variable when TABLE_NAME is unset or a setting is malformed, and
// an error when the AWS configuration cannot be loaded or pattern is not in the route table.
func LambdaRoute(getenv func(string) string, pattern string) (*Function, error) {
	store, err := lambdaStore(getenv)
	if err != nil {
		return nil, err
	}
	return LambdaRouteWithStore(store, getenv, pattern)
}

// Function is the handler of a route's Lambda function, with the usage writes its
// verifications buffered (token.Config.BufferUses).
type Function struct {
	http.Handler
	service *token.Service
}

// FlushUsage writes the uses the function's verifications counted (token.Service.FlushUsage):
// final writes all of them, otherwise only once the usage interval has passed since the last
// flush that wrote. It has the type of a lambdaext.Work: a function whose route verifies tokens
// passes it to lambdaext.Start. A route that verifies nothing has nothing to write.
func (f *Function) FlushUsage(ctx context.Context, final bool) { f.service.FlushUsage(ctx, final) }

// lambdaStore returns the DynamoDB store of TABLE_NAME (authzenv.StoreFromEnv).
func lambdaStore(getenv func(string) string) (token.Store, error) {
	return authzenv.StoreFromEnv(getenv)
}

// LambdaRouteWithStore is LambdaRoute on a given store, so that tests run the functions' exact
// wiring without AWS. With EVENT_BUS_NAME its changes publish lifecycle events to EventBridge.
// Returns an error when a setting is malformed, EVENT_BUS_NAME is set without the AWS
// environment, or pattern is not a route.
func LambdaRouteWithStore(store token.Store, getenv func(string) string, pattern string) (*Function, error) {
	cfg, err := ServiceConfig(getenv)
	if err != nil {
		return nil, err
	}
	// lambdacontext's logger writes JSON when the function's log format is JSON, with the
	// request id of each invocation.
	logger := lambdacontext.NewLogger()
	if cfg.Events, err = Publisher(getenv); err != nil {
		return nil, err
	}
	cfg.Logger = logger
	// The environment may freeze once an answer is sent: uses are written beside an invocation
	// or at SIGTERM (FlushUsage), never from a goroutine left running.
	cfg.BufferUses = true
	svc, err := token.NewService(store, cfg)
	if err != nil {
		return nil, err
	}
	reports, err := LeakVerifier(getenv, logger)
	if err != nil {
		return nil, err
	}
	api := &httpapi.API{Service: svc, Authenticate: AuthorizerContext, Logger: logger, Reports: reports, Origin: RequestOrigin}
	h, ok := api.RouteHandler(pattern)
	if !ok {
		return nil, fmt.Errorf("route %q is not in the route table (httpapi.Routes)", pattern)
	}
	return &Function{Handler: h, service: svc}, nil
}

// LeakVerifier returns the checker of leak reports' signatures (POST /leaks): GitHub's secret
// scanning keys, or those at LEAK_KEYS_URL. It fetches nothing until the first report. Returns an
// error naming the variable when LEAK_KEYS_URL is not an http or https URL.
func LeakVerifier(getenv func(string) string, logger *slog.Logger) (*secretscan.Verifier, error) {
	v, err := secretscan.New(secretscan.Config{KeysURL: getenv(EnvLeakKeysURL), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvLeakKeysURL, err)
	}
	return v, nil
}

// RequestOrigin is the httpapi.API Origin of the Lambda functions: the caller's address and the
// request id as API Gateway gives them (requestContext.http.sourceIp, requestContext.requestId),
// never a client's X-Forwarded-For. Without that context: the zero Addr and "".
func RequestOrigin(r *http.Request) (netip.Addr, string) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok {
		return netip.Addr{}, ""
	}
	ip, _ := netip.ParseAddr(rc.HTTP.SourceIP)
	return ip, rc.RequestID
}

// AuthorizerContext is the httpapi.Authenticator of the Lambda functions: API Gateway has run
// this project's authorizer before the function, so the caller is read from the authorizer's
// context in the request (put there by aws-lambda-go-api-proxy's httpadapter.NewV2) instead of
// verifying the token a second time. The management API's authorizer passes limit refusals on
// (authorizer.RoleManagement, Config.DeferLimits): a context carrying a code is answered as that
// refusal, so a call over its rate limit or quota gets 429
// with Retry-After, which an authorizer cannot give. A person signed in with OpenID Connect comes
// with a subject and an empty tokenId (authorizer.ContextSubject). It fails closed: a request
// without that context, or without an owner and either a tokenId or a subject (not both), is
// EUNAUTHORIZED.
func AuthorizerContext(r *http.Request) (token.Principal, error) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok || rc.Authorizer == nil || len(rc.Authorizer.Lambda) == 0 {
		return token.Principal{}, token.Errorf(token.EUNAUTHORIZED, "No authorizer context: the route must be protected by the apitokens authorizer.")
	}
	c := rc.Authorizer.Lambda
	present := func(key string, ok bool) bool {
		_, in := c[key]
		return ok || !in
	}
	id, idOK := c[authorizer.ContextTokenID].(string)
	owner, ownerOK := c[authorizer.ContextOwner].(string)
	perms, permsOK := c[authorizer.ContextPermissions].(string)
	subject, subjectOK := c[authorizer.ContextSubject].(string)
	if !present(authorizer.ContextTokenID, idOK) || !ownerOK || owner == "" || !present(authorizer.ContextPermissions, permsOK) ||
		!present(authorizer.ContextSubject, subjectOK) || (id == "") == (subject == "") {
		return token.Principal{}, token.Errorf(token.EUNAUTHORIZED, "Incomplete authorizer context: an owner and a tokenId or a subject are required.")
	}
	if code, _ := c[authorizer.ContextCode].(string); code != "" {
		return token.Principal{}, refusal(code, c)
	}
	return token.Principal{
		TokenID: id, Owner: owner, Permissions: strings.Fields(perms), Subject: subject,
		SourceIP: rc.HTTP.SourceIP, RequestID: rc.RequestID,
	}, nil
}

// refusal rebuilds the error of a verdict the authorizer passed on in its context.
func refusal(code string, c map[string]any) error {
	v := token.Verdict{Code: code}
	if code == token.CodeRateLimited || code == token.CodeUsageExceeded {
		v.Limit = &token.LimitState{}
		if s, ok := c[authorizer.ContextLimit].(string); ok {
			v.Limit.Limit, _ = strconv.ParseInt(s, 10, 64)
		}
		if s, ok := c[authorizer.ContextReset].(string); ok {
			v.Limit.Reset, _ = time.Parse(time.RFC3339, s)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	return token.Errorf(token.EUNAUTHORIZED, "Unexpected authorizer verdict.")
}
