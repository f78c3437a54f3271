package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/smithy-go"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/dynamo/dynamotest"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// recordedStacks answers DescribeStacks from testdata/describe-stacks.json, the answer of
// `aws cloudformation describe-stacks --stack-name apitokens` for a stack deployed from
// template.yaml with TokenPrefix=acme, and as CloudFormation does for a stack it does not have.
type recordedStacks struct {
	stacks []types.Stack
	asked  []string
}

const (
	recordedStack = "apitokens"
	recordedTable = "apitokens-Table-1R2S3T4U5V6W7"
)

func loadRecordedStacks(t *testing.T) *recordedStacks {
	t.Helper()
	b, err := os.ReadFile("testdata/describe-stacks.json")
	if err != nil {
		t.Fatal(err)
	}
	var out cloudformation.DescribeStacksOutput
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // every field of the recording is one of the SDK's
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("testdata/describe-stacks.json is not a DescribeStacks answer: %v", err)
	}
	return &recordedStacks{stacks: out.Stacks}
}

func (r *recordedStacks) DescribeStacks(_ context.Context, in *cloudformation.DescribeStacksInput, _ ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error) {
	name := aws.ToString(in.StackName)
	r.asked = append(r.asked, name)
	for _, s := range r.stacks {
		if aws.ToString(s.StackName) == name || aws.ToString(s.StackId) == name {
			return &cloudformation.DescribeStacksOutput{Stacks: []types.Stack{s}}, nil
		}
	}
	return nil, &smithy.GenericAPIError{Code: "ValidationError", Message: "Stack with id " + name + " does not exist"}
}

// parameter sets the recorded stack's parameter key to value, or removes it for a nil value.
func (r *recordedStacks) parameter(key string, value *string) {
	s := &r.stacks[0]
	s.Parameters = slices.DeleteFunc(s.Parameters, func(p types.Parameter) bool { return aws.ToString(p.ParameterKey) == key })
	if value != nil {
		s.Parameters = append(s.Parameters, types.Parameter{ParameterKey: aws.String(key), ParameterValue: value})
	}
}

// runWithStacks runs the command line args with stacks as the CloudFormation API.
func runWithStacks(stacks stackDescriber, getenv func(string) string, args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	c := &cli{getenv: getenv, stdin: noInput(), stdout: &stdout, stderr: &stderr,
		cloudFormation: func(aws.Config) stackDescriber { return stacks }}
	err := c.run(context.Background(), args)
	return stdout.String(), stderr.String(), err
}

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

// TestReadStack: --stack takes the table from the TableName output and every token setting from
// the stack's parameters, whatever the local environment says; other variables pass through.
func TestReadStack(t *testing.T) {
	stacks := loadRecordedStacks(t)
	d, err := readStack(context.Background(), stacks, recordedStack)
	if err != nil {
		t.Fatal(err)
	}
	if d.table != recordedTable || !slices.Equal(stacks.asked, []string{recordedStack}) {
		t.Fatalf("table %q after asking for %q; want %q from stack %q", d.table, stacks.asked, recordedTable, recordedStack)
	}
	local := envOf(map[string]string{
		app.EnvPrefix: "tok", app.EnvDefaultExpiryDays: "365", app.EnvTableName: "local",
		app.EnvAuditRetention: "180", "AWS_REGION": "eu-west-1",
	})
	getenv := d.getenv(local)
	cfg, err := app.ServiceConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != "acme" || cfg.DefaultLifetime != 90*token.Day || cfg.MaxLifetime != 0 ||
		!slices.Equal(cfg.AllowedPermissions, []string{"read", "upload", "download"}) ||
		!slices.Equal(cfg.DefaultPermissions, []string{"download"}) || cfg.RevokedRetention != 7*token.Day ||
		cfg.AuditRetention != 180*token.Day {
		t.Errorf("settings from the stack: %+v", cfg)
	}
	if getenv(app.EnvTableName) != recordedTable || getenv("AWS_REGION") != "eu-west-1" {
		t.Errorf("TABLE_NAME %q, AWS_REGION %q; want the stack's table and the local region", getenv(app.EnvTableName), getenv("AWS_REGION"))
	}
	warnings := strings.Join(d.overridden(local), "\n")
	for _, want := range []string{`TOKEN_PREFIX="tok"`, `TokenPrefix="acme"`, `DEFAULT_EXPIRY_DAYS="365"`, `TABLE_NAME="local"`} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings %q do not name %s", warnings, want)
		}
	}
	if strings.Contains(warnings, app.EnvAuditRetention) {
		t.Errorf("warnings %q name a variable equal to the stack's", warnings)
	}

	// Every variable of the token service's configuration comes from a parameter.
	tokenSettings := []string{app.EnvPrefix, app.EnvDefaultExpiryDays, app.EnvMaxExpiryDays, app.EnvAllowedPermissions,
		app.EnvDefaultPermissions, app.EnvRevokedRetention, app.EnvAuditRetention}
	if got := slices.Sorted(maps.Values(stackParameters)); !slices.Equal(got, slices.Sorted(slices.Values(tokenSettings))) {
		t.Errorf("--stack sets %v; want every token setting, %v", got, tokenSettings)
	}

	// Each setting, changed alone in the stack, reaches the service's configuration.
	for param, env := range stackParameters {
		stacks := loadRecordedStacks(t)
		stacks.parameter(param, aws.String("12"))
		d, err := readStack(context.Background(), stacks, recordedStack)
		if err != nil || d.getenv(noEnv)(env) != "12" {
			t.Errorf("parameter %s=12 gives %s=%q (%v)", param, env, d.getenv(noEnv)(env), err)
		}
	}

	// A stack from an older template, without a parameter: its functions have the default, and
	// so does the command line, whatever the local environment.
	stacks.parameter("AuditRetentionDays", nil)
	d, err = readStack(context.Background(), stacks, recordedStack)
	if err != nil {
		t.Fatal(err)
	}
	if v := d.getenv(local)(app.EnvAuditRetention); v != "" {
		t.Errorf("%s = %q without the parameter; want unset (the default)", app.EnvAuditRetention, v)
	}
}

// TestStackParametersMatchTheTemplate: every parameter --stack reads is one template.yaml
// declares and passes to every function as the variable the command line maps it to.
func TestStackParametersMatchTheTemplate(t *testing.T) {
	tmpl, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for param, env := range stackParameters {
		if !regexp.MustCompile(`(?m)^  `+param+`:$`).Match(tmpl) || !regexp.MustCompile(`(?m)^ +`+env+`: !Ref `+param+`$`).Match(tmpl) {
			t.Errorf("template.yaml does not declare parameter %s and pass it as %s", param, env)
		}
	}
	if !regexp.MustCompile(`(?m)^  ` + stackOutputTable + `:\n(?: {4}.*\n)*? {4}Value: !Ref Table$`).Match(tmpl) {
		t.Errorf("template.yaml has no output %s naming the table", stackOutputTable)
	}
}

func TestStackErrors(t *testing.T) {
	stacks := loadRecordedStacks(t)
	_, _, err := runWithStacks(stacks, noEnv, "list", "--stack", "nosuch", "--owner", "ops", "--region", "eu-west-1")
	if err == nil || errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "Stack with id nosuch does not exist") {
		t.Errorf("--stack nosuch: %v; want CloudFormation's answer, exit 1", err)
	}
	failed := loadRecordedStacks(t)
	failed.stacks[0].Outputs, failed.stacks[0].StackStatus = nil, types.StackStatusRollbackComplete
	_, _, err = runWithStacks(failed, noEnv, "list", "--stack", recordedStack, "--owner", "ops", "--region", "eu-west-1")
	if err == nil || !strings.Contains(err.Error(), "ROLLBACK_COMPLETE") || !strings.Contains(err.Error(), "TableName") {
		t.Errorf("--stack of a stack without outputs: %v; want an error naming its status and TableName", err)
	}
}

// TestStackCommandsDynamoDB bootstraps a deployment from its stack description: the first admin
// token carries the stack's prefix (acme_, not the local tok_), never expires if asked, and the
// stack's defaults and allow-list apply to the next one.
func TestStackCommandsDynamoDB(t *testing.T) {
	useEndpoint(t, dynamotest.MustEndpoint(t))
	mustRun(t, os.Getenv, "table", "create", "--table", recordedTable)
	stacks := loadRecordedStacks(t)
	local := func(name string) string {
		if name == app.EnvPrefix {
			return "tok"
		}
		return os.Getenv(name)
	}
	owner := uniqueOwner()
	stack := []string{"--stack", recordedStack}
	runJSON := func(v any, args ...string) string {
		t.Helper()
		stdout, stderr, err := runWithStacks(stacks, local, append(args, stack...)...)
		if err != nil {
			t.Fatalf("apitokens %q: %v\n%s", args, err, stderr)
		}
		if err := json.Unmarshal([]byte(stdout), v); err != nil {
			t.Fatalf("apitokens %q printed %q: %v", args, stdout, err)
		}
		return stderr
	}

	var root httpapi.WithSecret
	stderr := runJSON(&root, "create", "--owner", owner, "--name", "root", "--permissions", "admin,manage", "--expires-in", "never", "--json")
	if !strings.HasPrefix(root.Token, "acme_") || root.ExpiresAt != nil {
		t.Errorf("bootstrap token %s expiring %v; want acme_... never expiring", root.Token, root.ExpiresAt)
	}
	if !strings.Contains(stderr, `TOKEN_PREFIX="tok" in the environment is ignored`) {
		t.Errorf("no warning about the local TOKEN_PREFIX: %q", stderr)
	}

	var ci httpapi.WithSecret
	runJSON(&ci, "create", "--owner", owner, "--name", "ci", "--json")
	if !strings.HasPrefix(ci.Token, "acme_") || !slices.Equal(ci.Permissions, []string{"download"}) {
		t.Errorf("token with the stack's defaults: %s %v; want acme_... [download]", ci.Token, ci.Permissions)
	}
	within(t, "expiresAt (DefaultExpiryDays=90)", ci.ExpiresAt, time.Now().Add(90*token.Day))
	if _, _, err := runWithStacks(stacks, local, append([]string{"create", "--owner", owner, "--name", "x", "--permissions", "delete"}, stack...)...); err == nil || !strings.Contains(err.Error(), "delete") {
		t.Errorf("create with a permission the stack does not allow: %v", err)
	}

	var v httpapi.VerifyResponse
	runJSON(&v, "verify", root.Token, "--json")
	if !v.Valid || v.TokenID != root.ID {
		t.Errorf("verify --stack of the bootstrap token: %+v", v)
	}
	// Without --stack the local prefix applies, and the deployment's tokens look malformed: the
	// mismatch --stack exists to prevent.
	out, _, err := runWithStacks(stacks, local, "verify", root.Token, "--table", recordedTable)
	if err == nil || !strings.Contains(out, token.CodeMalformed) {
		t.Errorf("verify with the local prefix: %v %s; want MALFORMED", err, out)
	}
	var listed []httpapi.TokenView
	runJSON(&listed, "list", "--owner", owner, "--json")
	if len(listed) != 2 || listed[0].ID != ci.ID || listed[1].ID != root.ID {
		t.Errorf("list --stack: %+v", listed)
	}
	if !slices.Equal(stacks.asked, slices.Repeat([]string{recordedStack}, len(stacks.asked))) || len(stacks.asked) != 5 {
		t.Errorf("stacks described: %q; want %s once per command", stacks.asked, recordedStack)
	}
}
