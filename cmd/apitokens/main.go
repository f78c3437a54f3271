// Command apitokens runs the management API locally and administers a token store:
//
//	apitokens serve [--addr 127.0.0.1:8080] [--store memory|dynamodb --table NAME]
//	apitokens create --owner O --name N --permissions a,b [--expires-in DAYS] [--env live] [--store ... --table ...]
//	apitokens table create --table NAME
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
		os.Exit(1)
	}
}

const usage = `usage:
  apitokens serve [--addr ADDR] [--store memory|dynamodb] [--table NAME]
  apitokens create --owner OWNER --name NAME --permissions a,b [--expires-in DAYS] [--env LABEL] [--store memory|dynamodb] [--table NAME]
  apitokens table create --table NAME`

// run executes one command; it returns when the command is done or ctx is cancelled.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "create":
		return create(ctx, args[1:], getenv, stdout, stderr)
	case "table":
		if len(args) < 2 || args[1] != "create" {
			return errors.New(usage)
		}
		return createTable(ctx, args[2:], getenv, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
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
	if err := fs.Parse(args); err != nil {
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
		_, admin, err := svc.Create(ctx, rootPrincipal(*adminOwner), token.CreateInput{
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *owner == "" || *name == "" || *perms == "" {
		return errors.New("create needs --owner, --name and --permissions")
	}
	_, svc, err := sf.open(ctx, getenv)
	if err != nil {
		return err
	}
	in := token.CreateInput{Owner: *owner, Name: *name, Permissions: strings.Split(*perms, ","), Env: *env}
	if *expiresIn != 0 {
		in.Lifetime.Days = expiresIn
	}
	t, plaintext, err := svc.Create(ctx, rootPrincipal(*owner), in)
	if err != nil {
		return errors.New(token.ErrorMessage(err))
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *table == "" {
		return errors.New("table create needs --table")
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

// rootPrincipal acts for the operator at the command line, who holds the store's credentials
// and so may create any token, as a root token would.
func rootPrincipal(owner string) token.Principal {
	return token.Principal{Owner: owner, Permissions: []string{token.PermAdmin}}
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}
