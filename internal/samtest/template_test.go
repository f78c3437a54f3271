package samtest

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dashboard"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// root is the repository, seen from this package's directory (where go test runs).
const root = "../.."

// Functions of template.yaml that serve no route of httpapi.Routes, with their directories.
var otherFunctions = map[string]string{
	"ManagementAuthorizerFunction": "authorizer",
	"ExampleWhoamiFunction":        "example-whoami",
	dashboardFunction:              "dashboard",
	remindersFunction:              "expiry-reminders",
	quotaEventsFunction:            "quota-events",
}

// dashboardFunction serves the dashboard on the routes of dashboard.RouteKeys
// (TestDashboardRoutes), outside the route table: a web page, not an operation of the API.
const dashboardFunction = "DashboardFunction"

// appTemplate is the consumer authorizer application, which other stacks instantiate (and
// template.yaml's example API), and appFunctions its functions with their directories.
const appTemplate = "authorizer/template.yaml"

var appFunctions = map[string]string{"AuthorizerFunction": "authorizer"}

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
	return mustTemplateFile(t, "template.yaml")
}

// mustTemplateFile reads a template of the repository (file relative to its root).
func mustTemplateFile(t *testing.T, file string) tree {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseTemplate(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return m
}

func parseTemplate(b []byte) (tree, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	v, err := fromYAML(&doc)
	if err != nil {
		return nil, err
	}
	m, ok := v.(tree)
	if !ok {
		return nil, errors.New("not a mapping")
	}
	return m, nil
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

// param is the parameter a value takes: !Ref P, or the first branch of !If [cond, !Ref P,
// !Ref AWS::NoValue], the way the templates leave a variable unset when its parameter is empty.
func param(v any) string {
	if branches, ok := get(v, "Fn::If").([]any); ok && len(branches) == 3 && ref(branches[2]) == "AWS::NoValue" {
		return ref(branches[1])
	}
	return ref(v)
}

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
			if id == dashboardFunction {
				continue // TestDashboardRoutes
			}
			if get(ev, "Type") != "HttpApi" {
				continue
			}
			p := get(ev, "Properties")
			key := strings.ToUpper(str(get(p, "Method"))) + " " + str(get(p, "Path"))
			if _, other := otherFunctions[id]; other || !served[key] {
				t.Errorf("%s event %s serves %q, which is not its route in httpapi.Routes", id, name, key)
			}
		}
		checkBuiltByMakefile(t, id, fn, ".")
	}
	for id := range dirs {
		if _, ok := functions[id]; !ok {
			t.Errorf("no function %s in template.yaml", id)
		}
	}
}

// TestDashboardRoutes: the dashboard's function serves exactly dashboard.RouteKeys on the
// management API, without its authorizer (the page holds no data; it calls the API with the
// signed-in person's credential), and is configured with the OIDC parameters only.
func TestDashboardRoutes(t *testing.T) {
	tpl := mustTemplate(t)
	fn := get(tpl, "Resources", dashboardFunction)
	var keys []string
	for name, ev := range get(fn, "Properties", "Events").(tree) {
		p := get(ev, "Properties")
		if get(ev, "Type") != "HttpApi" || ref(get(p, "ApiId")) != "Api" {
			t.Errorf("%s event %s: %v, want an HttpApi event of Api", dashboardFunction, name, ev)
		}
		if str(get(p, "Auth", "Authorizer")) != "NONE" {
			t.Errorf("%s event %s: needs Auth: Authorizer: NONE (the page is public)", dashboardFunction, name)
		}
		keys = append(keys, strings.ToUpper(str(get(p, "Method")))+" "+str(get(p, "Path")))
	}
	slices.Sort(keys)
	want := slices.Sorted(slices.Values(dashboard.RouteKeys))
	if !slices.Equal(keys, want) {
		t.Errorf("%s serves %q, want dashboard.RouteKeys %q", dashboardFunction, keys, want)
	}
	// The page signs people in with the issuer and client the management authorizer accepts
	// (the user pool's when the stack creates one): the same expressions, and nothing else.
	vars, _ := get(fn, "Properties", "Environment", "Variables").(tree)
	authz, _ := get(tpl, "Resources", "ManagementAuthorizerFunction", "Properties", "Environment", "Variables").(tree)
	for _, k := range []string{app.EnvOIDCIssuer, app.EnvOIDCClientID} {
		if vars[k] == nil || !reflect.DeepEqual(vars[k], authz[k]) {
			t.Errorf("%s sets %s = %v; want the management authorizer's %v", dashboardFunction, k, vars[k], authz[k])
		}
	}
	if len(vars) != 2 {
		t.Errorf("%s sets %d variables, want only %s and %s", dashboardFunction, len(vars), app.EnvOIDCIssuer, app.EnvOIDCClientID)
	}
}

// checkBuiltByMakefile: sam build builds fn with the Makefile at the repository root, which
// codeURI (relative to fn's template) names.
func checkBuiltByMakefile(t *testing.T, id string, fn any, codeURI string) {
	t.Helper()
	if got := str(get(fn, "Properties", "CodeUri")); got != codeURI {
		t.Errorf("%s: CodeUri %q, want %s (the Makefile at the root builds it)", id, got, codeURI)
	}
	if got := str(get(fn, "Metadata", "BuildMethod")); got != "makefile" {
		t.Errorf("%s: Metadata.BuildMethod %q, want makefile", id, got)
	}
}

// TestFunctionsDirectory: every directory under functions/ is built by a function of
// template.yaml or of the authorizer application, and every such function has its main.go.
func TestFunctionsDirectory(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	dirs := functionDirs()
	for id, dir := range appFunctions {
		dirs[appTemplate+" "+id] = dir
	}
	built := slices.Collect(maps.Values(dirs))
	var onDisk []string
	for _, e := range entries {
		if e.IsDir() {
			onDisk = append(onDisk, e.Name())
			if !slices.Contains(built, e.Name()) {
				t.Errorf("functions/%s is not a function of template.yaml or %s (want %s)", e.Name(), appTemplate, logicalID(e.Name()))
			}
		}
	}
	for id, dir := range dirs {
		if !slices.Contains(onDisk, dir) {
			t.Errorf("%s: no functions/%s", id, dir)
		} else if _, err := os.Stat(filepath.Join(root, "functions", dir, "main.go")); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	app := resourcesOfType(mustTemplateFile(t, appTemplate), "AWS::Serverless::Function")
	for id, fn := range app {
		if _, ok := appFunctions[id]; !ok {
			t.Errorf("%s: function %s is not one of %v", appTemplate, id, appFunctions)
		}
		checkBuiltByMakefile(t, id, fn, "..")
	}
	for id := range appFunctions {
		if _, ok := app[id]; !ok {
			t.Errorf("%s: no function %s", appTemplate, id)
		}
	}
}

// TestFunctionLogGroups: every function of template.yaml has its log group, created by the stack
// (so that it holds LogRetentionDays and goes with the stack) under the same condition, and every
// log group but the API's access log and the example event rule's target belongs to a function.
func TestFunctionLogGroups(t *testing.T) {
	tpl := mustTemplate(t)
	functions := resourcesOfType(tpl, "AWS::Serverless::Function")
	owned := map[string][]string{}
	for id, lg := range resourcesOfType(tpl, "AWS::Logs::LogGroup") {
		if ref(get(lg, "Properties", "RetentionInDays")) != "LogRetentionDays" {
			t.Errorf("%s: retention is not LogRetentionDays", id)
		}
		if id == "ApiAccessLogs" || id == "RevocationEventsLog" { // the API's access log; the example event rule's target
			continue
		}
		name := str(get(lg, "Properties", "LogGroupName", "Fn::Sub"))
		fn, ok := strings.CutPrefix(name, "/aws/lambda/${")
		fn, ok2 := strings.CutSuffix(fn, "}")
		if _, isFunction := functions[fn]; !ok || !ok2 || !isFunction {
			t.Errorf("%s: LogGroupName %q is not /aws/lambda/${<a function>}", id, name)
			continue
		}
		if got, want := str(lg["Condition"]), str(functions[fn]["Condition"]); got != want {
			t.Errorf("%s: condition %q, its function %s has %q", id, got, fn, want)
		}
		owned[fn] = append(owned[fn], id)
	}
	for id := range functions {
		if len(owned[id]) != 1 {
			t.Errorf("%s: log groups %v, want exactly one", id, owned[id])
		}
	}
}

// TestRouteMainsOnlyWire: each route function's main.go declares nothing but main, and passes
// its own route's pattern to app.LambdaRoute.
func TestRouteMainsOnlyWire(t *testing.T) {
	for _, rt := range httpapi.Routes {
		path := filepath.Join(root, "functions", rt.Function, "main.go")
		fset := gotoken.NewFileSet()
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
			if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == gotoken.IMPORT {
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

// TestMakeBuildTargets: sam build runs make build-<LogicalId> for every function of both
// templates (the application's also when template.yaml nests it), which must build
// functions/<dir> into $(ARTIFACTS_DIR)/bootstrap.
func TestMakeBuildTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make not found")
	}
	targets := functionDirs()
	maps.Copy(targets, appFunctions)
	for id, dir := range targets {
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

// TestNumberParametersAccepted: every value a Number parameter of template.yaml allows (its
// MinValue, MaxValue and Default), set in the environment variable Globals passes it in, is one
// pkg/app accepts, so no deployable value fails every function's init.
func TestNumberParametersAccepted(t *testing.T) {
	tpl := mustTemplate(t)
	global, _ := get(tpl, "Globals", "Function", "Environment", "Variables").(tree)
	for name, v := range global {
		p, _ := get(tpl, "Parameters", ref(v)).(tree)
		if p == nil || p["Type"] != "Number" {
			continue
		}
		for _, bound := range []string{"MinValue", "MaxValue", "Default"} {
			value := str(p[bound])
			if value == "" {
				t.Errorf("parameter %s (%s) has no %s", ref(v), name, bound)
				continue
			}
			env := map[string]string{name: value}
			if _, err := app.ServiceConfig(func(k string) string { return env[k] }); err != nil {
				t.Errorf("parameter %s allows %s=%s, which pkg/app refuses: %v", ref(v), name, value, err)
			}
		}
	}
}

// TestEnvironmentIsRead: every variable template.yaml sets is one the code reads, and the
// management API's authorizer sets only what its role leaves tunable (its rules are in code).
func TestEnvironmentIsRead(t *testing.T) {
	tpl := mustTemplate(t)
	read := []string{
		app.EnvTableName, app.EnvPrefix, app.EnvDefaultExpiryDays, app.EnvMaxExpiryDays,
		app.EnvAllowedPermissions, app.EnvDefaultPermissions, app.EnvRevokedRetention, app.EnvAuditRetention,
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
	managementRead := []string{authorizer.EnvRole, authorizer.EnvCacheTTL, authorizer.EnvCacheSize, authorizer.EnvUsageInterval, authorizer.EnvQuotaLowPercent,
		app.EnvOIDCIssuer, app.EnvOIDCClientID, app.EnvOIDCAudience, app.EnvOIDCOwnerClaim, app.EnvOIDCAdminClaim, app.EnvOIDCAdminValue}
	vars, _ := get(tpl, "Resources", "ManagementAuthorizerFunction", "Properties", "Environment", "Variables").(tree)
	for k := range vars {
		if !slices.Contains(managementRead, k) {
			t.Errorf("ManagementAuthorizerFunction sets %s; the management authorizer's role leaves only %v to the environment", k, managementRead)
		}
	}
	if got := str(vars[authorizer.EnvRole]); got != authorizer.RoleManagement {
		t.Errorf("ManagementAuthorizerFunction: %s=%q, want %s", authorizer.EnvRole, got, authorizer.RoleManagement)
	}
}

// appParameters maps every variable the consumer authorizer reads to the parameter of
// authorizer/template.yaml that sets it: every setting of a consumer API is its instance's own.
var appParameters = map[string]string{
	app.EnvTableName:                "TableName",
	authorizer.EnvPrefix:            "TokenPrefix",
	authorizer.EnvRoutes:            "RoutePermissions",
	authorizer.EnvResponse:          "ResponseMode",
	authorizer.EnvCacheTTL:          "MemoryCacheTtlSeconds",
	authorizer.EnvCacheSize:         "MemoryCacheSize",
	authorizer.EnvUsageInterval:     "UsageWriteIntervalSeconds",
	authorizer.EnvQuotaLowPercent:   "QuotaLowPercent",
	authorizer.EnvAPIKeyHeader:      "ApiKeyHeader",
	authorizer.EnvAPIName:           "ApiName",
	authorizer.EnvRequireAPIBinding: "RequireApiBinding",
}

// TestAuthorizerApplication holds authorizer/template.yaml to what a consumer API needs: one
// function in the consumer role, every setting a parameter, its own log group, the outputs an
// API attaches, and the metadata the Serverless Application Repository publishes.
func TestAuthorizerApplication(t *testing.T) {
	tpl := mustTemplateFile(t, appTemplate)
	if get(tpl, "Transform") != "AWS::Serverless-2016-10-31" {
		t.Errorf("%s: Transform %v, want AWS::Serverless-2016-10-31", appTemplate, get(tpl, "Transform"))
	}
	fn := get(tpl, "Resources", "AuthorizerFunction")
	vars, _ := get(fn, "Properties", "Environment", "Variables").(tree)
	if got := str(vars[authorizer.EnvRole]); got != authorizer.RoleConsumer {
		t.Errorf("AuthorizerFunction: %s=%q, want %s", authorizer.EnvRole, got, authorizer.RoleConsumer)
	}
	for k, v := range vars {
		if want, ok := appParameters[k]; ok && param(v) != want {
			t.Errorf("AuthorizerFunction: %s = %v, want parameter %s", k, v, want)
		} else if !ok && k != authorizer.EnvRole {
			t.Errorf("AuthorizerFunction sets %s, which the consumer authorizer does not read", k)
		}
	}
	for k, p := range appParameters {
		if _, ok := vars[k]; !ok {
			t.Errorf("AuthorizerFunction does not set %s (parameter %s): a consumer could not configure it", k, p)
		}
	}

	params, _ := get(tpl, "Parameters").(tree)
	for _, required := range []string{"TableName", "TableArn"} {
		if _, ok := params[required]; !ok || get(params[required], "Default") != nil {
			t.Errorf("parameter %s: want it, without a default (each consumer names the apitokens table)", required)
		}
	}
	used := refsIn(get(tpl, "Resources"))
	for name := range params {
		if !used[name] {
			t.Errorf("parameter %s is used by no resource", name)
		}
	}
	for _, want := range []string{"simple", "iam"} {
		if !slices.Contains(toStrings(get(params, "ResponseMode", "AllowedValues")), want) {
			t.Errorf("ResponseMode: %s is not an allowed value", want)
		}
	}

	logs := resourcesOfType(tpl, "AWS::Logs::LogGroup")
	if len(logs) != 1 {
		t.Errorf("%d log groups, want the function's", len(logs))
	}
	for id, lg := range logs {
		if got := str(get(lg, "Properties", "LogGroupName", "Fn::Sub")); got != "/aws/lambda/${AuthorizerFunction}" {
			t.Errorf("%s: LogGroupName %q, want the function's /aws/lambda/${AuthorizerFunction}", id, got)
		}
		if ref(get(lg, "Properties", "RetentionInDays")) != "LogRetentionDays" {
			t.Errorf("%s: retention is not LogRetentionDays", id)
		}
	}
	outputs := get(tpl, "Outputs")
	if !slices.Equal(toStrings(get(outputs, "FunctionArn", "Value", "Fn::GetAtt")), []string{"AuthorizerFunction", "Arn"}) {
		t.Errorf("output FunctionArn = %v, want !GetAtt AuthorizerFunction.Arn", get(outputs, "FunctionArn", "Value"))
	}
	if ref(get(outputs, "FunctionName", "Value")) != "AuthorizerFunction" {
		t.Errorf("output FunctionName = %v, want !Ref AuthorizerFunction", get(outputs, "FunctionName", "Value"))
	}

	sar := get(tpl, "Metadata", "AWS::ServerlessRepo::Application")
	author := regexp.MustCompile(`^[a-z0-9](([a-z0-9]|-[a-z0-9])*[a-z0-9])?$`)
	for _, check := range []struct {
		what string
		ok   bool
	}{
		{"Name matches [a-zA-Z0-9-]+", regexp.MustCompile(`^[a-zA-Z0-9-]{1,140}$`).MatchString(str(get(sar, "Name")))},
		{"Description of 1-256 characters", len(str(get(sar, "Description"))) > 0 && len(str(get(sar, "Description"))) <= 256},
		{"Author in lowercase letters, digits and single hyphens", author.MatchString(str(get(sar, "Author")))},
		{"a SemanticVersion", regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(str(get(sar, "SemanticVersion")))},
	} {
		if !check.ok {
			t.Errorf("Metadata AWS::ServerlessRepo::Application: not %s: %v", check.what, sar)
		}
	}
	if readme := str(get(sar, "ReadmeUrl")); readme == "" {
		t.Error("Metadata AWS::ServerlessRepo::Application: no ReadmeUrl")
	} else if _, err := os.Stat(filepath.Join(root, filepath.Dir(appTemplate), readme)); err != nil {
		t.Errorf("ReadmeUrl %s: %v", readme, err)
	}
}

// refsIn returns the names every !Ref, ${Name} of a !Sub, and !GetAtt in v refer to.
func refsIn(v any) map[string]bool {
	out := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case tree:
			for k, x := range v {
				switch k {
				case "Ref":
					out[str(x)] = true
				case "Fn::Sub":
					s := str(x)
					if l, ok := x.([]any); ok && len(l) > 0 {
						s = str(l[0])
					}
					for _, m := range regexp.MustCompile(`\$\{([A-Za-z0-9]+)`).FindAllStringSubmatch(s, -1) {
						out[m[1]] = true
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return out
}

// TestParameterPatternsMatchTheCode: the AllowedPattern of a parameter accepts exactly what the
// code accepts, so a deployment that passes CloudFormation's check also passes the function's init.
func TestParameterPatternsMatchTheCode(t *testing.T) {
	app := mustTemplateFile(t, appTemplate)
	prefixes := []string{"tok", "t", "abc123", "a" + strings.Repeat("b", 15), "a" + strings.Repeat("b", 16), "T", "1ab", "a-b", "a_b", ""}
	apis := []string{"uploads", "billing-v2", "a", "9z", "x.y", "x_y", strings.Repeat("a", 64), strings.Repeat("a", 65), "A", "-x", ".x", "a b", "ü"}
	for _, tc := range []struct {
		tpl   tree
		name  string
		valid func(string) bool
		cases []string
		empty bool // the parameter also takes "", for "unset"
	}{
		{mustTemplate(t), "TokenPrefix", token.ValidPrefix, prefixes, false},
		{app, "TokenPrefix", token.ValidPrefix, prefixes, false},
		{app, "ApiName", token.ValidAPIName, apis, true},
	} {
		pattern := str(get(tc.tpl, "Parameters", tc.name, "AllowedPattern"))
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Errorf("%s: AllowedPattern %q: %v", tc.name, pattern, err)
			continue
		}
		for _, s := range tc.cases {
			if s == "" {
				continue
			}
			if got, want := re.MatchString(s), tc.valid(s); got != want {
				t.Errorf("%s %q: AllowedPattern %q accepts it: %v; the code: %v", tc.name, s, pattern, got, want)
			}
		}
		if re.MatchString("") != tc.empty {
			t.Errorf("%s: AllowedPattern %q accepts \"\": %v, want %v", tc.name, pattern, re.MatchString(""), tc.empty)
		}
	}
}

// TestExampleUsesTheApplication: the example API instantiates authorizer/template.yaml as another
// stack would, and lets API Gateway invoke that instance for its authorizer only.
func TestExampleUsesTheApplication(t *testing.T) {
	tpl := mustTemplate(t)
	appTpl := mustTemplateFile(t, appTemplate)
	a := get(tpl, "Resources", "ExampleAuthorizerApp")
	if get(a, "Type") != "AWS::Serverless::Application" || str(get(a, "Properties", "Location")) != appTemplate {
		t.Fatalf("ExampleAuthorizerApp: want an AWS::Serverless::Application with Location %s, got %v", appTemplate, a)
	}
	if str(get(a, "Condition")) != "ExampleApiEnabled" {
		t.Errorf("ExampleAuthorizerApp: Condition %v, want ExampleApiEnabled", get(a, "Condition"))
	}
	given, _ := get(a, "Properties", "Parameters").(tree)
	appParams, _ := get(appTpl, "Parameters").(tree)
	for name := range given {
		if _, ok := appParams[name]; !ok {
			t.Errorf("ExampleAuthorizerApp passes %s, which %s does not take", name, appTemplate)
		}
	}
	for name, p := range appParams {
		if _, ok := given[name]; !ok && get(p, "Default") == nil {
			t.Errorf("ExampleAuthorizerApp does not pass the required parameter %s", name)
		}
	}
	if ref(given["TableName"]) != "Table" || !slices.Equal(toStrings(get(given["TableArn"], "Fn::GetAtt")), []string{"Table", "Arn"}) {
		t.Errorf("ExampleAuthorizerApp: TableName %v, TableArn %v: want this stack's table", given["TableName"], given["TableArn"])
	}
	if ref(given["TokenPrefix"]) != "TokenPrefix" {
		t.Errorf("ExampleAuthorizerApp: TokenPrefix %v, want !Ref TokenPrefix", given["TokenPrefix"])
	}
	appArn := []string{"ExampleAuthorizerApp", "Outputs.FunctionArn"}
	perm := get(tpl, "Resources", "ExampleAuthorizerPermission", "Properties")
	if !slices.Equal(toStrings(get(perm, "FunctionName", "Fn::GetAtt")), appArn) || get(perm, "Principal") != "apigateway.amazonaws.com" {
		t.Errorf("ExampleAuthorizerPermission: want API Gateway allowed to invoke !GetAtt ExampleAuthorizerApp.Outputs.FunctionArn: %v", perm)
	}
	if s := str(get(perm, "SourceArn", "Fn::Sub")); !strings.HasSuffix(s, "${ExampleRestApi}/authorizers/${ExampleAuthorizer}") {
		t.Errorf("ExampleAuthorizerPermission: SourceArn %q, want the example API's authorizer only", s)
	}
}

// TestTableExports: the table's name and ARN are exported, for the consumer authorizers of
// other stacks (Fn::ImportValue <stack>-TableName and <stack>-TableArn).
func TestTableExports(t *testing.T) {
	outputs := get(mustTemplate(t), "Outputs")
	if ref(get(outputs, "TableName", "Value")) != "Table" {
		t.Errorf("output TableName = %v, want !Ref Table", get(outputs, "TableName", "Value"))
	}
	if !slices.Equal(toStrings(get(outputs, "TableArn", "Value", "Fn::GetAtt")), []string{"Table", "Arn"}) {
		t.Errorf("output TableArn = %v, want !GetAtt Table.Arn", get(outputs, "TableArn", "Value"))
	}
	for _, name := range []string{"TableName", "TableArn"} {
		if got, want := str(get(outputs, name, "Export", "Name", "Fn::Sub")), "${AWS::StackName}-"+name; got != want {
			t.Errorf("output %s: export name %q, want %q", name, got, want)
		}
	}
	if get(outputs, "AuthorizerFunctionArn") != nil {
		t.Error("output AuthorizerFunctionArn: the management API's authorizer is not for other APIs; they instantiate " + appTemplate)
	}
}

// TestHTTPAPIAuthorizer: the management API's default authorizer is ManagementAuthorizerFunction,
// payload 2.0 with simple responses, on the Authorization header, source address and route,
// cached for a parameter's time; nothing the API sets changes what the authorizer decides.
func TestHTTPAPIAuthorizer(t *testing.T) {
	tpl := mustTemplate(t)
	auth := get(tpl, "Resources", "Api", "Properties", "Auth")
	name := str(get(auth, "DefaultAuthorizer"))
	a := get(auth, "Authorizers", name)
	if a == nil {
		t.Fatalf("Api: default authorizer %q is not defined", name)
	}
	checks := map[string]bool{
		"FunctionArn is ManagementAuthorizerFunction.Arn": slices.Equal(toStrings(get(a, "FunctionArn", "Fn::GetAtt")), []string{"ManagementAuthorizerFunction", "Arn"}),
		"payload format 2.0":                              str(get(a, "AuthorizerPayloadFormatVersion")) == "2.0",
		"simple responses":                                get(a, "EnableSimpleResponses") == true,
		"identity: the Authorization header":              slices.Equal(toStrings(get(a, "Identity", "Headers")), []string{"Authorization"}),
		"cache TTL from AuthorizerCacheTtlSeconds":        ref(get(a, "Identity", "ReauthorizeEvery")) == "AuthorizerCacheTtlSeconds",
		"API Gateway may invoke the authorizer":           get(a, "EnableFunctionDefaultPermissions") == true,
		"AuthorizerCacheTtlSeconds defaults to 0":         get(tpl, "Parameters", "AuthorizerCacheTtlSeconds", "Default") == 0,
		"cache key holds address and route":               slices.Equal(toStrings(get(a, "Identity", "Context")), []string{"identity.sourceIp", "routeKey"}),
		"no stage variables (the role says what to do)":   get(tpl, "Resources", "Api", "Properties", "StageVariables") == nil,
		"throttling defaults on the $default stage":       get(tpl, "Resources", "Api", "Properties", "DefaultRouteSettings", "ThrottlingRateLimit") != nil,
		"access logging":                                  get(tpl, "Resources", "Api", "Properties", "AccessLogSettings", "DestinationArn") != nil,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Api authorizer: not %s", what)
		}
	}
}

// functionEnv is the environment CloudFormation gives function id of tpl: the Globals' variables
// and the function's own, parameters from params or else their defaults, other references from
// refs (e.g. "Table"), and variables that resolve to AWS::NoValue left out.
func functionEnv(t *testing.T, tpl tree, id string, params, refs map[string]string) []string {
	t.Helper()
	vars := tree{}
	if g, ok := get(tpl, "Globals", "Function", "Environment", "Variables").(tree); ok {
		maps.Copy(vars, g)
	}
	own, _ := get(tpl, "Resources", id, "Properties", "Environment", "Variables").(tree)
	maps.Copy(vars, own)
	var env []string
	for k, v := range vars {
		if s, ok := resolve(t, tpl, v, params, refs); ok {
			env = append(env, k+"="+s)
		}
	}
	slices.Sort(env)
	return env
}

// resolve evaluates a template value of the kinds the templates' variables use; false for
// AWS::NoValue.
func resolve(t *testing.T, tpl tree, v any, params, refs map[string]string) (string, bool) {
	t.Helper()
	if name, ok := get(v, "Ref").(string); ok {
		if name == "AWS::NoValue" {
			return "", false
		}
		if s, ok := params[name]; ok {
			return s, true
		}
		if p, ok := get(tpl, "Parameters", name).(tree); ok {
			return str(p["Default"]), true
		}
		if s, ok := refs[name]; ok {
			return s, true
		}
		t.Fatalf("!Ref %s: no value for it", name)
	}
	if branches, ok := get(v, "Fn::If").([]any); ok && len(branches) == 3 {
		if condition(t, tpl, get(tpl, "Conditions", str(branches[0])), params, refs) {
			return resolve(t, tpl, branches[1], params, refs)
		}
		return resolve(t, tpl, branches[2], params, refs)
	}
	if args, ok := get(v, "Fn::Join").([]any); ok && len(args) == 2 {
		var parts []string
		if list, ok := args[1].([]any); ok {
			for _, x := range list {
				s, _ := resolve(t, tpl, x, params, refs)
				parts = append(parts, s)
			}
		} else {
			s, _ := resolve(t, tpl, args[1], params, refs) // a CommaDelimitedList parameter
			parts = strings.Split(s, ",")
		}
		return strings.Join(parts, str(args[0])), true
	}
	if sub, ok := get(v, "Fn::Sub").(string); ok {
		var err error
		out := regexp.MustCompile(`\$\{([A-Za-z0-9:.]+)\}`).ReplaceAllStringFunc(sub, func(m string) string {
			name := m[2 : len(m)-1]
			if s, ok := params[name]; ok {
				return s
			}
			if s, ok := refs[name]; ok {
				return s
			}
			err = fmt.Errorf("!Sub %q: no value for %s", sub, name)
			return m
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, true
	}
	if _, ok := v.(tree); ok {
		t.Fatalf("cannot resolve %v", v)
	}
	return str(v), true
}

func condition(t *testing.T, tpl tree, c any, params, refs map[string]string) bool {
	t.Helper()
	if args, ok := get(c, "Fn::Equals").([]any); ok && len(args) == 2 {
		a, _ := resolve(t, tpl, args[0], params, refs)
		b, _ := resolve(t, tpl, args[1], params, refs)
		return a == b
	}
	if args, ok := get(c, "Fn::Not").([]any); ok && len(args) == 1 {
		return !condition(t, tpl, args[0], params, refs)
	}
	if args, ok := get(c, "Fn::Or").([]any); ok {
		return slices.ContainsFunc(args, func(a any) bool { return condition(t, tpl, a, params, refs) })
	}
	if args, ok := get(c, "Fn::And").([]any); ok {
		return !slices.ContainsFunc(args, func(a any) bool { return !condition(t, tpl, a, params, refs) })
	}
	if name, ok := get(c, "Condition").(string); ok {
		return condition(t, tpl, get(tpl, "Conditions", name), params, refs)
	}
	if name, ok := get(c, "Fn::Condition").(string); ok { // the YAML short form !Condition
		return condition(t, tpl, get(tpl, "Conditions", name), params, refs)
	}
	t.Fatalf("cannot evaluate the condition %v", c)
	return false
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
