package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The CORS settings of the management API, the same for the local server (CORS) and for API
// Gateway (template.yaml's CorsConfiguration of the HttpApi, which a test holds to these).
var (
	// CORSAllowHeaders are the request headers a page may send: the bearer token and a JSON body.
	CORSAllowHeaders = []string{"Authorization", "Content-Type"}
	// CORSExposeHeaders are the response headers a page may read besides the safelisted ones:
	// those of a 401 and of a 429.
	CORSExposeHeaders = []string{"Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "WWW-Authenticate"}
)

// CORSMaxAge is how long a browser may reuse a preflight answer, in seconds.
const CORSMaxAge = 600

// CORSAllowMethods returns the methods of the route table, sorted: what a page may call.
func CORSAllowMethods() []string {
	var methods []string
	for _, rt := range Routes {
		m, _, _ := strings.Cut(rt.Pattern, " ")
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	slices.Sort(methods)
	return methods
}

// CORS lets pages of the given origins (exact, e.g. https://dashboard.example.com) call next from
// a browser, as API Gateway does for an HTTP API with a CorsConfiguration: a preflight (OPTIONS
// with Origin and Access-Control-Request-Method) is answered 204 by CORS itself, whatever the
// path, with Access-Control-Allow-Origin, -Methods, -Headers and -Max-Age for an allowed origin
// and without any of them for another; other requests from an allowed origin get
// Access-Control-Allow-Origin and -Expose-Headers. No credentials (cookies) are allowed: the API
// takes bearer tokens only. Every answer varies on Origin. With no origins, CORS is next.
func CORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	methods := strings.Join(CORSAllowMethods(), ", ")
	headers := strings.Join(CORSAllowHeaders, ", ")
	expose := strings.Join(CORSExposeHeaders, ", ")
	maxAge := strconv.Itoa(CORSMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(origins, origin)
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", methods)
				h.Set("Access-Control-Allow-Headers", headers)
				h.Set("Access-Control-Max-Age", maxAge)
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", expose)
		}
		next.ServeHTTP(w, r)
	})
}
