package samtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/memstore"
)

// TestSignInEnvironment: the sign-in parameters become the management authorizer's OIDC_*
// variables, which its init accepts: none by default; an issuer and its client as given; with
// CreateUserPool, the new pool as issuer, its app client as audience and its apitokens-admin
// group through cognito:groups.
func TestSignInEnvironment(t *testing.T) {
	tpl := mustTemplate(t)
	refs := map[string]string{
		"Table": "apitokens-Table", "UserPool": "eu-west-1_AbCdEf123", "UserPoolClient": "4f9abcdef0123456789ghijklm",
		"UserPool.ProviderURL": "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
	}
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   app.SignIn
	}{
		{"off by default", nil, app.SignIn{}},
		{"an issuer and its client", map[string]string{"OidcIssuer": "https://example.eu.auth0.com/", "OidcClientId": "dash"},
			app.SignIn{Issuer: "https://example.eu.auth0.com/", ClientID: "dash", Audience: "dash", OwnerClaim: "sub"}},
		{"every setting", map[string]string{
			"OidcIssuer": "https://login.microsoftonline.com/tenant/v2.0", "OidcClientId": "dash", "OidcAudience": "api://apitokens",
			"OidcOwnerClaim": "oid", "OidcAdminClaim": "roles", "OidcAdminValue": "apitokens.admin"},
			app.SignIn{Issuer: "https://login.microsoftonline.com/tenant/v2.0", ClientID: "dash", Audience: "api://apitokens",
				OwnerClaim: "oid", AdminClaim: "roles", AdminValue: "apitokens.admin"}},
		{"a user pool of the stack", map[string]string{"CreateUserPool": "true"},
			app.SignIn{Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", ClientID: refs["UserPoolClient"],
				Audience: refs["UserPoolClient"], OwnerClaim: "sub", AdminClaim: "cognito:groups", AdminValue: "apitokens-admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]string{}
			for _, kv := range functionEnv(t, tpl, "ManagementAuthorizerFunction", tc.params, refs) {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			getenv := func(k string) string { return vars[k] }
			got, err := app.SignInFromEnv(getenv)
			if err != nil || got != tc.want {
				t.Fatalf("SignInFromEnv of %v: %+v, %v; want %+v", vars, got, err, tc.want)
			}
			a, err := app.NewAuthorizerWithStore(memstore.New(nil), getenv)
			if err != nil || a == nil {
				t.Fatalf("the authorizer's init with %v: %v", vars, err)
			}
		})
	}
	if got := str(get(tpl, "Resources", "AdminGroup", "Properties", "GroupName")); got != "apitokens-admin" {
		t.Errorf("AdminGroup is %q; OIDC_ADMIN_VALUE with CreateUserPool is apitokens-admin", got)
	}
}

// TestUserPool: the optional user pool is the dashboard's: a public app client (no secret) for
// the authorization code flow (with PKCE, which Cognito applies to public clients) and OpenID
// scopes, sending people back to DashboardUrl; people are invited, not self-registered. The client
// must not depend on the API (its functions depend on the client: a cycle).
func TestUserPool(t *testing.T) {
	tpl := mustTemplate(t)
	for _, id := range []string{"UserPool", "UserPoolDomain", "AdminGroup", "UserPoolClient"} {
		if c := str(get(tpl, "Resources", id, "Condition")); c != "UserPoolCreated" {
			t.Errorf("%s: Condition %q, want UserPoolCreated", id, c)
		}
	}
	pool := get(tpl, "Resources", "UserPool", "Properties")
	client := get(tpl, "Resources", "UserPoolClient", "Properties")
	callback := get(client, "CallbackURLs")
	checks := map[string]bool{
		"people are invited":              get(pool, "AdminCreateUserConfig", "AllowAdminCreateUserOnly") == true,
		"a public client (no secret)":     get(client, "GenerateSecret") == false,
		"the authorization code flow":     slices.Equal(toStrings(get(client, "AllowedOAuthFlows")), []string{"code"}) && get(client, "AllowedOAuthFlowsUserPoolClient") == true,
		"the openid scope":                slices.Contains(toStrings(get(client, "AllowedOAuthScopes")), "openid"),
		"back to DashboardUrl":            len(callback.([]any)) == 1 && ref(callback.([]any)[0]) == "DashboardUrl",
		"the pool's own sign-in":          slices.Equal(toStrings(get(client, "SupportedIdentityProviders")), []string{"COGNITO"}),
		"an hour-long ID token at most":   get(client, "IdTokenValidity") == 60 && get(client, "TokenValidityUnits", "IdToken") == "minutes",
		"no dependency on the API":        !refsIn(client)["Api"],
		"issuer and client as outputs":    get(tpl, "Outputs", "SignInIssuer") != nil && get(tpl, "Outputs", "SignInClientId") != nil,
		"the pool kept on stack deletion": get(tpl, "Resources", "UserPool", "DeletionPolicy") == "Retain",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("user pool: not %s", what)
		}
	}
	out := mustTransform(t, mustRead(t, "template.yaml"), map[string]string{"CreateUserPool": "true"})
	if len(resourcesOfType(out, "AWS::Cognito::UserPoolClient")) != 1 {
		t.Error("the transformed template has no app client")
	}
}

// TestCORSTransformed: API Gateway gets from the SAM translator the CORS settings of the local
// server (httpapi.CORS): the origins of CorsAllowedOrigins, the route table's methods, the same
// headers and max age, no credentials; and none at all without origins. A preflight from an
// allowed and from a refused origin is then decided the same way by both.
func TestCORSTransformed(t *testing.T) {
	origins := []string{"https://dashboard.example.com", "http://localhost:5173"}
	tpl := transformWith(t, mustRead(t, "template.yaml"), map[string]any{"CorsAllowedOrigins": origins})
	cors := get(tpl, "Resources", "Api", "Properties", "Body", "x-amazon-apigateway-cors")
	branches, ok := get(cors, "Fn::If").([]any)
	if !ok || len(branches) != 3 || ref(branches[2]) != "AWS::NoValue" {
		t.Fatalf("x-amazon-apigateway-cors = %v, want !If [condition, settings, AWS::NoValue]", cors)
	}
	cond := get(mustTemplate(t), "Conditions", str(branches[0]))
	for value, want := range map[string]bool{strings.Join(origins, ","): true, "": false} {
		if got := condition(t, mustTemplate(t), cond, map[string]string{"CorsAllowedOrigins": value}, nil); got != want {
			t.Errorf("condition %s with CorsAllowedOrigins=%q: %v, want %v", str(branches[0]), value, got, want)
		}
	}
	settings := branches[1]
	checks := map[string]bool{
		"allowOrigins the parameter's":          slices.Equal(toStrings(get(settings, "allowOrigins")), origins),
		"allowMethods the route table's":        slices.Equal(toStrings(get(settings, "allowMethods")), httpapi.CORSAllowMethods()),
		"allowHeaders the local server's":       slices.Equal(toStrings(get(settings, "allowHeaders")), httpapi.CORSAllowHeaders),
		"exposeHeaders the local server's":      slices.Equal(toStrings(get(settings, "exposeHeaders")), httpapi.CORSExposeHeaders),
		"maxAge the local server's":             get(settings, "maxAge") == float64(httpapi.CORSMaxAge),
		"no credentials (bearer tokens only)":   get(settings, "allowCredentials") == nil || get(settings, "allowCredentials") == false,
		"no settings API Gateway does not know": len(settings.(tree)) == 5,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("CORS of the API: not %s: %v", what, settings)
		}
	}

	// A preflight decided by API Gateway's settings, as its documentation says (the origin
	// listed, or no CORS headers), and by the local server.
	local := httpapi.CORS(origins, http.NotFoundHandler())
	for _, origin := range []string{"https://dashboard.example.com", "https://evil.example"} {
		r := httptest.NewRequest(http.MethodOptions, "/tokens", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		w := httptest.NewRecorder()
		local.ServeHTTP(w, r)
		gatewayAllows := slices.Contains(toStrings(get(settings, "allowOrigins")), origin)
		if localAllows := w.Header().Get("Access-Control-Allow-Origin") == origin; w.Code != http.StatusNoContent || localAllows != gatewayAllows {
			t.Errorf("preflight from %s: API Gateway allows it: %v; the local server answers %d, allows it: %v", origin, gatewayAllows, w.Code, localAllows)
		}
	}
}

// transformWith is mustTransform with parameter values of any JSON type, as CloudFormation hands
// them to the SAM transform (a CommaDelimitedList is a list).
func transformWith(t *testing.T, src []byte, params map[string]any) tree {
	t.Helper()
	mustTranslator(t)
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("python3", "-c", samTranslator, string(p))
	cmd.Stdin = bytes.NewReader(src)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("SAM translator: %v\n%s", err, stderr.String())
	}
	var tpl tree
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}
