package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/example"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/lifecycle"
	"github.com/apitokens/apitokens/pkg/token"
)

func (c *cli) serveCommand() *cobra.Command {
	var sf storeFlags
	var addr, adminOwner string
	var exampleCacheTTL time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the management API locally, as deployed, until interrupted",
		Long: `Serve runs the management API on ADDR with the management authorizer's own code and rules,
so what works here works on API Gateway. On the memory store (the default) it creates an admin
token at start and prints it with curl examples; tokens vanish when it stops. On DynamoDB it
serves the table's tokens: create a first one with "apitokens create".

At / it serves the dashboard, the web page people manage their tokens with: sign in with a token
that has manage or admin (the admin token above), or with the identity provider when OIDC_ISSUER
and OIDC_CLIENT_ID are set.

Next to it, under /example/, it serves the example API another team would own (GET /whoami, and
POST /upload for tokens with upload), protected by a consumer authorizer of its own (API name
example) as on AWS: a token bound to other APIs is refused 403 FORBIDDEN_API, and a revoked one
401 once the example authorizer's memory cache (--example-cache-ttl) has passed.

Lifecycle events (token.created, token.revoked, ...; on AWS sent to EventBridge) are logged, and
the last 1000 are served at GET /events to an admin token, as EventBridge would deliver them.
The expiry reminders (token.expiring, EXPIRY_REMINDER_DAYS before expiry) run every
EXPIRY_REMINDER_INTERVAL (default 1m on the memory store; off on DynamoDB unless set, so that a
local server never takes the deployed function's reminders).`,
		Example: `  apitokens serve
  apitokens serve --addr 127.0.0.1:9000 --admin-owner ops
  apitokens serve --example-cache-ttl 0
  apitokens serve --store dynamodb --table apitokens
  apitokens serve --stack apitokens --region eu-west-1`,
		Args:        noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(concat(serveEnv, commandEnv)...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			return c.serve(cmd.Context(), cmd, &sf, addr, adminOwner, exampleCacheTTL)
		}),
	}
	cmd.Flags().StringVar(&addr, "addr", envOr(c.getenv, "ADDR", "127.0.0.1:8080"), "listen address (env ADDR)")
	cmd.Flags().StringVar(&adminOwner, "admin-owner", "admin", "owner of the admin token created at start (memory store)")
	cmd.Flags().DurationVar(&exampleCacheTTL, "example-cache-ttl", authorizer.DefaultCacheTTL,
		"memory cache of the example API's authorizer (a consumer's default): how long a revoked token may still work there; 0 for none")
	sf.register(cmd, c.getenv, storeMemory)
	return cmd
}

func (c *cli) serve(ctx context.Context, cmd *cobra.Command, sf *storeFlags, addr, adminOwner string, exampleCacheTTL time.Duration) error {
	logger := slog.New(slog.NewTextHandler(c.stderr, nil))
	if exampleCacheTTL < 0 || exampleCacheTTL > maxExampleCacheTTL {
		return usagef("--example-cache-ttl %s: want 0 to %s", exampleCacheTTL, maxExampleCacheTTL)
	}
	// Lifecycle events are logged and kept for GET /events (admin only), whatever the store.
	events := lifecycle.NewMemory(logger, 0)
	sf.events = events
	store, svc, err := sf.open(ctx, c, cmd)
	if err != nil {
		return err
	}
	// Expiry reminders (token.expiring) to the same memory, as the scheduled function sends them.
	interval, err := reminderInterval(c.getenv, sf.store == storeMemory && sf.stack == "")
	if err != nil {
		return err
	}
	if err := startReminders(ctx, store, events, sf.getenv, interval, logger); err != nil {
		return err
	}
	// Management calls are authenticated by the management authorizer's own code and rules
	// (authorizer.RoleManagement), so what works here is what runs in AWS.
	managementEnv := func(name string) string {
		if name == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return c.getenv(name)
	}
	authCfg, err := authorizer.ConfigFromEnv(managementEnv)
	if err != nil {
		return err
	}
	// People sign in with the same code as on AWS too (OIDC_ISSUER, ...; off when unset).
	if authCfg.People, err = app.People(managementEnv); err != nil {
		return err
	}
	corsOrigins, err := app.CORSOriginsFromEnv(c.getenv)
	if err != nil {
		return err
	}
	authCfg.Prefix, authCfg.Logger = svc.Prefix(), logger
	if sf.store == storeMemory && sf.stack == "" {
		// No stream to publish the quota events the memory store records: the limiters do.
		authCfg.Limits.Publish = events.Publish
	}
	authz := authorizer.New(store, authCfg)
	reports, err := app.LeakVerifier(c.getenv, logger)
	if err != nil {
		return err
	}
	api := &httpapi.API{Service: svc, Authenticate: authz.AuthenticateRequest, Logger: logger, Reports: reports}
	// The example API is outside httpapi.Routes: it is not apitokens' API (nor in its OpenAPI
	// document) but one that attaches apitokens' authorizer.
	exampleAuthz, err := newExampleAuthorizer(store, svc.Prefix(), exampleCacheTTL, authCfg.Limits, logger)
	if err != nil {
		return err
	}
	// The dashboard, on the same origin as the API it calls: GET / and GET /ui/...
	dash, err := app.Dashboard(sf.getenv)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(examplePrefix+"/", exampleAPI(exampleAuthz, logger))
	dash.Register(mux)
	mux.Handle("GET /events", events.Handler(authz.AuthenticateRequest))
	mux.Handle("/", httpapi.CORS(corsOrigins, api.Handler()))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	base := "http://" + ln.Addr().String()
	exampleNote := fmt.Sprintf("Example API behind a consumer authorizer (API example, routes %s; a revoked token works there %s at most):",
		example.RoutePermissions, exampleCacheTTL)

	if sf.store == storeMemory && sf.stack == "" {
		_, admin, err := svc.Create(ctx, cliPrincipal(), token.CreateInput{
			Owner:       adminOwner,
			Name:        "admin (apitokens serve)",
			Permissions: []string{token.PermAdmin, token.PermManage},
		})
		if err != nil {
			ln.Close()
			return fmt.Errorf("create admin token: %w", err)
		}
		fmt.Fprintf(c.stdout, "apitokens listening on %s (memory store: tokens vanish when it stops)\n\n", base)
		fmt.Fprintf(c.stdout, "Admin token: %s\n", admin)
		fmt.Fprintf(c.stdout, "Dashboard:   %s/ (sign in with the admin token)\n\n", base)
		fmt.Fprintf(c.stdout, "Try:\n  export TOKEN=%s\n  curl -s -X POST %s/tokens -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{\"name\":\"ci\",\"permissions\":[\"upload\"],\"expiresIn\":30}'\n  curl -s %s/tokens -H \"Authorization: Bearer $TOKEN\"\n\n", admin, base, base)
		fmt.Fprintf(c.stdout, "%s\n  curl -s %s%s/whoami -H \"Authorization: Bearer $TOKEN\"\n\n", exampleNote, base, examplePrefix)
	} else {
		fmt.Fprintf(c.stdout, "apitokens listening on %s (%s); create a first token with `apitokens create`\n", base, sf.describe())
		fmt.Fprintf(c.stdout, "Dashboard: %s/ (sign in with a token that has manage or admin)\n", base)
		fmt.Fprintf(c.stdout, "%s %s%s/whoami, %[2]s%[3]s/upload\n", exampleNote, base, examplePrefix)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Quota leases an idle instance holds go back to their counters (token.Limiter.ReturnIdle);
	// the shutdown's forced flushes below return the rest.
	go every(ctx, time.Second, func() {
		svc.ReturnLeases(ctx, false)
		for _, a := range []*authorizer.Authorizer{authz, exampleAuthz} {
			a.ReturnLeases(ctx, false)
		}
	})
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	// Uses counted within the usage interval are written now, once the requests are answered.
	svc.FlushUsage(shutdownCtx, true)
	for _, a := range []*authorizer.Authorizer{authz, exampleAuthz} {
		a.WaitForWrites()
		a.FlushUsage(shutdownCtx, true)
	}
	return err
}

func (c *cli) tableCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "table",
		Short: "Manage the DynamoDB table of tokens",
		Long:  "Table groups the commands on the DynamoDB table itself.",
		Example: `  apitokens table create --table apitokens
  apitokens help table create`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(c.stderr)
			_ = cmd.Help()
			return usageError{msg: "table: missing command (create)", command: cmd.CommandPath()}
		},
	}
	cmd.AddCommand(c.tableCreateCommand())
	return cmd
}

func (c *cli) tableCreateCommand() *cobra.Command {
	var table string
	var af awsFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create the DynamoDB table of tokens, or complete an existing one",
		Long: `Create makes the token table (on-demand, with its owner and ref indexes), waits until it is
active and enables TTL. It is idempotent: an existing table gets what it lacks. A deployed stack
has its table already (template.yaml); this is for local tables and DynamoDB Local.`,
		Example: `  apitokens table create --table apitokens
  AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 apitokens table create --table apitokens`,
		Args: noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(concat([]envVar{
			{app.EnvTableName, "DynamoDB table (--table)"},
		}, awsEnv)...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if table == "" {
				return usagef("table create needs --table or %s", app.EnvTableName)
			}
			cfg, err := af.config(cmd.Context())
			if err != nil {
				return err
			}
			if err := dynamo.CreateTable(cmd.Context(), dynamodb.NewFromConfig(cfg), table); err != nil {
				return err
			}
			fmt.Fprintf(c.stderr, "table %s is active with TTL enabled\n", table)
			return nil
		}),
	}
	cmd.Flags().StringVar(&table, "table", c.getenv(app.EnvTableName), "DynamoDB table name (env "+app.EnvTableName+")")
	af.register(cmd)
	return cmd
}
