// Package httpapi serves the management API as plain net/http handlers. The local server mounts
// every route; each Lambda function mounts one (wrapped by aws-lambda-go-api-proxy), so both run
// the same code. Routes is the single source of truth for both, and for template.yaml.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/apitokens/apitokens/pkg/token"
)

// Authenticator returns the caller of a management request, or an error: EUNAUTHORIZED for
// missing or unusable credentials, anything else for a failure (answered 500, never 2xx).
type Authenticator func(r *http.Request) (token.Principal, error)

// API holds what the handlers need.
type API struct {
	Service      *token.Service
	Authenticate Authenticator
	Logger       *slog.Logger // nil: slog.Default()
	// Reports checks the signature of leak reports (POST /leaks); nil refuses every report 401.
	Reports ReportVerifier
	// Origin returns the caller's address and request id on the routes without a token (POST
	// /leaks, POST /revoke), for rate limits and the audit trail; nil: RemoteAddr and a sane
	// X-Request-Id (else a random id), as the local server has them.
	Origin func(r *http.Request) (netip.Addr, string)
}

// Route is one entry of the route table.
type Route struct {
	Pattern  string // Go 1.22 ServeMux pattern, which is also the HTTP API route key
	Function string // name of the Lambda function that serves it (functions/<Function>)
	Auth     bool   // the caller must present a valid token
	handler  func(a *API, w http.ResponseWriter, r *http.Request)
}

// Routes is the route table: the local server, the Lambda functions and template.yaml all
// follow it.
var Routes = []Route{
	{Pattern: "POST /tokens", Function: "create", Auth: true, handler: (*API).create},
	{Pattern: "GET /tokens", Function: "list", Auth: true, handler: (*API).list},
	{Pattern: "GET /tokens/self", Function: "self", Auth: true, handler: (*API).self},
	{Pattern: "GET /tokens/{id}", Function: "get", Auth: true, handler: (*API).get},
	{Pattern: "PATCH /tokens/{id}", Function: "update", Auth: true, handler: (*API).update},
	{Pattern: "DELETE /tokens/{id}", Function: "revoke", Auth: true, handler: (*API).revoke},
	{Pattern: "POST /tokens/{id}/rotate", Function: "rotate", Auth: true, handler: (*API).rotate},
	{Pattern: "GET /tokens/{id}/usage", Function: "usage", Auth: true, handler: (*API).usage},
	{Pattern: "POST /verify", Function: "verify", Auth: false, handler: (*API).verify},
	{Pattern: "GET /audit", Function: "audit", Auth: true, handler: (*API).audit},
	{Pattern: "GET /openapi.json", Function: "openapi", Auth: false, handler: (*API).openAPI},
	{Pattern: "GET /me", Function: "me", Auth: true, handler: (*API).me},
	{Pattern: "POST /leaks", Function: "leaks", Auth: false, handler: (*API).leaks},
	{Pattern: "POST /revoke", Function: "revoke-by-token", Auth: false, handler: (*API).revokeByValue},
}

// Handler returns a handler serving every route of the table.
func (a *API) Handler() http.Handler {
	return a.mux(Routes)
}

// RouteHandler returns a handler serving only the route with the given pattern, as one Lambda
// function does. It reports false for a pattern not in the table.
func (a *API) RouteHandler(pattern string) (http.Handler, bool) {
	i := slices.IndexFunc(Routes, func(r Route) bool { return r.Pattern == pattern })
	if i < 0 {
		return nil, false
	}
	return a.mux(Routes[i : i+1]), true
}

func (a *API) mux(routes []Route) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rt.handler(a, w, r) })
		if rt.Auth {
			h = a.authenticated(h)
		}
		mux.Handle(rt.Pattern, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { a.fallback(w, r, routes) })
	return a.logged(mux)
}

// fallback answers requests no route serves: 405 with Allow when one of routes serves the path
// with another method, 404 otherwise, both as JSON.
func (a *API) fallback(w http.ResponseWriter, r *http.Request, routes []Route) {
	var allow []string
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		if pathMatches(path, r.URL.Path) && !slices.Contains(allow, method) {
			allow = append(allow, method)
		}
	}
	if len(allow) == 0 {
		a.fail(w, r, token.Errorf(token.ENOTFOUND, "No route for %s %s.", r.Method, r.URL.Path))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	a.fail(w, r, token.Errorf(codeMethod, "Method %s is not allowed here; use %s.", r.Method, strings.Join(allow, ", ")))
}

// pathMatches reports whether a ServeMux path pattern with {wildcards} matches path.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i, p := range ps {
		if !(p == xs[i] || strings.HasPrefix(p, "{") && xs[i] != "") {
			return false
		}
	}
	return true
}

type principalKey struct{}

// WithPrincipal returns a context carrying the authenticated caller.
func WithPrincipal(ctx context.Context, p token.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

func principal(r *http.Request) token.Principal {
	p, _ := r.Context().Value(principalKey{}).(token.Principal)
	return p
}

func (a *API) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		next(w, r.WithContext(WithPrincipal(r.Context(), p)))
	}
}

func (a *API) now() time.Time { return a.Service.Now() }

func (a *API) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// logged writes one access-log line a request: method, route pattern, status and duration. It
// logs the pattern, never the path, headers or body: a client may paste a whole token where an
// id belongs.
func (a *API) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r) // ServeMux sets r.Pattern
		a.logger().InfoContext(r.Context(), "request", "method", r.Method, "route", r.Pattern,
			"status", rec.status, "duration", time.Since(start))
	})
}
