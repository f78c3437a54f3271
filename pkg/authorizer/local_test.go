package authorizer_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestAuthorizeHTTPDecidesAsARequestAuthorizer: a local server's request, decided by
// AuthorizeHTTP on the pattern its ServeMux matched, gets the outcome and the context that the
// same request gets from a REST REQUEST authorizer on the resource API Gateway matched.
func TestAuthorizeHTTPDecidesAsARequestAuthorizer(t *testing.T) {
	f := newFixture(t)
	type answer struct {
		outcome outcome
		context map[string]any
	}
	local := f.authorizer(t, withRoutes(t))
	var got answer
	mux := http.NewServeMux()
	for _, pattern := range []string{"POST /upload", "PUT /upload", "GET /admin/{section}", "DELETE /files/{path...}", "GET /x"} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			d, c, err := local.AuthorizeHTTP(r)
			got = answer{outcome: failed, context: c}
			switch {
			case err != nil:
			case d.Outcome == authorizer.Allowed:
				got.outcome = allow
			case d.Outcome == authorizer.Unauthorized:
				got.outcome = unauthorized
			default:
				got.outcome = forbidden
			}
		})
	}
	for _, tc := range []struct {
		name, tok, method, path string
		want                    outcome
		code                    any // the context's code
	}{
		{"allowed", f.valid, "POST", "/upload", allow, nil},
		{"allowed by a wildcard route", f.readOnly, "GET", "/x", allow, nil},
		{"path parameter", f.valid, "DELETE", "/files/a/b.png", allow, nil},
		{"route lacks permission", f.readOnly, "POST", "/upload", forbidden, token.CodeInsufficientPermissions},
		{"parameter route lacks permission", f.valid, "GET", "/admin/users", forbidden, token.CodeInsufficientPermissions},
		{"route unmapped", f.valid, "PUT", "/upload", forbidden, token.CodeInsufficientPermissions},
		{"no token", "", "POST", "/upload", unauthorized, nil},
		{"revoked", f.revoked, "POST", "/upload", unauthorized, nil},
		{"expired", f.expired, "GET", "/x", unauthorized, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{}
			if tc.tok != "" {
				headers["Authorization"] = "Bearer " + tc.tok
			}
			r := httptest.NewRequest(tc.method, tc.path, nil)
			for k, v := range headers {
				r.Header.Set(k, v)
			}
			got = answer{}
			mux.ServeHTTP(httptest.NewRecorder(), r)

			resp, err := f.authorizer(t, withRoutes(t)).HandleRequest(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
				Type: "REQUEST", MethodArn: arn(tc.method, tc.path), HTTPMethod: tc.method, Resource: resourceOf(tc.path), Path: tc.path, Headers: headers,
			})
			want := answer{outcome: restOutcome(t, resp, err, arn(tc.method, tc.path)), context: resp.Context}
			if want.outcome != tc.want {
				t.Fatalf("the REST REQUEST authorizer answers %s; the case expects %s", want.outcome, tc.want)
			}
			if got.outcome != want.outcome || !maps.Equal(got.context, want.context) {
				t.Fatalf("AuthorizeHTTP: %s %v; the REST REQUEST authorizer: %s %v", got.outcome, got.context, want.outcome, want.context)
			}
			if got.context[authorizer.ContextCode] != tc.code {
				t.Errorf("context code %v; want %v", got.context[authorizer.ContextCode], tc.code)
			}
			if tc.want == allow && (got.context[authorizer.ContextOwner] != "alice" || got.context[authorizer.ContextTokenID] == "") {
				t.Errorf("context %v; want the caller", got.context)
			}
		})
	}
}

// TestRefusedRouteContext: an answer that serves one route only (REST REQUEST, HTTP API) names
// the route refusal in its context, for the API's gateway responses; a REST TOKEN answer, reused
// for every route, names none (the same token may call other routes).
func TestRefusedRouteContext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	headers := map[string]string{"authorization": "Bearer " + f.readOnly}
	a := f.authorizer(t, withRoutes(t))

	req, err := a.HandleRequest(ctx, events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: arn("POST", "/upload"), HTTPMethod: "POST", Resource: "/upload", Headers: headers,
	})
	if err != nil || req.Context[authorizer.ContextCode] != token.CodeInsufficientPermissions {
		t.Errorf("REQUEST: context %v (%v); want code %s", req.Context, err, token.CodeInsufficientPermissions)
	}
	iam := f.authorizer(t, func(c *authorizer.Config) { withRoutes(t)(c); c.HTTPIAMPolicy = true })
	resp, err := iam.HandleHTTP(ctx, httpEvent("POST", "/upload", headers))
	if c := resp.(events.APIGatewayV2CustomAuthorizerIAMPolicyResponse).Context; err != nil || c[authorizer.ContextCode] != token.CodeInsufficientPermissions {
		t.Errorf("HTTP API, IAM: context %v (%v); want code %s", c, err, token.CodeInsufficientPermissions)
	}
	tok, err := a.HandleToken(ctx, events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: "Bearer " + f.readOnly, MethodArn: arn("POST", "/upload")})
	if _, has := tok.Context[authorizer.ContextCode]; err != nil || has {
		t.Errorf("TOKEN: context %v (%v); want no code", tok.Context, err)
	}
}
