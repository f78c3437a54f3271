package samtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/httpapi"
)

// root is the repository, seen from this package's directory (where go test runs).
const root = "../.."

// Functions of template.yaml that serve no route of httpapi.Routes, with their directories.
var otherFunctions = map[string]string{
	"AuthorizerFunction":    "authorizer",
	"ExampleWhoamiFunction": "example-whoami",
}

// logicalID is the template's name for the function in functions/<dir>: CreateFunction for
// create, ExampleWhoamiFunction for example-whoami.
func logicalID(dir string) string {
	var b strings.Builder
	for _, part := range strings.Split(dir, "-") {
		r := []rune(part)
		b.WriteString(string(unicode.ToUpper(r[0])) + string(r[1:]))
	}
	return b.String() + "Function"
}

// functionDirs maps every function of the template to its directory under functions/.
func functionDirs() map[string]string {
	dirs := map[string]string{}
	for id, dir := range otherFunctions {
		dirs[id] = dir
	}
	for _, rt := range httpapi.Routes {
		dirs[logicalID(rt.Function)] = rt.Function
	}
	return dirs
}

// tree is template.yaml as CloudFormation's JSON form: maps, slices, strings, numbers, and the
// short intrinsic tags spelled out (!Ref X is {"Ref": "X"}, !GetAtt A.B is {"Fn::GetAtt": [A, B]}).
type tree = map[string]any

func mustTemplate(t *testing.T) tree {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	v, err := fromYAML(&doc)
	if err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	m, ok := v.(tree)
	if !ok {
		t.Fatal("template.yaml is not a mapping")
	}
	return m
}

func fromYAML(n *yaml.Node) (any, error) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name := n.Tag[1:]
		plain := *n
		plain.Tag = ""
		if n.Kind == yaml.ScalarNode {
			plain.Tag = "!!str"
		}
		v, err := fromYAML(&plain)
		if err != nil {
			return nil, err
		}
		switch name {
		case "Ref":
			return tree{"Ref": v}, nil
		case "GetAtt":
			if s, ok := v.(string); ok {
				resource, attr, _ := strings.Cut(s, ".")
				v = []any{resource, attr}
			}
		}
		return tree{"Fn::" + name: v}, nil
	}
	switch n.Kind {
	case yaml.DocumentNode:
		return fromYAML(n.Content[0])
	case yaml.AliasNode:
		return fromYAML(n.Alias)
	case yaml.MappingNode:
		m := tree{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := fromYAML(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			v, err := fromYAML(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	}
	var v any
	err := n.Decode(&v)
	return v, err
}

// get walks a tree by keys; nil when a key is missing.
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(tree)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

func ref(v any) string { return str(get(v, "Ref")) }

func resourcesOfType(tpl tree, typ string) map[string]tree {
	out := map[string]tree{}
	for id, r := range get(tpl, "Resources").(tree) {
		if rm, ok := r.(tree); ok && rm["Type"] == typ {
			out[id] = rm
		}
	}
	return out
}

// TestTemplateServesTheRouteTable holds template.yaml to httpapi.Routes both ways: every route
// has its function with one HttpApi event of the route's method and path (without the
// authorizer exactly when the route needs no auth), and every function and event of the
// template belongs to a route or is one of otherFunctions.
func TestTemplateServesTheRouteTable(t *testing.T) {
	tpl := mustTemplate(t)
	functions := resourcesOfType(tpl, "AWS::Serverless::Function")

	served := map[string]bool{}
	for _, rt := range httpapi.Routes {
		id := logicalID(rt.Function)
		fn, ok := functions[id]
		if !ok {
			t.Errorf("route %q: no function %s in template.yaml", rt.Pattern, id)
			continue
		}
		method, path, _ := strings.Cut(rt.Pattern, " ")
		var events []tree
		for _, ev := range get(fn, "Properties", "Events").(tree) {
			if e := ev.(tree); e["Type"] == "HttpApi" {
				events = append(events, e)
			}
		}
		if len(events) != 1 {
			t.Errorf("%s: %d HttpApi events, want 1 (route %s)", id, len(events), rt.Pattern)
			continue
		}
		p := events[0]["Properties"]
		if got := strings.ToUpper(str(get(p, "Method"))) + " " + str(get(p, "Path")); got != rt.Pattern {
			t.Errorf("%s serves %q, want %q", id, got, rt.Pattern)
		}
		if ref(get(p, "ApiId")) != "Api" {
			t.Errorf("%s: event ApiId %v, want !Ref Api", id, get(p, "ApiId"))
		}
		authorizerName := str(get(p, "Auth", "Authorizer"))
		if rt.Auth && authorizerName != "" {
			t.Errorf("%s: route %s needs the default authorizer, has Authorizer %q", id, rt.Pattern, authorizerName)
		}
		if !rt.Auth && authorizerName != "NONE" {
			t.Errorf("%s: route %s takes no token, so its event needs Auth: Authorizer: NONE", id, rt.Pattern)
		}
		served[method+" "+path] = true
	}

	dirs := functionDirs()
	for id, fn := range functions {
		if _, ok := dirs[id]; !ok {
			t.Errorf("template function %s serves no route of httpapi.Routes and is not one of %v", id, otherFunctions)
		}
		events, _ := get(fn, "Properties", "Events").(tree)
		for name, ev := range events {
			if get(ev, "Type") != "HttpApi" {
				continue
			}
			p := get(ev, "Properties")
			key := strings.ToUpper(str(get(p, "Method"))) + " " + str(get(p, "Path"))
			if _, other := otherFunctions[id]; other || !served[key] {
				t.Errorf("%s event %s serves %q, which is not its route in httpapi.Routes", id, name, key)
			}
		}
		if got := str(get(fn, "Properties", "CodeUri")); got != "." {
			t.Errorf("%s: CodeUri %q, want . (the Makefile at the root builds it)", id, got)
		}
		if got := str(get(fn, "Metadata", "BuildMethod")); got != "makefile" {
			t.Errorf("%s: Metadata.BuildMethod %q, want makefile", id, got)
		}
	}
	for id := range dirs {
		if _, ok := functions[id]; !ok {
			t.Errorf("no function %s in template.yaml", id)
		}
	}
}

// TestFunctionsDirectory: every directory under functions/ is a function of the template, and
// every function of the template has its main.go.
func TestFunctionsDirectory(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := functionDirs()
	var onDisk []string
	for _, e := range entries {
		if e.IsDir() {
			onDisk = append(onDisk, e.Name())
			if _, ok := dirs[logicalID(e.Name())]; !ok {
				t.Errorf("functions/%s is not a function of template.yaml (want %s)", e.Name(), logicalID(e.Name()))
			}
		}
	}
	for id, dir := range dirs {
		if !slices.Contains(onDisk, dir) {
			t.Errorf("%s: no functions/%s", id, dir)
		}
	}
}

// TestRouteMainsOnlyWire: each route function's main.go declares nothing but main, and passes
// its own route's pattern to app.LambdaRoute.
func TestRouteMainsOnlyWire(t *testing.T) {
	for _, rt := range httpapi.Routes {
		path := filepath.Join(root, "functions", rt.Function, "main.go")
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "main" {
				if lines := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; lines > 20 {
					t.Errorf("%s: main is %d lines; a function's main only wires (at most 20)", path, lines)
				}
				continue
			}
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
				continue
			}
			t.Errorf("%s: declares more than main; logic belongs in pkg/", path)
		}
		var patterns []string
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "LambdaRoute" && len(call.Args) == 2 {
				if lit, ok := call.Args[1].(*ast.BasicLit); ok {
					s, _ := strconv.Unquote(lit.Value)
					patterns = append(patterns, s)
				}
			}
			return true
		})
		if !slices.Equal(patterns, []string{rt.Pattern}) {
			t.Errorf("%s calls app.LambdaRoute with %q, want exactly [%q]", path, patterns, rt.Pattern)
		}
	}
}

// TestMakeBuildTargets: sam build runs make build-<LogicalId> for every function, which must
// build functions/<dir> into $(ARTIFACTS_DIR)/bootstrap.
func TestMakeBuildTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	for id, dir := range functionDirs() {
		out, err := exec.Command("make", "-C", root, "-n", "build-"+id, "ARTIFACTS_DIR=/artifacts").CombinedOutput()
		if err != nil {
			t.Errorf("make -n build-%s: %v\n%s", id, err, out)
			continue
		}
		for _, want := range []string{"GOOS=linux GOARCH=arm64 CGO_ENABLED=0", "lambda.norpc", "./functions/" + dir, "/artifacts/bootstrap"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make build-%s does not mention %q:\n%s", id, want, out)
			}
		}
	}
}

// policy is what a function's IAM policies allow: actions by resource, where the resource is
// "table" (!GetAtt Table.Arn) or "index" (${Table.Arn}/index/*).
type policy map[string][]string

func functionPolicies(t *testing.T, tpl tree) map[string]policy {
	t.Helper()
	out := map[string]policy{}
	for id, fn := range resourcesOfType(tpl, "AWS::Serverless::Function") {
		p := policy{}
		policies, _ := get(fn, "Properties", "Policies").([]any)
		for _, doc := range policies {
			statements, ok := get(doc, "Statement").([]any)
			if !ok {
				t.Errorf("%s: policy %v is not an inline statement list; least privilege is spelled out here", id, doc)
				continue
			}
			for _, st := range statements {
				if get(st, "Effect") != "Allow" {
					t.Errorf("%s: statement %v is not an Allow", id, st)
				}
				var resource string
				switch r := get(st, "Resource"); {
				case slices.Equal(toStrings(get(r, "Fn::GetAtt")), []string{"Table", "Arn"}):
					resource = "table"
				case str(get(r, "Fn::Sub")) == "${Table.Arn}/index/*":
					resource = "index"
				default:
					t.Errorf("%s: statement resource %v is neither the table nor its indexes", id, r)
					continue
				}
				for _, a := range toStrings(get(st, "Action")) {
					if !strings.HasPrefix(a, "dynamodb:") || strings.Contains(a, "*") {
						t.Errorf("%s: action %q: want a single dynamodb action", id, a)
					}
					p[resource] = append(p[resource], a)
				}
			}
		}
		for r := range p {
			sort.Strings(p[r])
		}
		out[id] = p
	}
	return out
}

func toStrings(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case []any:
		for _, x := range v {
			out = append(out, str(x))
		}
	}
	return out
}

// wantPolicies is the least privilege of each function, derived from the Store calls its route
// makes (pkg/dynamo/store.go); TestPoliciesAllowExactlyTheCalls (DynamoDB Local) checks it
// against the calls the handlers really make. A transaction needs the actions of its items.
var wantPolicies = map[string]policy{
	// CreateToken: PutItem, or a transaction of two Puts (token, clientId marker).
	"CreateFunction": {"table": {"dynamodb:PutItem"}},
	// ListTokens: Query on the owner index only.
	"ListFunction": {"index": {"dynamodb:Query"}},
	// FindToken: GetItem.
	"SelfFunction": {"table": {"dynamodb:GetItem"}},
	"GetFunction":  {"table": {"dynamodb:GetItem"}},
	// FindToken, then UpdateToken: UpdateItem, or a transaction of Update + Put (claim the clientId).
	"UpdateFunction": {"table": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}},
	"RotateFunction": {"table": {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}},
	// FindToken, then UpdateToken of a revoke: a transaction of Update + Delete (release the clientId).
	"RevokeFunction": {"table": {"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"}},
	// FindToken, then RecordUse of a valid token: UpdateItem.
	"VerifyFunction":     {"table": {"dynamodb:GetItem", "dynamodb:UpdateItem"}},
	"AuthorizerFunction": {"table": {"dynamodb:GetItem", "dynamodb:UpdateItem"}},
	// The example API's backend reads the authorizer's context, not the table.
	"ExampleWhoamiFunction": {},
}

func TestPoliciesLeastPrivilege(t *testing.T) {
	got := functionPolicies(t, mustTemplate(t))
	for id := range functionDirs() {
		if !equalPolicy(got[id], wantPolicies[id]) {
			t.Errorf("%s allows %v, want %v", id, got[id], wantPolicies[id])
		}
	}
	for id, p := range got {
		if _, ok := wantPolicies[id]; !ok {
			t.Errorf("%s: no least-privilege policy on record for it (allows %v)", id, p)
		}
	}
}

func equalPolicy(a, b policy) bool {
	if len(a) != len(b) {
		return false
	}
	for r, actions := range a {
		if !slices.Equal(actions, b[r]) {
			return false
		}
	}
	return true
}

// TestEnvironmentIsRead: every variable the template sets is one the code reads.
func TestEnvironmentIsRead(t *testing.T) {
	tpl := mustTemplate(t)
	read := []string{
		app.EnvTableName, app.EnvPrefix, app.EnvDefaultExpiryDays, app.EnvMaxExpiryDays,
		app.EnvAllowedPermissions, app.EnvDefaultPermissions, app.EnvRevokedRetention,
	}
	global, _ := get(tpl, "Globals", "Function", "Environment", "Variables").(tree)
	for k := range global {
		if !slices.Contains(read, k) {
			t.Errorf("Globals sets %s, which pkg/app does not read", k)
		}
	}
	if ref(global[app.EnvTableName]) != "Table" {
		t.Errorf("%s = %v, want !Ref Table", app.EnvTableName, global[app.EnvTableName])
	}
	authorizerRead := []string{
		authorizer.EnvPrefix, authorizer.EnvCacheTTL, authorizer.EnvCacheSize, authorizer.EnvUsageInterval,
		authorizer.EnvRoutes, authorizer.EnvAPIKeyHeader, authorizer.EnvResponse,
	}
	vars, _ := get(tpl, "Resources", "AuthorizerFunction", "Properties", "Environment", "Variables").(tree)
	for k := range vars {
		if !slices.Contains(authorizerRead, k) {
			t.Errorf("AuthorizerFunction sets %s, which pkg/authorizer does not read", k)
		}
	}
	if str(vars[authorizer.EnvResponse]) != "simple" {
		t.Errorf("%s = %v: the management API's authorizer uses simple responses", authorizer.EnvResponse, vars[authorizer.EnvResponse])
	}
}

// TestHTTPAPIAuthorizer: the management API's default authorizer is AuthorizerFunction, payload
// 2.0 with simple responses, on the Authorization header, cached for a parameter's time.
func TestHTTPAPIAuthorizer(t *testing.T) {
	tpl := mustTemplate(t)
	auth := get(tpl, "Resources", "Api", "Properties", "Auth")
	name := str(get(auth, "DefaultAuthorizer"))
	a := get(auth, "Authorizers", name)
	if a == nil {
		t.Fatalf("Api: default authorizer %q is not defined", name)
	}
	checks := map[string]bool{
		"FunctionArn is AuthorizerFunction.Arn":     slices.Equal(toStrings(get(a, "FunctionArn", "Fn::GetAtt")), []string{"AuthorizerFunction", "Arn"}),
		"payload format 2.0":                        str(get(a, "AuthorizerPayloadFormatVersion")) == "2.0",
		"simple responses":                          get(a, "EnableSimpleResponses") == true,
		"identity: the Authorization header":        slices.Equal(toStrings(get(a, "Identity", "Headers")), []string{"Authorization"}),
		"cache TTL from AuthorizerCacheTtlSeconds":  ref(get(a, "Identity", "ReauthorizeEvery")) == "AuthorizerCacheTtlSeconds",
		"API Gateway may invoke the authorizer":     get(a, "EnableFunctionDefaultPermissions") == true,
		"AuthorizerCacheTtlSeconds defaults to 0":   get(tpl, "Parameters", "AuthorizerCacheTtlSeconds", "Default") == 0,
		"cache key holds address and route":         slices.Equal(toStrings(get(a, "Identity", "Context")), []string{"identity.sourceIp", "routeKey"}),
		"limit refusals deferred to the functions":  get(tpl, "Resources", "Api", "Properties", "StageVariables", authorizer.StageVarDeferLimits) == "true",
		"throttling defaults on the $default stage": get(tpl, "Resources", "Api", "Properties", "DefaultRouteSettings", "ThrottlingRateLimit") != nil,
		"access logging":                            get(tpl, "Resources", "Api", "Properties", "AccessLogSettings", "DestinationArn") != nil,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Api authorizer: not %s", what)
		}
	}
}

// TestTableDefinition: the table as DESIGN.md and pkg/dynamo have it, kept on stack deletion.
// TestTableMatchesCreateTable compares it with what dynamo.CreateTable creates.
func TestTableDefinition(t *testing.T) {
	tpl := mustTemplate(t)
	table := get(tpl, "Resources", "Table").(tree)
	p := table["Properties"]
	checks := map[string]bool{
		"DeletionPolicy Retain":            table["DeletionPolicy"] == "Retain",
		"UpdateReplacePolicy Retain":       table["UpdateReplacePolicy"] == "Retain",
		"on-demand billing":                get(p, "BillingMode") == "PAY_PER_REQUEST",
		"TTL enabled on ttl":               get(p, "TimeToLiveSpecification", "AttributeName") == "ttl" && get(p, "TimeToLiveSpecification", "Enabled") == true,
		"point-in-time recovery":           get(p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") == true,
		"server-side encryption":           get(p, "SSESpecification", "SSEEnabled") == true,
		"deletion protection by parameter": ref(get(p, "DeletionProtectionEnabled")) == "DeletionProtection",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Table: not %s", what)
		}
	}
}
