package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/memstore"
	"github.com/apitokens/apitokens/pkg/token"
)

// memoryStore is the memory store of this process: empty at start, shared by the commands run
// in it (so a test can create a token with one command and read it with another), gone when it
// exits.
var memoryStore = sync.OnceValue(func() *memstore.Store { return memstore.New(nil) })

// Store kinds of --store.
const (
	storeMemory   = "memory"
	storeDynamoDB = "dynamodb"
)

// awsFlags choose the AWS account and region of the SDK's standard configuration.
type awsFlags struct {
	region, profile string
}

func (f *awsFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.region, "region", "", "AWS region (default: the SDK's configuration, e.g. AWS_REGION)")
	cmd.Flags().StringVar(&f.profile, "profile", "", "AWS shared configuration profile (default: AWS_PROFILE)")
}

// config loads the SDK's standard configuration (AWS_REGION, AWS_PROFILE, shared files, SSO,
// AWS_ENDPOINT_URL_DYNAMODB, ...) with the flags' region and profile, so the same binary reaches
// AWS or DynamoDB Local. The buildable HTTP client lets AWS_CA_BUNDLE apply.
func (f awsFlags) config(ctx context.Context) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(awshttp.NewBuildableClient())}
	if f.region != "" {
		opts = append(opts, config.WithRegion(f.region))
	}
	if f.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(f.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	return cfg, nil
}

// storeFlags choose the store of a command and, with --stack, the deployment's token settings.
type storeFlags struct {
	store, table, stack string
	aws                 awsFlags
	// getenv is the configuration open read the token settings from: the environment, or with
	// --stack the stack's parameters over it.
	getenv func(string) string
	// events receives the lifecycle events of the service open builds (serve: memory); nil: none.
	events token.Publisher
}

func (f *storeFlags) register(cmd *cobra.Command, getenv func(string) string, defaultStore string) {
	fs := cmd.Flags()
	fs.StringVar(&f.store, "store", envOr(getenv, "STORE", defaultStore), "token store: memory or dynamodb (env STORE)")
	fs.StringVar(&f.table, "table", getenv(app.EnvTableName), "DynamoDB table name (env "+app.EnvTableName+")")
	fs.StringVar(&f.stack, "stack", "", "deployed CloudFormation stack: its table (output TableName) and token settings (parameters)")
	f.aws.register(cmd)
	cmd.MarkFlagsMutuallyExclusive("stack", "table")
}

// open returns the command's store and a token service on it, configured from the environment or,
// with --stack, from the stack. A store it cannot open for want of a table, or an unknown kind,
// is a usageError.
func (f *storeFlags) open(ctx context.Context, c *cli, cmd *cobra.Command) (token.Store, *token.Service, error) {
	getenv, table, kind := c.getenv, f.table, f.store
	var awsCfg *aws.Config
	if f.stack != "" {
		if cmd.Flags().Changed("store") && kind != storeDynamoDB {
			return nil, nil, usagef("--stack reads a deployed DynamoDB table: it cannot be used with --store %s", kind)
		}
		cfg, err := f.aws.config(ctx)
		if err != nil {
			return nil, nil, err
		}
		awsCfg = &cfg
		d, err := readStack(ctx, c.cloudFormation(cfg), f.stack)
		if err != nil {
			return nil, nil, err
		}
		for _, w := range d.overridden(c.getenv) {
			fmt.Fprintln(c.stderr, "warning:", w)
		}
		getenv, table, kind = d.getenv(c.getenv), d.table, storeDynamoDB
	}
	cfg, err := app.ServiceConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	f.getenv = getenv
	cfg.Events = f.events
	var store token.Store
	switch kind {
	case storeMemory:
		store = memoryStore()
	case storeDynamoDB:
		if table == "" {
			return nil, nil, usagef("the dynamodb store needs a table: set --table, %s or --stack", app.EnvTableName)
		}
		if awsCfg == nil {
			cfg, err := f.aws.config(ctx)
			if err != nil {
				return nil, nil, err
			}
			awsCfg = &cfg
		}
		store = dynamo.New(dynamodb.NewFromConfig(*awsCfg), table, dynamo.Options{})
	default:
		return nil, nil, usagef("unknown store %q: use memory or dynamodb", kind)
	}
	if kind == storeMemory && f.events != nil {
		// No stream to publish the quota events the memory store records: the limiter does.
		cfg.Limits.Publish = f.events.Publish
	}
	svc, err := token.NewService(store, cfg)
	return store, svc, err
}

// describe says which store the command uses, for messages.
func (f *storeFlags) describe() string {
	switch {
	case f.stack != "":
		return "the table of stack " + f.stack
	case f.store == storeMemory:
		return "the memory store"
	}
	return "table " + f.table
}

// envVar is an environment variable as help lists it.
type envVar struct{ name, meaning string }

// Environment variables by what reads them; envHelp lists them in a command's help.
var (
	storeEnv = []envVar{
		{"STORE", "token store: memory or dynamodb (--store)"},
		{app.EnvTableName, "DynamoDB table (--table)"},
	}
	tokenEnv = []envVar{
		{app.EnvPrefix, "prefix of every token; default tok"},
		{app.EnvDefaultExpiryDays, "lifetime of a token created without --expires-in; 0 = never; default 365"},
		{app.EnvMaxExpiryDays, "longest lifetime a create or update may ask for; 0 = no maximum"},
		{app.EnvAllowedPermissions, "comma-separated permissions tokens may carry; empty = any"},
		{app.EnvDefaultPermissions, "permissions of a token created without --permissions; default read"},
		{app.EnvRevokedRetention, "days a revoked token stays listed; default 30"},
		{app.EnvAuditRetention, "days an audit event is kept; default 400"},
	}
	awsEnv = []envVar{
		{"AWS_REGION, AWS_PROFILE, AWS_*", "the AWS SDK's standard configuration and credentials (--region, --profile)"},
		{"AWS_ENDPOINT_URL_DYNAMODB", "another DynamoDB endpoint, e.g. DynamoDB Local"},
		{"AWS_CA_BUNDLE", "extra certificate authorities for AWS endpoints"},
	}
	serveEnv = []envVar{
		{"ADDR", "listen address (--addr); default 127.0.0.1:8080"},
		{"AUTH_CACHE_TTL_SECONDS", "management authorizer's token cache TTL; default 0 (no cache)"},
		{"AUTH_CACHE_SIZE", "tokens the management authorizer caches at most; default 10000"},
		{"USAGE_WRITE_INTERVAL_SECONDS", "least time between two usage writes per token; default 60"},
		{app.EnvOIDCIssuer, "OpenID Connect issuer people sign in with (ID token as bearer); unset = sign-in off"},
		{app.EnvOIDCClientID, "the dashboard's public client id at that issuer"},
		{app.EnvOIDCAudience, "the aud ID tokens must hold; default OIDC_CLIENT_ID"},
		{app.EnvOIDCOwnerClaim, "the claim naming a person's owner; default sub"},
		{app.EnvOIDCAdminClaim, "with OIDC_ADMIN_VALUE: a claim (string or array) that makes a person admin"},
		{app.EnvOIDCAdminValue, "the value OIDC_ADMIN_CLAIM must be or hold, e.g. apitokens-admin"},
		{app.EnvCORSAllowedOrigins, "comma-separated origins whose pages may call the API; unset = none"},
		{app.EnvLeakAction, "what POST /leaks does to a confirmed token: revoke or disable; default revoke"},
		{app.EnvLeakKeysURL, "where POST /leaks fetches the signing keys; default GitHub's secret scanning keys"},
		{app.EnvSelfRevokeLimit, "POST /revoke calls per minute per address; default 10"},
	}
	allEnv = concat(storeEnv, tokenEnv, awsEnv, serveEnv)
	// commandEnv is the environment of a command with store flags.
	commandEnv = concat(storeEnv, tokenEnv, awsEnv)
)

func concat(lists ...[]envVar) []envVar {
	var out []envVar
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// envHelp formats vars as an aligned list, noting that --stack replaces the token settings.
func envHelp(vars ...envVar) string {
	width := 0
	for _, v := range vars {
		width = max(width, len(v.name))
	}
	var b strings.Builder
	stackNote := false
	for _, v := range vars {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, v.name, v.meaning)
		stackNote = stackNote || v.name == app.EnvPrefix
	}
	if stackNote {
		fmt.Fprintf(&b, "  With --stack, %s and the token settings come from the stack instead.\n", app.EnvTableName)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
