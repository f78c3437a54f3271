package example_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/example"
)

// authzContext is an authorizer context as pkg/authorizer writes it, keyed by its own constants, so
// that the example reads what the authorizer sends.
func authzContext(perms string) map[string]any {
	return map[string]any{
		authorizer.ContextTokenID: "Q7mZ2xK9pL4wN8rT", authorizer.ContextOwner: "acme", authorizer.ContextName: "ci",
		authorizer.ContextPermissions: perms, authorizer.ContextExpiresAt: "",
	}
}

func TestWhoamiAndUpload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer example.Response
		status int
		want   string // the body, exactly
	}{
		{"whoami", example.Whoami(authzContext("upload list")), http.StatusOK,
			`{"tokenId":"Q7mZ2xK9pL4wN8rT","owner":"acme","permissions":["upload","list"]}`},
		{"whoami, no permissions", example.Whoami(authzContext("")), http.StatusOK,
			`{"tokenId":"Q7mZ2xK9pL4wN8rT","owner":"acme","permissions":[]}`},
		{"whoami, no context", example.Whoami(nil), http.StatusUnauthorized, `{"valid":false,"error":"No authorizer context"}`},
		{"whoami, context without owner", example.Whoami(map[string]any{authorizer.ContextTokenID: "Q7mZ2xK9pL4wN8rT"}), http.StatusUnauthorized,
			`{"valid":false,"error":"No authorizer context"}`},
		{"upload", example.Upload(authzContext("upload"), strings.NewReader("hello world")), http.StatusCreated,
			`{"tokenId":"Q7mZ2xK9pL4wN8rT","owner":"acme","permissions":["upload"],"bytes":11}`},
		{"upload, empty", example.Upload(authzContext("upload"), strings.NewReader("")), http.StatusCreated,
			`{"tokenId":"Q7mZ2xK9pL4wN8rT","owner":"acme","permissions":["upload"],"bytes":0}`},
		{"upload, largest", example.Upload(authzContext("upload"), strings.NewReader(strings.Repeat("x", example.MaxUploadBytes))), http.StatusCreated,
			`{"tokenId":"Q7mZ2xK9pL4wN8rT","owner":"acme","permissions":["upload"],"bytes":1048576}`},
		{"upload, too large", example.Upload(authzContext("upload"), strings.NewReader(strings.Repeat("x", example.MaxUploadBytes+1))), http.StatusRequestEntityTooLarge,
			`{"valid":false,"error":"Upload is larger than 1 MiB"}`},
		{"upload, no context", example.Upload(nil, strings.NewReader("x")), http.StatusUnauthorized, `{"valid":false,"error":"No authorizer context"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.answer.Status != tc.status || string(tc.answer.Body) != tc.want {
				t.Fatalf("%d %s; want %d %s", tc.answer.Status, tc.answer.Body, tc.status, tc.want)
			}
		})
	}
}

// TestRoutePermissions: the example's route map is one the authorizer accepts.
func TestRoutePermissions(t *testing.T) {
	var m map[string][]string
	if err := json.Unmarshal([]byte(example.RoutePermissions), &m); err != nil || len(m["POST /upload"]) != 1 {
		t.Fatalf("RoutePermissions %s: %v", example.RoutePermissions, err)
	}
	cfg, err := authorizer.ConfigFromEnv(func(name string) string {
		return map[string]string{
			authorizer.EnvRole: authorizer.RoleConsumer, authorizer.EnvAPIName: example.APIName, authorizer.EnvRoutes: example.RoutePermissions,
		}[name]
	})
	if err != nil || cfg.Routes == nil || cfg.APIName != example.APIName {
		t.Fatalf("the example's consumer configuration: %+v, %v", cfg, err)
	}
}
