// Command apitokens runs the management API locally and administers a token store:
//
//	apitokens serve [--addr 127.0.0.1:8080] [--store memory|dynamodb --table NAME]
//	apitokens create --owner O --name N --permissions a,b [--expires-in DAYS] [--env live] [--store ... --table ...]
//	apitokens audit [--owner O] [--token ID] [--since T] [--until T] [--limit N] [--json] [--store ... --table ...]
//	apitokens table create --table NAME
//
// It exits 2 on a usage error, 1 when a command fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/apitokens/apitokens/pkg/app"
	"github.com/apitokens/apitokens/pkg/authorizer"
	"github.com/apitokens/apitokens/pkg/dynamo"
	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "apitokens:", err)
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  apitokens serve [--addr ADDR] [--store memory|dynamodb] [--table NAME]
  apitokens create --owner OWNER --name NAME --permissions a,b [--expires-in DAYS] [--env LABEL] [--store memory|dynamodb] [--table NAME]
  apitokens audit [--owner OWNER] [--token ID] [--since TIME] [--until TIME] [--limit N] [--json] [--store memory|dynamodb] [--table NAME]
  apitokens table create --table NAME

examples:
  apitokens table create --table apitokens
  apitokens create --table apitokens --owner ops --name root --permissions admin,manage
  apitokens audit --table apitokens --owner ops --since 2026-01-01T00:00:00Z
  apitokens audit --table apitokens --token 4f9Xa1bC2dE3fG4h --json

Each command's flags: apitokens COMMAND -h. Exit status 2 is a usage error, 1 a failure.`

// run executes one command; it returns when the command is done or ctx is cancelled. A command
// line it cannot run is a usageError.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("%s", usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "create":
		return create(ctx, args[1:], getenv, stdout, stderr)
	case "audit":
		return audit(ctx, args[1:], getenv, stdout, stderr)
	case "table":
		if len(args) < 2 || args[1] != "create" {
			return usagef("%s", usage)
		}
		return createTable(ctx, args[2:], getenv, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usagef("unknown command %q\n%s", args[0], usage)
}

// usageError is a command line that cannot be run: unknown command, bad or missing flag. The
// program exits 2 on it, as gh and kubectl do, and 1 on any other error.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parseFlags parses a command's flags, and reports done when the command should stop there: after
// -h, which printed the flags, or with a usageError (the flag package has printed what was
// wrong, and the flags, to the command's stderr).
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	err = fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return true, nil
	case err != nil:
		return true, usageError{err.Error()}
	case fs.NArg() > 0:
		return true, usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return false, nil
}

// failure is the error of a failed service call, for the operator: the message a client would
// get, or for an internal error (the store unreachable, access denied) the error itself.
func failure(err error) error {
	if token.ErrorCode(err) == token.EINTERNAL {
		return err
	}
	return errors.New(token.ErrorMessage(err))
}

// storeFlags are the flags that choose a store, shared by every command.
type storeFlags struct {
	store, table string
}

func (f *storeFlags) register(fs *flag.FlagSet, getenv func(string) string, defaultStore string) {
	fs.StringVar(&f.store, "store", envOr(getenv, "STORE", defaultStore), "token store: memory or dynamodb (env STORE)")
	fs.StringVar(&f.table, "table", getenv(app.EnvTableName), "DynamoDB table name (env "+app.EnvTableName+")")
}

func (f *storeFlags) open(ctx context.Context, getenv func(string) string) (token.Store, *token.Service, error) {
	cfg, err := app.ServiceConfig(getenv)
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, f.store, f.table)
	if err != nil {
		return nil, nil, err
	}
	svc, err := token.NewService(store, cfg)
	return store, svc, err
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "ADDR", "127.0.0.1:8080"), "listen address (env ADDR)")
	adminOwner := fs.String("admin-owner", "admin", "owner of the admin token created at start")
	var sf storeFlags
	sf.register(fs, getenv, "memory")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	store, svc, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}
	// Management calls are authenticated by the management authorizer's own code and rules
	// (authorizer.RoleManagement), so what works here is what runs in AWS.
	authCfg, err := authorizer.ConfigFromEnv(func(name string) string {
		if name == authorizer.EnvRole {
			return authorizer.RoleManagement
		}
		return getenv(name)
	})
	if err != nil {
		return err
	}
	authCfg.Prefix, authCfg.Logger = svc.Prefix(), logger
	authz := authorizer.New(store, authCfg)
	api := &httpapi.API{Service: svc, Authenticate: authz.AuthenticateRequest, Logger: logger}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	base := "http://" + ln.Addr().String()

	if sf.store == "memory" {
		_, admin, err := svc.Create(ctx, cliPrincipal(), token.CreateInput{
			Owner:       *adminOwner,
			Name:        "admin (apitokens serve)",
			Permissions: []string{token.PermAdmin, token.PermManage},
		})
		if err != nil {
			ln.Close()
			return fmt.Errorf("create admin token: %w", err)
		}
		fmt.Fprintf(stdout, "apitokens listening on %s (memory store: tokens vanish when it stops)\n\n", base)
		fmt.Fprintf(stdout, "Admin token: %s\n\n", admin)
		fmt.Fprintf(stdout, "Try:\n  export TOKEN=%s\n  curl -s -X POST %s/tokens -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{\"name\":\"ci\",\"permissions\":[\"upload\"],\"expiresIn\":30}'\n  curl -s %s/tokens -H \"Authorization: Bearer $TOKEN\"\n\n", admin, base, base)
	} else {
		fmt.Fprintf(stdout, "apitokens listening on %s (%s store, table %s); create a first token with `apitokens create`\n", base, sf.store, sf.table)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func create(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	owner := fs.String("owner", "", "owner of the token (required)")
	name := fs.String("name", "", "name of the token (required)")
	perms := fs.String("permissions", "", "comma-separated permissions, e.g. admin,manage (required)")
	expiresIn := fs.Int("expires-in", 0, "lifetime in days; 0 for the deployment default")
	env := fs.String("env", "", "environment label in the token prefix, e.g. live")
	var sf storeFlags
	sf.register(fs, getenv, "dynamodb")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *owner == "" || *name == "" || *perms == "" {
		return usagef("create needs --owner, --name and --permissions")
	}
	_, svc, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}
	in := token.CreateInput{Owner: *owner, Name: *name, Permissions: strings.Split(*perms, ","), Env: *env}
	if *expiresIn != 0 {
		in.Lifetime.Days = expiresIn
	}
	t, plaintext, err := svc.Create(ctx, cliPrincipal(), in)
	if err != nil {
		return failure(err)
	}
	if sf.store == "memory" {
		fmt.Fprintln(stderr, "warning: the memory store forgets this token when the command exits; use --store dynamodb")
	}
	expires := "never"
	if !t.ExpiresAt.IsZero() {
		expires = t.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "Token: %s\nID: %s\nOwner: %s\nPermissions: %s\nExpires: %s\n", plaintext, t.ID, t.Owner, strings.Join(t.Permissions, ","), expires)
	return nil
}

func createTable(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("table create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	table := fs.String("table", getenv(app.EnvTableName), "DynamoDB table name (env "+app.EnvTableName+")")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if *table == "" {
		return usagef("table create needs --table")
	}
	client, err := newDynamoClient(ctx)
	if err != nil {
		return err
	}
	if err := dynamo.CreateTable(ctx, client, *table); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "table %s is active with TTL enabled\n", *table)
	return nil
}

// cliRequestID is the request id of the changes made at the command line, in their audit events.
const cliRequestID = "cli"

// cliPrincipal acts for the operator at the command line, who holds the store's credentials and
// so may create any token and read every owner's audit trail, as an admin token would. It has no
// token and no owner: its audit events name no actor (createdBy is null), and request id "cli".
func cliPrincipal() token.Principal {
	return token.Principal{Permissions: []string{token.PermAdmin}, RequestID: cliRequestID}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
