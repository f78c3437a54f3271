package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// TestCORS: preflights from an allowed origin are answered 204 with the Access-Control-* headers
// (methods from the route table), from another origin without them; other answers to an allowed
// origin carry Access-Control-Allow-Origin; every answer varies on Origin; without origins
// nothing changes (OPTIONS is 405, as before).
func TestCORS(t *testing.T) {
	svc, err := token.NewService(memstore.New(nil), token.Config{})
	if err != nil {
		t.Fatal(err)
	}
	api := &httpapi.API{Service: svc, Authenticate: func(*http.Request) (token.Principal, error) {
		return token.Principal{}, token.Errorf(token.EUNAUTHORIZED, "no")
	}}
	const allowed = "https://dashboard.example.com"
	h := httpapi.CORS([]string{allowed, "http://127.0.0.1:5173"}, api.Handler())
	do := func(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "DELETE", "Access-Control-Request-Headers": "authorization"}
	}

	w := do(h, http.MethodOptions, "/tokens/4f9Xa1bC2dE3fG4h", preflight(allowed))
	want := map[string]string{
		"Access-Control-Allow-Origin":  allowed,
		"Access-Control-Allow-Methods": "DELETE, GET, PATCH, POST",
		"Access-Control-Allow-Headers": "Authorization, Content-Type",
		"Access-Control-Max-Age":       "600",
		"Vary":                         "Origin",
	}
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("preflight from an allowed origin: %d %q, want 204 and no body", w.Code, w.Body)
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("preflight from an allowed origin: %s = %q, want %q", k, got, v)
		}
	}
	if w.Header().Get("Access-Control-Allow-Credentials") != "" {
		t.Error("preflight allows credentials; the API takes bearer tokens only")
	}

	for _, origin := range []string{"https://evil.example", "https://dashboard.example.com.evil.example", "https://DASHBOARD.example.com", "null"} {
		w = do(h, http.MethodOptions, "/tokens", preflight(origin))
		for k := range want {
			if k != "Vary" && w.Header().Get(k) != "" {
				t.Errorf("preflight from %s: %s = %q, want none", origin, k, w.Header().Get(k))
			}
		}
		if w.Code != http.StatusNoContent || w.Header().Get("Vary") != "Origin" {
			t.Errorf("preflight from %s: %d, Vary %q", origin, w.Code, w.Header().Get("Vary"))
		}
	}

	w = do(h, http.MethodGet, "/tokens", map[string]string{"Origin": allowed, "Authorization": "Bearer x"})
	if w.Code != http.StatusUnauthorized || w.Header().Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(w.Header().Get("Access-Control-Expose-Headers"), "Retry-After") || w.Header().Get("Vary") != "Origin" {
		t.Errorf("a request from an allowed origin: %d %v", w.Code, w.Header())
	}
	w = do(h, http.MethodGet, "/tokens", map[string]string{"Origin": "https://evil.example"})
	if w.Header().Get("Access-Control-Allow-Origin") != "" || w.Header().Get("Vary") != "Origin" {
		t.Errorf("a request from another origin: %v", w.Header())
	}
	// An OPTIONS that is not a preflight is an ordinary request.
	w = do(h, http.MethodOptions, "/tokens", map[string]string{"Origin": allowed})
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("OPTIONS without Access-Control-Request-Method: %d, want 405", w.Code)
	}

	w = do(httpapi.CORS(nil, api.Handler()), http.MethodOptions, "/tokens", preflight(allowed))
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no origins configured: a preflight got %d %v, want 405 without CORS headers", w.Code, w.Header())
	}
	if got := httpapi.CORSAllowMethods(); !slices.Equal(got, []string{"DELETE", "GET", "PATCH", "POST"}) {
		t.Errorf("CORSAllowMethods = %v", got)
	}
}
