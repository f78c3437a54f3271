package authorizer

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/apitokens/apitokens/pkg/token"
)

// People sign in to the management API with an ID token of the deployment's OpenID Connect
// issuer, checked here, in the management authorizer, rather than by API Gateway's native JWT
// authorizer:
//
//   - One route table. An HTTP API route has one authorizer, so a JWT authorizer would need a
//     second set of routes for people (say /me/tokens...) wired to the same functions: twice the
//     routes in template.yaml and openapi.yaml, and a client would have to know which to call.
//   - One principal type. A JWT authorizer hands the functions raw claims; each function would
//     map the owner and admin claims itself. Here a person reaches the functions in the same
//     context fields as a token (tokenId "", owner, permissions, and subject), read by the same
//     code (pkg/app.AuthorizerContext).
//   - One implementation. apitokens serve has no API Gateway: it runs this code, so the rules
//     tested locally are the rules deployed, including those a JWT authorizer lacks (the admin
//     claim, the owner-name check, refusing access tokens and HS256).
//
// The cost: a Lambda invocation per call, which every token call pays already, and the issuer's
// JWK set fetched once per instance per KeysTTL (pkg/oidc), never per call.

// PersonVerifier signs a person in from a JWT (pkg/oidc.Verifier): it returns the person and
// when the JWT expires; EUNAUTHORIZED for a JWT it refuses; any other error when it cannot tell
// (the issuer's keys are unavailable), which is answered as a failure, never as an allow.
type PersonVerifier interface {
	Verify(ctx context.Context, jwt string) (token.Principal, time.Time, error)
}

// ContextSubject is the context key of a person's subject (with ContextTokenID ""); absent for
// a token.
const ContextSubject = "subject"

// signsIn reports whether a presented credential goes to the sign-in: people may sign in here
// (Config.People, and no route map: people manage tokens, they call no consumer API) and it has
// the shape of a JWT, which an apitokens token never has.
func (a *Authorizer) signsIn(credential string) bool {
	return a.cfg.People != nil && a.cfg.Routes == nil && token.LooksLikeJWT(credential)
}

// handlePersonHTTP answers an HTTP API event whose credential is a JWT: a person signed in is
// authorized for the whole API, whose functions check manage and admin themselves, as for a token.
func (a *Authorizer) handlePersonHTTP(ctx context.Context, jwt string, e events.APIGatewayV2CustomAuthorizerV2Request) (any, error) {
	p, expires, err := a.cfg.People.Verify(ctx, jwt)
	switch {
	case token.ErrorCode(err) == token.EUNAUTHORIZED:
		a.cfg.Logger.InfoContext(ctx, "sign-in refused", "reason", token.ErrorMessage(err))
	case err != nil:
		a.cfg.Logger.ErrorContext(ctx, "sign-in could not be checked; denying", "error", err)
		return nil, errDenied
	}
	if !a.cfg.HTTPIAMPolicy {
		resp := events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: err == nil}
		if err == nil {
			resp.Context = personContext(p, expires)
		}
		return resp, nil
	}
	base, _, _, ok := splitARN(e.RouteArn)
	if !ok {
		a.cfg.Logger.ErrorContext(ctx, "authorizer event has a malformed routeArn", "routeArn", e.RouteArn)
		return nil, errDenied
	}
	if err != nil {
		return events.APIGatewayV2CustomAuthorizerIAMPolicyResponse{PrincipalID: "unauthorized", PolicyDocument: denyAll(base)}, nil
	}
	return events.APIGatewayV2CustomAuthorizerIAMPolicyResponse{
		PrincipalID:    p.Owner,
		PolicyDocument: document(statement("Allow", base+"/*")),
		Context:        personContext(p, expires),
	}, nil
}

// personContext is what the functions receive for a person: the fields of a token's context,
// with no token id and name, and the subject.
func personContext(p token.Principal, expires time.Time) map[string]any {
	return map[string]any{
		ContextTokenID:     "",
		ContextOwner:       p.Owner,
		ContextName:        "",
		ContextPermissions: strings.Join(p.Permissions, " "),
		ContextExpiresAt:   expires.UTC().Format(time.RFC3339),
		ContextSubject:     p.Subject,
	}
}

// authenticatePerson is AuthenticateRequest for a JWT: the person, with the caller's address and
// the request id for the audit trail.
func (a *Authorizer) authenticatePerson(r *http.Request, jwt string) (token.Principal, error) {
	p, _, err := a.cfg.People.Verify(r.Context(), jwt)
	if err != nil {
		return token.Principal{}, err
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		p.SourceIP = ap.Addr().String()
	}
	p.RequestID = requestID(r)
	return p, nil
}
