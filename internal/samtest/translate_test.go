package samtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// What API Gateway gets is what the SAM translator makes of a template, not the template: a REST
// authorizer given `Type: REQUEST` instead of `FunctionPayloadType: REQUEST` passes cfn-lint and
// becomes a TOKEN authorizer. The tests of this file run the translator (python3 with
// samtranslator, which cfn-lint and the SAM CLI bring) on template.yaml, authorizer/template.yaml
// and every attach snippet of the README, and check the authorizers in its output.

// samTranslator reads a template on stdin, does to it what `sam package` does before CloudFormation
// sees it (local code and nested application templates become S3 locations), runs the SAM
// transform with the parameter values of argv[1], and writes the CloudFormation template as JSON.
const samTranslator = `
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class ManagedPolicies:
    # The templates attach no managed policy by name, so IAM is never asked for the list.
    def load(self):
        return {}

template = yaml_parse(sys.stdin.read())
for resource in template.get("Resources", {}).values():
    props = resource.get("Properties", {})
    if resource.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
        props["CodeUri"] = "s3://packaged-code/function.zip"
    if resource.get("Type") == "AWS::Serverless::Application" and isinstance(props.get("Location"), str):
        props["Location"] = "https://s3.amazonaws.com/packaged-code/" + props["Location"]
json.dump(transform(template, json.loads(sys.argv[1]), ManagedPolicies()), sys.stdout)
`

// translatorInstall is what to run when python3 or samtranslator is missing.
const translatorInstall = "pip install aws-sam-translator==1.110.0 (or pip install cfn-lint, which depends on it)"

var translatorCheck struct {
	once sync.Once
	err  error
}

// transformed memoizes mustTransform: the translator takes about a second per template.
var transformed struct {
	mu  sync.Mutex
	out map[string][]byte
}

// mustTranslator fails the test, never skips it, when the translator cannot run.
func mustTranslator(t *testing.T) {
	t.Helper()
	translatorCheck.once.Do(func() {
		if _, err := exec.LookPath("python3"); err != nil {
			translatorCheck.err = fmt.Errorf("python3 not found: install Python 3, then %s", translatorInstall)
			return
		}
		out, err := exec.Command("python3", "-c", "import samtranslator; print(samtranslator.__version__)").CombinedOutput()
		if err != nil {
			translatorCheck.err = fmt.Errorf("python3 cannot import samtranslator (%v: %s): %s", err, bytes.TrimSpace(out), translatorInstall)
		}
	})
	if translatorCheck.err != nil {
		t.Fatal(translatorCheck.err)
	}
}

// mustTransform returns the CloudFormation template the SAM translator makes of src.
func mustTransform(t *testing.T, src []byte, params map[string]string) tree {
	t.Helper()
	mustTranslator(t)
	if params == nil {
		params = map[string]string{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	key := string(p) + "\x00" + string(src)
	transformed.mu.Lock()
	out, done := transformed.out[key]
	transformed.mu.Unlock()
	if !done {
		cmd := exec.Command("python3", "-c", samTranslator, string(p))
		cmd.Stdin = bytes.NewReader(src)
		// The translator fills in pseudo parameters such as AWS::Region from the environment.
		cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		var err error
		if out, err = cmd.Output(); err != nil {
			t.Fatalf("SAM translator: %v\n%s", err, stderr.String())
		}
		transformed.mu.Lock()
		if transformed.out == nil {
			transformed.out = map[string][]byte{}
		}
		transformed.out[key] = out
		transformed.mu.Unlock()
	}
	var tpl tree
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatalf("SAM translator output: %v", err)
	}
	return tpl
}

// findGetAtt reports whether v holds !GetAtt resource.attr anywhere, e.g. in the variables of
// an Fn::Sub.
func findGetAtt(v any, resource, attr string) bool {
	switch v := v.(type) {
	case tree:
		if slices.Equal(toStrings(v["Fn::GetAtt"]), []string{resource, attr}) {
			return true
		}
		for _, x := range v {
			if findGetAtt(x, resource, attr) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if findGetAtt(x, resource, attr) {
				return true
			}
		}
	}
	return false
}

// gatewayAuthorizer is a Lambda authorizer as API Gateway gets it from a transformed template.
type gatewayAuthorizer struct {
	Type           string   // "token" or "request"
	IdentitySource []string // in order; a TOKEN authorizer's is its header
	TTL            any      // authorizerResultTtlInSeconds: a number, a !Ref, or nil (API Gateway's default, 300 s)
	PayloadVersion string   // HTTP APIs: "2.0"
	Simple         bool     // HTTP APIs: enableSimpleResponses
	URI            any
}

// bodyAuthorizers returns the Lambda authorizers of the OpenAPI body SAM generates for an
// AWS::Serverless::HttpApi or AWS::Serverless::Api.
func bodyAuthorizers(api any) map[string]gatewayAuthorizer {
	body := get(api, "Properties", "Body")
	schemes, _ := get(body, "components", "securitySchemes").(tree) // OpenAPI 3: HTTP APIs
	if schemes == nil {
		schemes, _ = get(body, "securityDefinitions").(tree) // Swagger 2: REST APIs
	}
	out := map[string]gatewayAuthorizer{}
	for name, s := range schemes {
		x := get(s, "x-amazon-apigateway-authorizer")
		if x == nil {
			continue
		}
		a := gatewayAuthorizer{
			Type: str(get(x, "type")), TTL: get(x, "authorizerResultTtlInSeconds"), URI: get(x, "authorizerUri"),
			PayloadVersion: str(get(x, "authorizerPayloadFormatVersion")), Simple: get(x, "enableSimpleResponses") == true,
		}
		switch src := get(x, "identitySource").(type) {
		case []any:
			a.IdentitySource = toStrings(src)
		case string:
			a.IdentitySource = splitIdentity(src)
		}
		if a.Type == "token" && get(s, "in") == "header" {
			a.IdentitySource = []string{"method.request.header." + str(get(s, "name"))}
		}
		out[name] = a
	}
	return out
}

func splitIdentity(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(part))
	}
	return out
}

// Identity sources that make a cached answer safe to reuse: the token, and for authorizers that
// see it the source address (allowlists) and the route (route maps, simple answers). A REST TOKEN
// authorizer sees the header only, so tokens with allowlists are refused there.
var (
	httpIdentity        = []string{"$request.header.Authorization", "$context.identity.sourceIp", "$context.routeKey"}
	restRequestIdentity = []string{"method.request.header.Authorization", "context.identity.sourceIp", "context.httpMethod", "context.resourcePath"}
	restTokenIdentity   = []string{"method.request.header.Authorization"}
)

// attachWant is what API Gateway must get from one README attach snippet.
type attachWant struct {
	http         bool
	typ          string
	simple       bool
	identity     []string
	responseMode string // the application's ResponseMode, for HTTP APIs
}

var attachWants = map[string]attachWant{
	"http-simple":  {http: true, typ: "request", simple: true, identity: httpIdentity, responseMode: "simple"},
	"http-iam":     {http: true, typ: "request", simple: false, identity: httpIdentity, responseMode: "iam"},
	"rest-token":   {typ: "token", identity: restTokenIdentity},
	"rest-request": {typ: "request", identity: restRequestIdentity},
}

// checkAttach returns what is wrong with the API and authorizer application of a transformed
// attach snippet.
func checkAttach(tpl tree, want attachWant) []string {
	var problems []string
	wrong := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var app string
	for id, r := range resourcesOfType(tpl, "AWS::CloudFormation::Stack") {
		if strings.HasSuffix(str(get(r, "Properties", "TemplateURL")), appTemplate) {
			app = id
		}
	}
	if app == "" {
		return []string{"no AWS::Serverless::Application of " + appTemplate}
	}
	params := get(tpl, "Resources", app, "Properties", "Parameters")
	for _, p := range []string{"TableName", "TableArn"} {
		if get(params, p) == nil {
			wrong("the application is not given %s", p)
		}
	}
	if want.http && str(get(params, "ResponseMode")) != want.responseMode {
		wrong("the application's ResponseMode is %v, want %s", get(params, "ResponseMode"), want.responseMode)
	}

	apiType := "AWS::ApiGateway::RestApi"
	if want.http {
		apiType = "AWS::ApiGatewayV2::Api"
	}
	apis := resourcesOfType(tpl, apiType)
	if len(apis) != 1 {
		return append(problems, fmt.Sprintf("%d %s, want 1", len(apis), apiType))
	}
	var api string
	for id := range apis {
		api = id
	}
	auths := bodyAuthorizers(apis[api])
	if len(auths) != 1 {
		return append(problems, fmt.Sprintf("%s: %d Lambda authorizers, want 1", api, len(auths)))
	}
	for name, a := range auths {
		if a.Type != want.typ {
			wrong("authorizer %s: type %q, want %q", name, a.Type, want.typ)
		}
		if !slices.Equal(a.IdentitySource, want.identity) {
			wrong("authorizer %s: identity sources %q, want %q", name, a.IdentitySource, want.identity)
		}
		if a.TTL != float64(0) {
			wrong("authorizer %s: result TTL %v, want 0 (an absent TTL is API Gateway's 300 s)", name, a.TTL)
		}
		if want.http && (a.PayloadVersion != "2.0" || a.Simple != want.simple) {
			wrong("authorizer %s: payload %q, simple responses %v; want 2.0, %v", name, a.PayloadVersion, a.Simple, want.simple)
		}
		if !findGetAtt(a.URI, app, "Outputs.FunctionArn") {
			wrong("authorizer %s: its function is not the application's FunctionArn output: %v", name, a.URI)
		}
	}
	invokable := false
	for _, p := range resourcesOfType(tpl, "AWS::Lambda::Permission") {
		if findGetAtt(get(p, "Properties", "FunctionName"), app, "Outputs.FunctionArn") && get(p, "Properties", "Principal") == "apigateway.amazonaws.com" {
			invokable = true
		}
	}
	if !invokable {
		wrong("no AWS::Lambda::Permission lets API Gateway invoke the application's function")
	}
	return problems
}

// snippetMarker precedes each attach snippet of the README: an HTML comment, then a yaml block
// of resources, as they go under Resources: of the reader's template.
var snippetMarker = regexp.MustCompile("<!-- attach-snippet: ([a-z0-9-]+) -->\\s*\n```yaml\n([\\s\\S]*?)```")

func mustSnippets(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range snippetMarker.FindAllStringSubmatch(string(b), -1) {
		if _, dup := out[m[1]]; dup {
			t.Errorf("README.md: two attach snippets %q", m[1])
		}
		out[m[1]] = m[2]
	}
	return out
}

// snippetTemplate is a snippet as the reader's template holds it.
func snippetTemplate(snippet string) []byte {
	return []byte("AWSTemplateFormatVersion: \"2010-09-09\"\nTransform: AWS::Serverless-2016-10-31\nResources:\n" + snippet)
}

// TestREADMEAttachSnippets runs every attach snippet of the README through the SAM translator
// and checks the authorizer API Gateway gets (type, identity sources, result TTL, response
// format, function, invoke permission), and through cfn-lint. A snippet with the mistake of
// issue 9 (Type: REQUEST, which SAM ignores) must fail the same checks.
func TestREADMEAttachSnippets(t *testing.T) {
	snippets := mustSnippets(t)
	for name := range snippets {
		if _, ok := attachWants[name]; !ok {
			t.Errorf("README.md: attach snippet %q has no expectation in attachWants", name)
		}
	}
	for name, want := range attachWants {
		t.Run(name, func(t *testing.T) {
			snippet, ok := snippets[name]
			if !ok {
				t.Fatalf("README.md has no <!-- attach-snippet: %s --> followed by a yaml block", name)
			}
			for _, p := range checkAttach(mustTransform(t, snippetTemplate(snippet), nil), want) {
				t.Error(p)
			}
		})
	}
	t.Run("cfn-lint", func(t *testing.T) {
		srcs := map[string][]byte{}
		for name, snippet := range snippets {
			srcs[name+".yaml"] = snippetTemplate(snippet)
		}
		mustLint(t, srcs)
	})
	t.Run("Type: REQUEST is caught", func(t *testing.T) {
		snippet, ok := snippets["rest-request"]
		if !ok || !strings.Contains(snippet, "FunctionPayloadType: REQUEST") {
			t.Fatal("the rest-request snippet does not say FunctionPayloadType: REQUEST")
		}
		wrong := strings.Replace(snippet, "FunctionPayloadType: REQUEST", "Type: REQUEST", 1)
		problems := checkAttach(mustTransform(t, snippetTemplate(wrong), nil), attachWants["rest-request"])
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, `type "token"`) }) {
			t.Errorf("a REST snippet with Type: REQUEST (a TOKEN authorizer once transformed) passes the checks: %q", problems)
		}
	})
}

// mustLint runs cfn-lint on templates (by file name), in one directory where their Location
// (apitokens/authorizer/template.yaml, a checkout of this repository) exists.
func mustLint(t *testing.T, templates map[string][]byte) {
	t.Helper()
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Fatal("cfn-lint not found: pip install cfn-lint")
	}
	dir := t.TempDir()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(abs, filepath.Join(dir, "apitokens")); err != nil {
		t.Fatal(err)
	}
	var files []string
	for name, src := range templates {
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, name)
	}
	slices.Sort(files)
	cmd := exec.Command("cfn-lint", files...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}

// TestManagementAuthorizerTransformed: API Gateway gets the management API's authorizer as
// template.yaml means it: REQUEST, payload 2.0, simple responses, cache key of token, address and
// route, TTL from AuthorizerCacheTtlSeconds, ManagementAuthorizerFunction, and no stage variable
// for the authorizer to read.
func TestManagementAuthorizerTransformed(t *testing.T) {
	tpl := mustTransform(t, mustRead(t, "template.yaml"), map[string]string{"EnableExampleApi": "true"})
	auths := bodyAuthorizers(get(tpl, "Resources", "Api"))
	if len(auths) != 1 {
		t.Fatalf("Api: %d Lambda authorizers, want 1", len(auths))
	}
	for name, a := range auths {
		checks := map[string]bool{
			"a REQUEST authorizer":                      a.Type == "request",
			"payload 2.0 with simple responses":         a.PayloadVersion == "2.0" && a.Simple,
			"identity sources token, address and route": slices.Equal(a.IdentitySource, httpIdentity),
			"result TTL AuthorizerCacheTtlSeconds":      ref(a.TTL) == "AuthorizerCacheTtlSeconds",
			"the function ManagementAuthorizerFunction": findGetAtt(a.URI, "ManagementAuthorizerFunction", "Arn"),
			"API Gateway may invoke it":                 hasPermission(tpl, "ManagementAuthorizerFunction", "Arn"),
		}
		for what, ok := range checks {
			if !ok {
				t.Errorf("Api authorizer %s: not %s: %+v", name, what, a)
			}
		}
	}
	for id, stage := range resourcesOfType(tpl, "AWS::ApiGatewayV2::Stage") {
		if v := get(stage, "Properties", "StageVariables"); v != nil {
			t.Errorf("%s: stage variables %v: the management authorizer's rules are in code", id, v)
		}
	}
	env := get(tpl, "Resources", "ManagementAuthorizerFunction", "Properties", "Environment", "Variables")
	if str(get(env, "AUTHORIZER_ROLE")) != "management" {
		t.Errorf("ManagementAuthorizerFunction: environment %v, want AUTHORIZER_ROLE=management", env)
	}
}

func hasPermission(tpl tree, resource, attr string) bool {
	for _, p := range resourcesOfType(tpl, "AWS::Lambda::Permission") {
		if findGetAtt(get(p, "Properties", "FunctionName"), resource, attr) && get(p, "Properties", "Principal") == "apigateway.amazonaws.com" {
			return true
		}
	}
	return false
}

// TestExampleAuthorizerTransformed: the example API's authorizer is a REQUEST authorizer on the
// nested application's function, with the identity sources of a REST REQUEST attach snippet.
func TestExampleAuthorizerTransformed(t *testing.T) {
	tpl := mustTransform(t, mustRead(t, "template.yaml"), map[string]string{"EnableExampleApi": "true"})
	app := get(tpl, "Resources", "ExampleAuthorizerApp")
	if get(app, "Type") != "AWS::CloudFormation::Stack" || !strings.HasSuffix(str(get(app, "Properties", "TemplateURL")), appTemplate) {
		t.Fatalf("ExampleAuthorizerApp: want a nested stack of %s, got %v", appTemplate, app)
	}
	a := get(tpl, "Resources", "ExampleAuthorizer", "Properties")
	checks := map[string]bool{
		"a REQUEST authorizer":                        get(a, "Type") == "REQUEST",
		"identity sources token, address, route":      slices.Equal(splitIdentity(str(get(a, "IdentitySource"))), restRequestIdentity),
		"result TTL ExampleAuthorizerCacheTtlSeconds": ref(get(a, "AuthorizerResultTtlInSeconds")) == "ExampleAuthorizerCacheTtlSeconds",
		"the application's function":                  findGetAtt(get(a, "AuthorizerUri"), "ExampleAuthorizerApp", "Outputs.FunctionArn"),
		"API Gateway may invoke it":                   hasPermission(tpl, "ExampleAuthorizerApp", "Outputs.FunctionArn"),
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("ExampleAuthorizer: not %s: %v", what, a)
		}
	}
}

// TestAuthorizerAppTransformed: the application becomes one arm64 provided.al2023 function in the
// consumer role, whose role holds exactly the scoped grants, and its log group.
func TestAuthorizerAppTransformed(t *testing.T) {
	tpl := mustTransform(t, mustRead(t, appTemplate), map[string]string{
		"TableName": "apitokens-Table", "TableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/apitokens-Table",
	})
	functions := resourcesOfType(tpl, "AWS::Lambda::Function")
	if len(functions) != 1 {
		t.Fatalf("%d functions, want 1", len(functions))
	}
	fn := get(functions["AuthorizerFunction"], "Properties")
	checks := map[string]bool{
		"runtime provided.al2023, handler bootstrap": get(fn, "Runtime") == "provided.al2023" && get(fn, "Handler") == "bootstrap",
		"arm64":                           slices.Equal(toStrings(get(fn, "Architectures")), []string{"arm64"}),
		"role consumer":                   str(get(fn, "Environment", "Variables", "AUTHORIZER_ROLE")) == "consumer",
		"its own role":                    findGetAtt(get(fn, "Role"), "AuthorizerFunctionRole", "Arn"),
		"its own log group":               len(resourcesOfType(tpl, "AWS::Logs::LogGroup")) == 1,
		"the rule ApiBindingNeedsApiName": get(tpl, "Rules", "ApiBindingNeedsApiName") != nil,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("AuthorizerFunction: not %s", what)
		}
	}
	var got []grant
	for _, p := range get(tpl, "Resources", "AuthorizerFunctionRole", "Properties", "Policies").([]any) {
		for _, st := range get(p, "PolicyDocument", "Statement").([]any) {
			if g, ok := parseGrant(t, "AuthorizerFunctionRole", st, appResource); ok {
				got = append(got, g)
			}
		}
	}
	if !equalGrants(got, authorizerGrants) {
		t.Errorf("AuthorizerFunctionRole allows %v, want %v", got, authorizerGrants)
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuthorizerParametersDocumented: every parameter of the authorizer application is in the
// README's table and in the application's own README (the Serverless Application Repository
// shows that one), and no other is.
func TestAuthorizerParametersDocumented(t *testing.T) {
	params, _ := get(mustTemplateFile(t, appTemplate), "Parameters").(tree)
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)`(?:, `([A-Za-z]+)`)? \\|")
	for _, file := range []string{"README.md", filepath.Join(filepath.Dir(appTemplate), "README.md")} {
		text := string(mustRead(t, file))
		if file == "README.md" {
			start := strings.Index(text, "### Attach the authorizer to your API")
			if start < 0 {
				t.Fatal("README.md: no section \"Attach the authorizer to your API\"")
			}
			text = text[start:]
			if end := strings.Index(text, "\n## "); end >= 0 {
				text = text[:end]
			}
		}
		documented := map[string]bool{}
		for _, m := range row.FindAllStringSubmatch(text, -1) {
			for _, name := range m[1:] {
				if name != "" {
					documented[name] = true
				}
			}
		}
		for name := range params {
			if !documented[name] {
				t.Errorf("%s: parameter %s of %s is not in its table", file, name, appTemplate)
			}
		}
		for name := range documented {
			if _, ok := params[name]; !ok {
				t.Errorf("%s: documents a parameter %s that %s does not take", file, name, appTemplate)
			}
		}
	}
}
