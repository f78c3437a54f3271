package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/token"
)

// Keys of the context an allow passes to the protected API (REST: $context.authorizer.<key>;
// HTTP API payload 2.0: requestContext.authorizer.lambda.<key>). Values are strings.
const (
	ContextTokenID     = "tokenId"
	ContextOwner       = "owner"
	ContextName        = "name"
	ContextPermissions = "permissions" // space-separated
	ContextExpiresAt   = "expiresAt"   // RFC 3339, "" for never
	// With a denial, or an allow whose limit refusal was deferred (Config.DeferLimits): the
	// verdict code (e.g. RATE_LIMITED), its message, and for a limit its reset (RFC 3339, "" if
	// none) and its limit.
	ContextCode  = "code"
	ContextError = "error"
	ContextReset = "reset"
	ContextLimit = "limit"
	// With a RATE_LIMITED or USAGE_EXCEEDED refusal: what the refusing instance knew of the limit
	// (token.LeaseState), so that a spent limit can be told from units leased elsewhere:
	// "store" when a lease write just now found it spent, "memory" when the instance answered
	// from what its last write found; that write's time (RFC 3339, "" for none) and what the
	// store then had left.
	ContextLeaseSource    = "leaseSource"
	ContextLeaseCheckedAt = "leaseCheckedAt"
	ContextLeaseStoreLeft = "leaseStoreLeft"
)

// ErrUnauthorized is the exact error API Gateway turns into 401 for a REST API authorizer.
var ErrUnauthorized = errors.New("Unauthorized")

// errDenied is answered when the store fails: an error other than "Unauthorized", which API
// Gateway turns into 500. Its text says nothing about the failure, which is logged instead.
var errDenied = errors.New("authorizer error")

// Handle is the Lambda handler. It tells the event kind from the payload: HTTP API payload 2.0
// ("version": "2.0"), REST API TOKEN ("type": "TOKEN") or REST API REQUEST ("type": "REQUEST").
func (a *Authorizer) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		Version string `json:"version"`
		Type    string `json:"type"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		a.cfg.Logger.ErrorContext(ctx, "authorizer event is not JSON", "error", err)
		return nil, errDenied
	}
	switch {
	case probe.Version == "2.0":
		var e events.APIGatewayV2CustomAuthorizerV2Request
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, a.badEvent(ctx, err)
		}
		return a.HandleHTTP(ctx, e)
	case probe.Type == "TOKEN":
		var e events.APIGatewayCustomAuthorizerRequest
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, a.badEvent(ctx, err)
		}
		return a.HandleToken(ctx, e)
	case probe.Type == "REQUEST":
		var e events.APIGatewayCustomAuthorizerRequestTypeRequest
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, a.badEvent(ctx, err)
		}
		return a.HandleRequest(ctx, e)
	}
	a.cfg.Logger.ErrorContext(ctx, "unknown authorizer event", "version", probe.Version, "type", probe.Type)
	return nil, errDenied
}

func (a *Authorizer) badEvent(ctx context.Context, err error) error {
	a.cfg.Logger.ErrorContext(ctx, "malformed authorizer event", "error", err)
	return errDenied
}

// HandleToken answers a REST API TOKEN authorizer event. The event carries no source IP, no
// headers and no resource, only authorizationToken ("Bearer <token>") and the method ARN, whose
// path (the stage removed) is the route.
func (a *Authorizer) HandleToken(ctx context.Context, e events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	presented, _ := token.BearerToken(e.AuthorizationToken)
	_, method, path, ok := splitARN(e.MethodArn)
	if !ok {
		return events.APIGatewayCustomAuthorizerResponse{}, a.badEvent(ctx, errors.New("malformed methodArn"))
	}
	return a.restResponse(ctx, Request{Token: presented, Method: method, Route: path, PathOnly: true}, e.MethodArn, false)
}

// HandleRequest answers a REST API REQUEST authorizer event, deciding on the resource API Gateway
// matched (e.g. /files/{id}) and the request's method.
func (a *Authorizer) HandleRequest(ctx context.Context, e events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	if e.HTTPMethod == "" || !strings.HasPrefix(e.Resource, "/") {
		return events.APIGatewayCustomAuthorizerResponse{}, a.badEvent(ctx, errors.New("REQUEST event without httpMethod or resource"))
	}
	ip, _ := netip.ParseAddr(e.RequestContext.Identity.SourceIP)
	req := Request{Token: a.credentials(headerGetter(e.Headers)), Method: e.HTTPMethod, Route: e.Resource, SourceIP: ip}
	return a.restResponse(ctx, req, e.MethodArn, true)
}

func (a *Authorizer) restResponse(ctx context.Context, req Request, methodArn string, perRoute bool) (events.APIGatewayCustomAuthorizerResponse, error) {
	base, _, _, ok := splitARN(methodArn)
	if !ok {
		a.cfg.Logger.ErrorContext(ctx, "authorizer event has a malformed methodArn", "methodArn", methodArn)
		return events.APIGatewayCustomAuthorizerResponse{}, errDenied
	}
	d, err := a.Authorize(ctx, req)
	if err != nil {
		a.logFailure(ctx, err)
		return events.APIGatewayCustomAuthorizerResponse{}, errDenied
	}
	if d.Outcome == Unauthorized {
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:    d.Token.Owner,
		PolicyDocument: a.policy(base, methodArn, req, d, perRoute),
		Context:        a.policyContext(d, perRoute),
	}, nil
}

// HandleHTTP answers an HTTP API payload 2.0 authorizer event with a simple response, or with an
// IAM policy when so configured. Both 401 and 403 cases answer isAuthorized false (HTTP API
// answers 403); a store failure answers an error (500).
func (a *Authorizer) HandleHTTP(ctx context.Context, e events.APIGatewayV2CustomAuthorizerV2Request) (any, error) {
	route, ok := httpRoute(e.RouteKey)
	if !ok || e.RequestContext.HTTP.Method == "" {
		return nil, a.badEvent(ctx, errors.New("HTTP API event without routeKey or method"))
	}
	ip, _ := netip.ParseAddr(e.RequestContext.HTTP.SourceIP)
	req := Request{Token: a.credentials(headerGetter(e.Headers)), Method: e.RequestContext.HTTP.Method, Route: route, SourceIP: ip}
	if a.signsIn(req.Token) {
		return a.handlePersonHTTP(ctx, req.Token, e)
	}
	d, err := a.Authorize(ctx, req)
	if err != nil {
		a.logFailure(ctx, err)
		return nil, errDenied
	}
	if !a.cfg.HTTPIAMPolicy {
		resp := events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: d.Outcome == Allowed}
		if d.Outcome != Unauthorized {
			resp.Context = a.context(d)
		}
		return resp, nil
	}
	base, _, _, ok := splitARN(e.RouteArn)
	if !ok {
		a.cfg.Logger.ErrorContext(ctx, "authorizer event has a malformed routeArn", "routeArn", e.RouteArn)
		return nil, errDenied
	}
	if d.Outcome == Unauthorized {
		return events.APIGatewayV2CustomAuthorizerIAMPolicyResponse{
			PrincipalID:    "unauthorized",
			PolicyDocument: denyAll(base),
		}, nil
	}
	return events.APIGatewayV2CustomAuthorizerIAMPolicyResponse{
		PrincipalID:    d.Token.Owner,
		PolicyDocument: a.policy(base, e.RouteArn, req, d, true),
		Context:        a.policyContext(d, true),
	}, nil
}

// httpRoute is the route of an HTTP API routeKey: its path ("GET /files/{id}" -> "/files/{id}",
// "ANY /{proxy+}" -> "/{proxy+}"), or "$default". ok is false for anything else.
func httpRoute(routeKey string) (string, bool) {
	if routeKey == DefaultRoute {
		return DefaultRoute, true
	}
	_, path, ok := strings.Cut(routeKey, " ")
	return path, ok && strings.HasPrefix(path, "/")
}

// policy is the IAM policy of a decision, in one of two forms, because API Gateway caches it on
// different keys:
//
//   - perRoute (REST REQUEST and HTTP API events): their identity sources include the route (the
//     README's attach snippets: method and resource, routeKey), so the answer is reused only for
//     the same route, and decides it exactly: a refused decision allows nothing; an allowed one
//     allows the patterns of the routes it matched (the whole API for $default, which serves
//     whatever no route does, or without a route map).
//   - otherwise (REST TOKEN events, cached on the token alone and reused for every route): every
//     method-ARN pattern the token may call, an explicit Deny of those it may not, and, for a
//     refused request, a Deny of its own ARN, so that each route is decided as Authorize would.
func (a *Authorizer) policy(base, arn string, req Request, d Decision, perRoute bool) events.APIGatewayCustomAuthorizerPolicy {
	if !d.Granted || perRoute && d.Outcome != Allowed {
		return denyAll(base) // refused whatever the route (the API binding, the address, a limit), or this route
	}
	if a.cfg.Routes == nil {
		return document(statement("Allow", base+"/*"))
	}
	if perRoute {
		return document(statement("Allow", a.cfg.Routes.matched(base, req.Method, req.Route)...))
	}
	allow, deny := a.cfg.Routes.resources(base, d.Token.HasPermission)
	var doc events.APIGatewayCustomAuthorizerPolicy
	if len(allow) > 0 {
		doc = document(statement("Allow", allow...))
	}
	if len(deny) > 0 {
		doc.Statement = append(doc.Statement, statement("Deny", deny...))
	}
	if d.Outcome != Allowed {
		doc.Statement = append(doc.Statement, statement("Deny", arn))
	}
	if len(doc.Statement) == 0 {
		return denyAll(base)
	}
	doc.Version = "2012-10-17"
	return doc
}

func denyAll(base string) events.APIGatewayCustomAuthorizerPolicy {
	return document(statement("Deny", base+"/*"))
}

func document(s ...events.IAMPolicyStatement) events.APIGatewayCustomAuthorizerPolicy {
	return events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: s}
}

func statement(effect string, resources ...string) events.IAMPolicyStatement {
	return events.IAMPolicyStatement{Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: resources}
}

// policyContext is the context of an IAM policy answer. An answer for one route (perRoute, see
// policy) carries the decision's code, a route refusal included (INSUFFICIENT_PERMISSIONS), as
// simple responses do. A REST TOKEN answer may be reused for any route, so it says only what holds
// for every route: a granted decision carries no code (not the route refusal of the request that
// made it); one that is not granted carries its refusal.
func (a *Authorizer) policyContext(d Decision, perRoute bool) map[string]any {
	if d.Granted && !perRoute {
		d.Code, d.Limit = token.CodeValid, nil
	}
	return a.context(d)
}

// context is what the protected API receives: strings only (REST accepts only string, number
// and boolean values). A denial adds the code and message for gateway responses to show.
func (a *Authorizer) context(d Decision) map[string]any {
	t := d.Token
	expiresAt := ""
	if !t.ExpiresAt.IsZero() {
		expiresAt = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	c := map[string]any{
		ContextTokenID:     t.ID,
		ContextOwner:       t.Owner,
		ContextName:        t.Name,
		ContextPermissions: strings.Join(t.Permissions, " "),
		ContextExpiresAt:   expiresAt,
	}
	if d.Code != token.CodeValid {
		c[ContextCode] = d.Code
		c[ContextError] = token.Verdict{Code: d.Code}.Message()
		c[ContextReset] = ""
		if d.Limit != nil {
			c[ContextLimit] = strconv.FormatInt(d.Limit.Limit, 10)
			if !d.Limit.Reset.IsZero() {
				c[ContextReset] = d.Limit.Reset.UTC().Format(time.RFC3339)
			}
			if l := d.Limit.Lease; l != nil {
				c[ContextLeaseSource], c[ContextLeaseCheckedAt] = l.Source(), ""
				if !l.CheckedAt.IsZero() {
					c[ContextLeaseCheckedAt] = l.CheckedAt.UTC().Format(time.RFC3339Nano)
				}
				c[ContextLeaseStoreLeft] = strconv.FormatInt(l.StoreLeft, 10)
			}
		}
	}
	return c
}

func (a *Authorizer) logFailure(ctx context.Context, err error) {
	a.cfg.Logger.ErrorContext(ctx, "token lookup failed; denying", "error", err)
}

// credentials returns the token presented in the Authorization header (Bearer, scheme in any
// case) or, when configured, in the API-key header; "" when there is none.
func (a *Authorizer) credentials(get func(string) string) string {
	if tok, ok := token.BearerToken(get("Authorization")); ok {
		return tok
	}
	if a.cfg.APIKeyHeader != "" {
		return strings.TrimSpace(get(a.cfg.APIKeyHeader))
	}
	return ""
}

// headerGetter looks headers up case-insensitively, as HTTP requires (HTTP APIs lower-case them;
// REST APIs keep the client's case).
func headerGetter(h map[string]string) func(string) string {
	return func(name string) string {
		if v, ok := h[name]; ok {
			return v
		}
		if v, ok := h[strings.ToLower(name)]; ok {
			return v
		}
		for k, v := range h {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
}

// AuthenticateRequest authenticates a management call of the local server with the same decision
// the Lambda authorizer makes, a person's sign-in included (people.go); it has the type of an
// httpapi.Authenticator. Returns EUNAUTHORIZED for a missing or unusable token or JWT,
// EFORBIDDEN when a route map refuses the route, and the store's error when the lookup failed,
// or the sign-in's when the issuer's keys are unavailable.
func (a *Authorizer) AuthenticateRequest(r *http.Request) (token.Principal, error) {
	if jwt := a.credentials(r.Header.Get); a.signsIn(jwt) {
		return a.authenticatePerson(r, jwt)
	}
	req, d, err := a.authorizeLocal(r)
	if err != nil {
		return token.Principal{}, err
	}
	presented, ip := req.Token, req.SourceIP
	if d.Outcome == Unauthorized && presented == "" {
		return token.Principal{}, token.Errorf(token.EUNAUTHORIZED, "Missing bearer token: send Authorization: Bearer <token>.")
	}
	if err := (token.Verdict{Code: d.Code, Limit: d.Limit}).Err(); err != nil {
		return token.Principal{}, err
	}
	p := d.Token.Principal()
	if ip.IsValid() {
		p.SourceIP = ip.String()
	}
	p.RequestID = requestID(r)
	return p, nil
}

// requestID is the id of a local server's request for the audit trail: the client's
// X-Request-Id, which ties the trail to its own logs (it is only a label), or a new one.
func requestID(r *http.Request) string {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(c rune) bool { return c <= ' ' || c > '~' }) {
		id = token.NewID()
	}
	return id
}

// AuthorizeHTTP decides a request of a local server for the API this instance protects, as API
// Gateway has it decide the same request with the instance attached as a REST REQUEST
// authorizer: the token from the request's headers, the caller's address from RemoteAddr, and
// as the route the pattern the server's ServeMux matched ("POST /upload" -> "/upload"), which is
// what API Gateway's resource is. It also returns the context API Gateway hands on: to the API
// for an allowed request, to its gateway responses for a refusal (nil for Unauthorized, whose
// "Unauthorized" error carries none). Like AuthenticateRequest it waits for its usage write. The
// error is non-nil only when the store failed or timed out; callers must then deny.
func (a *Authorizer) AuthorizeHTTP(r *http.Request) (Decision, map[string]any, error) {
	_, d, err := a.authorizeLocal(r)
	if err != nil || d.Outcome == Unauthorized {
		return d, nil, err
	}
	return d, a.policyContext(d, true), nil
}

// authorizeLocal decides a request of the local server on the route its ServeMux matched
// (r.Pattern, "POST /tokens" -> "/tokens"), as API Gateway's routeKey or resource would be.
func (a *Authorizer) authorizeLocal(r *http.Request) (Request, Decision, error) {
	req := Request{Token: a.credentials(r.Header.Get), Method: r.Method}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.SourceIP = ap.Addr()
	}
	_, req.Route, _ = strings.Cut(r.Pattern, " ")
	d, written, err := a.authorize(r.Context(), req)
	if written != nil {
		// A server has no reason to answer before its own usage write: waiting for it makes the
		// record this request may read show this use.
		<-written
	}
	return req, d, err
}
