package main

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/apitokens/apitokens/pkg/app"
)

// stackDescriber is the part of the CloudFormation API that --stack reads; the SDK's client
// implements it, and tests feed it a recorded answer.
type stackDescriber interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

// newCloudFormation is the CloudFormation client of cfg's account and region.
func newCloudFormation(cfg aws.Config) stackDescriber { return cloudformation.NewFromConfig(cfg) }

// stackOutputTable is the output of template.yaml that names the token table.
const stackOutputTable = "TableName"

// stackParameters maps each parameter of template.yaml that configures the token service to the
// environment variable the template passes it to every function as (its Globals), which
// app.ServiceConfig reads.
var stackParameters = map[string]string{
	"TokenPrefix":          app.EnvPrefix,
	"DefaultExpiryDays":    app.EnvDefaultExpiryDays,
	"MaxExpiryDays":        app.EnvMaxExpiryDays,
	"AllowedPermissions":   app.EnvAllowedPermissions,
	"DefaultPermissions":   app.EnvDefaultPermissions,
	"RevokedRetentionDays": app.EnvRevokedRetention,
	"AuditRetentionDays":   app.EnvAuditRetention,
}

// deployment is what a deployed stack says about its token service.
type deployment struct {
	stack string
	table string            // output TableName
	env   map[string]string // the token settings as the functions' environment has them
}

// readStack describes the stack name and returns its table and token settings. A parameter the
// stack does not have (a stack deployed from an older template) is unset, as in its functions'
// environment, so it takes the default. Returns an error if the stack cannot be described or has
// no TableName output (it is not an apitokens stack, or its creation failed).
func readStack(ctx context.Context, stacks stackDescriber, name string) (deployment, error) {
	out, err := stacks.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		return deployment{}, fmt.Errorf("describe stack %s: %w", name, err)
	}
	if len(out.Stacks) != 1 {
		return deployment{}, fmt.Errorf("describe stack %s: %d stacks in the answer, want 1", name, len(out.Stacks))
	}
	s := out.Stacks[0]
	d := deployment{stack: name, env: map[string]string{}}
	for _, v := range stackParameters {
		d.env[v] = ""
	}
	for _, p := range s.Parameters {
		if v, ok := stackParameters[aws.ToString(p.ParameterKey)]; ok {
			d.env[v] = aws.ToString(p.ParameterValue)
		}
	}
	for _, o := range s.Outputs {
		if aws.ToString(o.OutputKey) == stackOutputTable {
			d.table = aws.ToString(o.OutputValue)
		}
	}
	if d.table == "" {
		return deployment{}, fmt.Errorf("stack %s (%s) has no %s output: is it an apitokens stack?", name, s.StackStatus, stackOutputTable)
	}
	d.env[app.EnvTableName] = d.table
	return d, nil
}

// getenv is the environment with the deployment's table and token settings in place of the
// local ones.
func (d deployment) getenv(local func(string) string) func(string) string {
	return func(name string) string {
		if v, ok := d.env[name]; ok {
			return v
		}
		return local(name)
	}
}

// overridden lists the local variables that differ from the deployment's settings, which win.
func (d deployment) overridden(local func(string) string) []string {
	var out []string
	for _, param := range slices.Sorted(maps.Keys(stackParameters)) {
		name := stackParameters[param]
		if v := local(name); v != "" && v != d.env[name] {
			out = append(out, fmt.Sprintf("%s=%q in the environment is ignored: stack %s has %s=%q", name, v, d.stack, param, d.env[name]))
		}
	}
	if v := local(app.EnvTableName); v != "" && v != d.table {
		out = append(out, fmt.Sprintf("%s=%q in the environment is ignored: stack %s has table %q", app.EnvTableName, v, d.stack, d.table))
	}
	return out
}
