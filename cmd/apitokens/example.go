package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/example"
	"github.com/apitokens/apitokens/pkg/token"
)

// examplePrefix is where apitokens serve serves the example API: the path of the deployed example
// API, whose stage is named example, so http://127.0.0.1:8080/example/whoami is
// https://<api>.execute-api.<region>.amazonaws.com/example/whoami. Like a stage, it is not part of
// the route the authorizer decides on ("GET /whoami").
const examplePrefix = "/example"

// maxExampleCacheTTL is the longest memory cache a consumer authorizer accepts
// (AUTH_CACHE_TTL_SECONDS).
const maxExampleCacheTTL = time.Hour

// newExampleAuthorizer returns the example API's own authorizer: a consumer instance configured
// as a deployed one with the example's settings (API_NAME example, its route map, every other
// variable at its default, whatever this process's environment says), on the server's store and
// token prefix, with a memory cache of cacheTTL, which bounds how long a revoked token still works.
func newExampleAuthorizer(store token.Store, prefix string, cacheTTL time.Duration, limits token.LimiterConfig, logger *slog.Logger) (*authorizer.Authorizer, error) {
	env := map[string]string{
		authorizer.EnvRole:    authorizer.RoleConsumer,
		authorizer.EnvAPIName: example.APIName,
		authorizer.EnvRoutes:  example.RoutePermissions,
	}
	cfg, err := authorizer.ConfigFromEnv(func(name string) string { return env[name] })
	if err != nil {
		return nil, fmt.Errorf("example authorizer: %w", err)
	}
	cfg.Prefix, cfg.CacheTTL, cfg.Limits, cfg.Logger = prefix, cacheTTL, limits, logger
	return authorizer.New(store, cfg), nil
}

// exampleAPI serves the example API (pkg/example) under examplePrefix as API Gateway serves it in
// front of its functions on AWS: each request is decided by the example's authorizer
// (AuthorizeHTTP, on the route the mux matched, as API Gateway decides on the resource it
// matched), a refusal is answered as the example REST API's gateway responses answer it
// (template.yaml), and an allowed request reaches the route with the authorizer's context.
func exampleAPI(authz *authorizer.Authorizer, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", exampleRoute(authz, logger, func(c map[string]any, _ *http.Request) example.Response {
		return example.Whoami(c)
	}))
	mux.Handle("POST /upload", exampleRoute(authz, logger, func(c map[string]any, r *http.Request) example.Response {
		return example.Upload(c, r.Body)
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("No route for %s %s%s: the example API has GET %[2]s/whoami and POST %[2]s/upload.", r.Method, examplePrefix, r.URL.Path)
		writeExample(w, example.Response{Status: http.StatusNotFound, Body: marshal(struct {
			Message string `json:"message"`
		}{msg})})
	})
	return http.StripPrefix(examplePrefix, mux)
}

// gatewayRefusal is the body of the example REST API's ACCESS_DENIED gateway response: the
// authorizer's deny context.
type gatewayRefusal struct {
	Valid bool   `json:"valid"`
	Code  string `json:"code"`
	Error string `json:"error"`
	Reset string `json:"reset"`
}

// exampleRoute answers one route of the example API:
//
//   - 401 {"valid":false,"error":"Unauthorized"} with WWW-Authenticate when the authorizer
//     answers Unauthorized (missing, malformed, unknown, expired, revoked or disabled token), as
//     the UNAUTHORIZED gateway response does: API Gateway gets no context with it, so the body
//     says no more (the server's log line has the code);
//   - 403 {"valid":false,"code","error","reset"} from the deny context for every other refusal
//     (FORBIDDEN_API, INSUFFICIENT_PERMISSIONS, FORBIDDEN_IP, RATE_LIMITED, USAGE_EXCEEDED), as
//     the ACCESS_DENIED gateway response does: an authorizer can only deny, so a limit is a 403
//     with its code there, never a 429;
//   - 500 when the token lookup failed (the authorizer fails closed);
//   - otherwise what serve answers, given the authorizer's context.
func exampleRoute(authz *authorizer.Authorizer, logger *slog.Logger, serve func(map[string]any, *http.Request) example.Response) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, c, err := authz.AuthorizeHTTP(r)
		var resp example.Response
		switch {
		case err != nil:
			logger.ErrorContext(r.Context(), "example API: token lookup failed; denying", "error", err)
			resp = example.Response{Status: http.StatusInternalServerError, Body: []byte(`{"message":"Internal server error"}`)}
		case d.Outcome == authorizer.Unauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="apitokens"`)
			resp = example.Response{Status: http.StatusUnauthorized, Body: []byte(`{"valid":false,"error":"Unauthorized"}`)}
		case d.Outcome != authorizer.Allowed:
			refusal := gatewayRefusal{}
			refusal.Code, _ = c[authorizer.ContextCode].(string)
			refusal.Error, _ = c[authorizer.ContextError].(string)
			refusal.Reset, _ = c[authorizer.ContextReset].(string)
			resp = example.Response{Status: http.StatusForbidden, Body: marshal(refusal)}
		default:
			resp = serve(c, r)
		}
		logger.InfoContext(r.Context(), "request", "api", example.APIName, "method", r.Method, "route", r.Pattern,
			"status", resp.Status, "code", d.Code)
		writeExample(w, resp)
	})
}

// marshal encodes a body of strings, which cannot fail.
func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func writeExample(w http.ResponseWriter, resp example.Response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(resp.Status)
	_, _ = w.Write(append(resp.Body, '\n')) // the newline, for curl in a terminal
}
