// Command apitokens administers apitokens from the command line, as an admin without a token:
// it runs the management API locally (serve), creates the DynamoDB table (table create), and
// creates, lists, shows, updates, rotates, revokes and verifies tokens and reads the audit trail
// in the memory store of this process or in a DynamoDB table, named directly (--table) or read
// from the deployed CloudFormation stack with every token setting (--stack).
//
// `apitokens help` lists the commands and environment variables. It exits 0 on success, 2 on a
// usage error (unknown command or flag, a stray or missing argument, a bad flag value), and 1
// when a command fails.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/token"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apitokens:", err)
		var usage usageError
		if errors.As(err, &usage) && usage.command != "" {
			fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", usage.command)
		}
	}
	os.Exit(exitCode(err))
}

// exitCode is the process status for run's error: 0 for none, 2 for a usageError (as gh and
// kubectl do), 1 for any other.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.As(err, new(usageError)):
		return 2
	}
	return 1
}

// version is the release of this build, set by the linker:
//
//	go build -ldflags "-X main.version=v1.2.0" ./cmd/apitokens
var version = "dev"

// versionString is version with what the binary knows of its build: the module version (set by
// go install module@version), the VCS revision, the Go release.
func versionString() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var about []string
	if v := info.Main.Version; v != "" && v != "(devel)" {
		about = append(about, "module "+v)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if settings["vcs.modified"] == "true" {
			rev += "+modified"
		}
		about = append(about, "commit "+rev)
	}
	about = append(about, info.GoVersion)
	return version + " (" + strings.Join(about, ", ") + ")"
}

// run executes one command line; it returns when the command is done or ctx is cancelled. A
// command line it cannot run is a usageError.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, cloudFormation: newCloudFormation}
	return c.run(ctx, args)
}

// cli is one run of the program: its environment, standard streams, and the CloudFormation API
// that --stack reads (a fixture in tests).
type cli struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	cloudFormation func(aws.Config) stackDescriber
}

func (c *cli) run(ctx context.Context, args []string) error {
	root := c.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var failed commandFailed
	if errors.As(err, &failed) {
		return failed.err
	}
	var usage usageError
	if !errors.As(err, &usage) {
		// Cobra's own errors are all about the command line: an unknown command or flag, a bad
		// flag value, a missing required flag, stray or missing arguments.
		usage = usageError{msg: err.Error()}
	}
	if usage.command == "" && cmd != nil {
		usage.command = cmd.CommandPath()
	}
	return usage
}

// usageError is a command line that cannot be run. The program exits 2 on it, and 1 on any other
// error.
type usageError struct {
	msg     string
	command string // the command whose usage was wrong, for the hint to run its --help
}

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{msg: fmt.Sprintf(format, args...)} }

// commandFailed is the error of a command that ran, as opposed to one cobra refused; see action.
type commandFailed struct{ err error }

func (e commandFailed) Error() string { return e.err.Error() }

// action adapts a command's function to cobra: its usage errors stay usage errors, any other
// error is the command's failure.
func action(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		if err == nil || errors.As(err, new(usageError)) {
			return err
		}
		return commandFailed{err}
	}
}

// noArgs refuses any positional argument, naming the first.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

// oneArg wants exactly one positional argument, described by what in the error.
func oneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("%s: missing %s", cmd.CommandPath(), what)
		case len(args) > 1:
			return usagef("%s: unexpected argument %q after the %s", cmd.CommandPath(), args[1], what)
		}
		return nil
	}
}

// Command groups of the top-level help.
const (
	groupTokens = "tokens"
	groupServer = "server"
)

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "apitokens",
		Short: "Administer API tokens: serve the API, create and manage tokens, read the audit trail",
		Long: `apitokens administers API tokens from the command line. The operator acts as an admin
without a token: changes made here appear in the audit trail with request id "cli".

Commands other than serve use the DynamoDB table named by --table (or TABLE_NAME), or the one of
a deployed stack with --stack, which also takes every token setting from the stack. The memory
store (--store memory) lasts as long as the process: useful with serve, and for trying commands.`,
		Example: `  apitokens table create --table apitokens
  apitokens create --stack apitokens --owner ops --name root --permissions admin,manage --expires-in never
  apitokens list --stack apitokens --owner ops
  apitokens serve`,
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Annotations:   map[string]string{annotationEnv: envHelp(allEnv...)},
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(c.stderr)
			_ = cmd.Help()
			return usagef("missing command")
		},
	}
	root.SetIn(c.stdin)
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.SetVersionTemplate("apitokens {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{msg: err.Error(), command: cmd.CommandPath()}
	})
	root.CompletionOptions.DisableDefaultCmd = true // completionCommand replaces it
	root.SetHelpCommand(helpCommand())
	root.AddGroup(
		&cobra.Group{ID: groupTokens, Title: "Token commands:"},
		&cobra.Group{ID: groupServer, Title: "Server and table commands:"},
	)
	for _, cmd := range []*cobra.Command{
		c.createCommand(), c.listCommand(), c.showCommand(), c.updateCommand(), c.rotateCommand(),
		c.revokeCommand(), c.verifyCommand(), c.auditCommand(),
	} {
		cmd.GroupID = groupTokens
		root.AddCommand(cmd)
	}
	for _, cmd := range []*cobra.Command{c.serveCommand(), c.tableCommand(), c.remindCommand()} {
		cmd.GroupID = groupServer
		root.AddCommand(cmd)
	}
	root.AddCommand(completionCommand())
	return root
}

// helpCommand is `apitokens help [command]`: cobra's, except that an unknown topic is a usage
// error rather than the top-level help with status 0.
func helpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help prints the description, usage, examples, flags and environment variables of a command.",
		Example: `  apitokens help
  apitokens help create
  apitokens help table create`,
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := cmd.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usageError{msg: fmt.Sprintf("unknown help topic %q", strings.Join(args, " ")), command: "apitokens help"}
			}
			target.InitDefaultHelpFlag()
			target.InitDefaultVersionFlag()
			return target.Help()
		},
	}
}

// completionCommand prints a shell completion script.
func completionCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish|powershell",
		Short:     "Print the shell completion script",
		Long:      "Completion prints a script that completes apitokens' commands and flags in the given shell.",
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      oneArg("shell (bash, zsh, fish or powershell)"),
		Example: `  source <(apitokens completion bash)
  apitokens completion zsh > "${fpath[1]}/_apitokens"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return usagef("completion: unknown shell %q: want bash, zsh, fish or powershell", args[0])
		},
	}
}

// annotationEnv is the command annotation that usageTemplate prints as its environment variables.
const annotationEnv = "environment"

// usageTemplate is cobra's, with the command's environment variables after its flags, and
// without a usage line of its own for a command that only groups others (runnable only to
// report the missing command).
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{with index .Annotations "environment"}}

Environment variables:
{{.}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// failure is the error of a failed service call, for the operator: the message a client would
// get, or for an internal error (the store unreachable, access denied) the error itself.
func failure(err error) error {
	if token.ErrorCode(err) == token.EINTERNAL {
		return err
	}
	return errors.New(token.ErrorMessage(err))
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
