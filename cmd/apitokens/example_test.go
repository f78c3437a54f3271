package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitokens/apitokens/pkg/httpapi"
)

// exampleServer is apitokens serve on the memory store with the admin token it printed.
type exampleServer struct {
	base, admin string
}

func startExampleServer(t *testing.T, args ...string) exampleServer {
	t.Helper()
	base, stdout, stop := startServe(t, args...)
	t.Cleanup(stop)
	re := regexp.MustCompile(`(?m)^Admin token: (\S+)$`)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return exampleServer{base: base, admin: m[1]}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no admin token:\n%s", stdout.String())
		}
	}
}

// create makes a token through the management API and returns its id and plaintext.
func (s exampleServer) create(t *testing.T, body string) (id, plaintext string) {
	t.Helper()
	status, resp := call(t, "POST", s.base+"/tokens", s.admin, body)
	var created struct{ ID, Token string }
	if err := json.Unmarshal([]byte(resp), &created); status != http.StatusCreated || err != nil {
		t.Fatalf("create %s: %d %s", body, status, resp)
	}
	return created.ID, created.Token
}

// example calls the example API with bearer ("" sends no Authorization header).
func (s exampleServer) example(t *testing.T, method, path, bearer, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSuffix(string(b), "\n")
}

// TestExampleAPI: the example API apitokens serve serves under /example/ is decided by a consumer
// authorizer named example with the example's route map, and refused as the example REST API's
// gateway responses refuse.
func TestExampleAPI(t *testing.T) {
	s := startExampleServer(t)
	uploaderID, uploader := s.create(t, `{"name":"uploader","permissions":["upload"]}`)
	readerID, reader := s.create(t, `{"name":"reader","permissions":["read"]}`)
	_, billing := s.create(t, `{"name":"billing","permissions":["upload"],"apis":["billing"]}`)
	boundID, bound := s.create(t, `{"name":"bound","permissions":["read"],"apis":["billing","example"]}`)
	limitedID, limited := s.create(t, `{"name":"limited","permissions":["read"],"rateLimit":{"limit":1,"windowSeconds":3600}}`)
	caller := func(id, perms string) string {
		return fmt.Sprintf(`{"tokenId":%q,"owner":"admin","permissions":[%s]}`, id, perms)
	}
	refused := func(code, message string) string {
		return fmt.Sprintf(`{"valid":false,"code":%q,"error":%q,"reset":""}`, code, message)
	}
	unauthorized := `{"valid":false,"error":"Unauthorized"}`
	for _, tc := range []struct {
		name, method, path, bearer, body string
		status                           int
		want                             string // the body, exactly; "" to check the status only
	}{
		{"whoami", "GET", "/example/whoami", uploader, "", 200, caller(uploaderID, `"upload"`)},
		{"upload", "POST", "/example/upload", uploader, "hello", 201, strings.TrimSuffix(caller(uploaderID, `"upload"`), "}") + `,"bytes":5}`},
		{"whoami without upload", "GET", "/example/whoami", reader, "", 200, caller(readerID, `"read"`)},
		{"upload without upload", "POST", "/example/upload", reader, "hello", 403, refused("INSUFFICIENT_PERMISSIONS", "Token lacks a required permission")},
		{"bound to another API", "GET", "/example/whoami", billing, "", 403, refused("FORBIDDEN_API", "Token may not be used on this API")},
		{"upload bound to another API", "POST", "/example/upload", billing, "hello", 403, refused("FORBIDDEN_API", "Token may not be used on this API")},
		{"bound to this API among others", "GET", "/example/whoami", bound, "", 200, caller(boundID, `"read"`)},
		{"no token", "GET", "/example/whoami", "", "", 401, unauthorized},
		{"malformed token", "GET", "/example/whoami", "tok_nonsense", "", 401, unauthorized},
		{"within its rate limit", "GET", "/example/whoami", limited, "", 200, caller(limitedID, `"read"`)},
		{"over its rate limit", "GET", "/example/whoami", limited, "", 403, ""},
		{"unknown route", "GET", "/example/tokens", s.admin, "", 404, ""},
		{"method not routed", "DELETE", "/example/whoami", uploader, "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := s.example(t, tc.method, tc.path, tc.bearer, tc.body)
			if resp.StatusCode != tc.status || tc.want != "" && body != tc.want {
				t.Fatalf("%s %s: %d %s; want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.want)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (tc.status == 401) != (got != "") {
				t.Errorf("WWW-Authenticate %q with status %d", got, tc.status)
			}
		})
	}
	t.Run("rate limit refusal", func(t *testing.T) {
		resp, body := s.example(t, "GET", "/example/whoami", limited, "")
		var r struct{ Code, Reset string }
		if err := json.Unmarshal([]byte(body), &r); resp.StatusCode != 403 || err != nil || r.Code != "RATE_LIMITED" {
			t.Fatalf("%d %s; want 403 RATE_LIMITED, as the example REST API's ACCESS_DENIED response", resp.StatusCode, body)
		}
		if reset, err := time.Parse(time.RFC3339, r.Reset); err != nil || !reset.After(time.Now()) {
			t.Errorf("reset %q: want the window's end", r.Reset)
		}
	})
}

// TestExampleAPIRevocationBound: a revoked token is refused by the management API at once, and by
// the example API once its authorizer's memory cache (--example-cache-ttl) has passed, at once
// with none.
func TestExampleAPIRevocationBound(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Second} {
		t.Run("cache "+ttl.String(), func(t *testing.T) {
			s := startExampleServer(t, "--example-cache-ttl", ttl.String())
			id, tok := s.create(t, `{"name":"soon revoked","permissions":["upload","manage"]}`)
			if resp, body := s.example(t, "POST", "/example/upload", tok, "x"); resp.StatusCode != 201 {
				t.Fatalf("upload before the revoke: %d %s", resp.StatusCode, body)
			}
			if status, body := call(t, "DELETE", s.base+"/tokens/"+id, s.admin, ""); status != 200 {
				t.Fatalf("revoke: %d %s", status, body)
			}
			revoked := time.Now()
			if status, body := call(t, "GET", s.base+"/tokens/self", tok, ""); status != 401 {
				t.Fatalf("management API after the revoke: %d %s; want 401 at once", status, body)
			}
			time.Sleep(time.Until(revoked.Add(ttl)))
			for _, path := range []string{"/example/whoami", "/example/upload"} {
				method := map[string]string{"/example/whoami": "GET", "/example/upload": "POST"}[path]
				if resp, body := s.example(t, method, path, tok, "x"); resp.StatusCode != 401 || body != `{"valid":false,"error":"Unauthorized"}` {
					t.Errorf("%s %s %s after the revoke: %d %s; want 401", method, path, ttl, resp.StatusCode, body)
				}
			}
		})
	}
}

// TestExampleAPIOutsideTheRouteTable: the example API is not apitokens' API: none of its routes
// is in the route table or the OpenAPI document, the management API does not answer them, and it
// does not answer the management routes.
func TestExampleAPIOutsideTheRouteTable(t *testing.T) {
	for _, rt := range httpapi.Routes {
		_, path, _ := strings.Cut(rt.Pattern, " ")
		if strings.HasPrefix(path, examplePrefix) || path == "/whoami" || path == "/upload" {
			t.Errorf("route table entry %q is the example API's", rt.Pattern)
		}
	}
	s := startExampleServer(t)
	status, doc := call(t, "GET", s.base+"/openapi.json", "", "")
	var spec struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(doc), &spec); status != 200 || err != nil || len(spec.Paths) == 0 {
		t.Fatalf("GET /openapi.json: %d %v", status, err)
	}
	for path := range spec.Paths {
		if strings.HasPrefix(path, examplePrefix) || path == "/whoami" || path == "/upload" {
			t.Errorf("the OpenAPI document has the example's path %s", path)
		}
	}
	for _, path := range []string{"/whoami", "/upload"} {
		if status, body := call(t, "GET", s.base+path, s.admin, ""); status != 404 {
			t.Errorf("GET %s (the management API): %d %s; want 404", path, status, body)
		}
	}
	if resp, body := s.example(t, "GET", "/example/tokens", s.admin, ""); resp.StatusCode != 404 {
		t.Errorf("GET /example/tokens: %d %s; want 404", resp.StatusCode, body)
	}
}
