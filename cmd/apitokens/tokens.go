package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/apitokens/apitokens/pkg/httpapi"
	"github.com/apitokens/apitokens/pkg/token"
)

// settingsFlags are the token settings create and update take; update changes only those given.
type settingsFlags struct {
	name                     string
	permissions, apis, cidrs []string
	expiresIn                string
	enabled, autoDelete      bool
	meta                     string
	rateLimit, refill        string
	remaining                string
}

func (f *settingsFlags) register(cmd *cobra.Command, update bool) {
	fs := cmd.Flags()
	clear, clearMeta := "", ""
	if update {
		clear, clearMeta = `; "none" removes it`, "; null removes it"
	}
	fs.StringVar(&f.name, "name", "", "name of the token, 1-100 characters")
	fs.StringSliceVar(&f.permissions, "permissions", nil, "comma-separated permissions, e.g. admin,manage (default: the deployment's DEFAULT_PERMISSIONS)")
	fs.StringSliceVar(&f.apis, "apis", nil, `comma-separated APIs the token is bound to; "" for every API`)
	fs.StringVar(&f.expiresIn, "expires-in", "", `lifetime in days from now, or "never" (default: the deployment's DEFAULT_EXPIRY_DAYS)`)
	fs.BoolVar(&f.enabled, "enabled", true, "whether the token may be used; --enabled=false disables it")
	fs.BoolVar(&f.autoDelete, "auto-delete", false, "delete the token once it has expired")
	fs.StringVar(&f.meta, "meta", "", `JSON object of your own, e.g. '{"team":"platform"}'`+clearMeta)
	fs.StringVar(&f.rateLimit, "rate-limit", "", "at most LIMIT uses per WINDOW, e.g. 100/1m"+clear)
	fs.StringVar(&f.remaining, "remaining", "", "uses left (a quota)"+clear)
	fs.StringVar(&f.refill, "refill", "", "reset the quota to AMOUNT every INTERVAL, e.g. 1000/24h"+clear)
	fs.StringSliceVar(&f.cidrs, "allowed-cidrs", nil, `comma-separated networks callers must come from; "" for any`)
	if update {
		fs.Lookup("permissions").Usage = "comma-separated permissions that replace the token's"
		fs.Lookup("expires-in").Usage = `new lifetime in days from now, or "never"`
	}
}

// lifetime parses --expires-in: "never" or whole days; "" for the default.
func (f *settingsFlags) lifetime() (token.Lifetime, error) {
	switch f.expiresIn {
	case "":
		return token.Lifetime{}, nil
	case "never":
		return token.Lifetime{Never: true}, nil
	}
	days, err := strconv.Atoi(f.expiresIn)
	if err != nil {
		return token.Lifetime{}, usagef("--expires-in %q: want a number of days or never", f.expiresIn)
	}
	return token.Lifetime{Days: &days}, nil
}

// limits parses the limit flags that cmd was given.
func (f *settingsFlags) limits(cmd *cobra.Command) (token.LimitsInput, error) {
	var in token.LimitsInput
	changed := cmd.Flags().Changed
	if changed("rate-limit") {
		n, d, err := perDurationOrNone("rate-limit", f.rateLimit, "100/1m", &in.ClearRateLimit)
		if err != nil {
			return in, err
		}
		if !in.ClearRateLimit {
			in.RateLimit = &token.RateLimit{Limit: n, Window: d}
		}
	}
	if changed("remaining") {
		if f.remaining == "none" {
			in.ClearRemaining = true
		} else {
			n, err := strconv.ParseInt(f.remaining, 10, 64)
			if err != nil {
				return in, usagef("--remaining %q: want a number of uses", f.remaining)
			}
			in.Remaining = &n
		}
	}
	if changed("refill") {
		n, d, err := perDurationOrNone("refill", f.refill, "1000/24h", &in.ClearRefill)
		if err != nil {
			return in, err
		}
		if !in.ClearRefill {
			in.Refill = &token.Refill{Amount: n, Interval: d}
		}
	}
	if changed("allowed-cidrs") {
		cidrs := append([]string{}, f.cidrs...)
		in.AllowedCIDRs = &cidrs
	}
	return in, nil
}

// perDuration parses N/DURATION, e.g. 100/1m.
// perDurationOrNone is perDuration, or "none", which sets *clear.
func perDurationOrNone(flag, value, example string, clear *bool) (int64, time.Duration, error) {
	if value == "none" {
		*clear = true
		return 0, 0, nil
	}
	return perDuration(flag, value, example)
}

func perDuration(flag, s, example string) (int64, time.Duration, error) {
	count, window, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseInt(count, 10, 64)
	d, err2 := time.ParseDuration(window)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, usagef("--%s %q: want a number and a duration, e.g. %s", flag, s, example)
	}
	return n, d, nil
}

func (c *cli) createCommand() *cobra.Command {
	var sf storeFlags
	var f settingsFlags
	var owner, env, clientID string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --owner OWNER --name NAME",
		Short: "Create a token and print it, the only time its plaintext is shown",
		Long: `Create makes a token for any owner, as an admin would, and prints its plaintext once. Omitted
settings take the deployment's defaults: with --stack, those of the deployed stack, so the first
admin token of a deployment carries its prefix and expiry rules.`,
		Example: `  apitokens create --stack apitokens --owner ops --name root --permissions admin,manage --expires-in never
  apitokens create --table apitokens --owner team-a --name ci --permissions upload --expires-in 30 --env live
  apitokens create --table apitokens --owner team-a --name batch --rate-limit 100/1m --json`,
		Args:        noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			lifetime, err := f.lifetime()
			if err != nil {
				return err
			}
			limits, err := f.limits(cmd)
			if err != nil {
				return err
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			in := token.CreateInput{
				Owner: owner, Name: f.name, Permissions: f.permissions, APIs: f.apis, Env: env,
				Lifetime: lifetime, AutoDelete: f.autoDelete, ClientID: clientID, Limits: limits,
			}
			if !f.enabled {
				in.Enabled = &f.enabled
			}
			if f.meta != "" {
				in.Meta = json.RawMessage(f.meta)
			}
			t, plaintext, err := svc.Create(cmd.Context(), cliPrincipal(), in)
			if err != nil {
				return failure(err)
			}
			if sf.store == storeMemory && sf.stack == "" {
				fmt.Fprintln(c.stderr, "warning: the memory store forgets this token when the command exits; use --store dynamodb")
			}
			return c.printWithSecret(t, plaintext, svc.Now(), asJSON)
		}),
	}
	cmd.Flags().StringVar(&owner, "owner", "", "owner of the token (required)")
	f.register(cmd, false)
	cmd.Flags().Lookup("name").Usage += " (required)"
	cmd.Flags().StringVar(&env, "env", "", "environment label in the token's prefix, e.g. live")
	cmd.Flags().StringVar(&clientID, "client-id", "", "OAuth client the token is pinned to: one live token per owner and client")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, as POST /tokens answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	_ = cmd.MarkFlagRequired("owner")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func (c *cli) listCommand() *cobra.Command {
	var sf storeFlags
	var owner, createdBy, status string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list --owner OWNER | --created-by ID",
		Short: "List an owner's tokens, or the tokens a token created, newest first",
		Long: `List prints an owner's tokens, or the tokens a token created (its direct children, of any
owner), newest first, as an aligned table or as JSON. It never shows a secret.`,
		Example: `  apitokens list --stack apitokens --owner ops
  apitokens list --table apitokens --owner team-a --status all --limit 200
  apitokens list --table apitokens --created-by 4f9Xa1bC2dE3fG4h --json`,
		Args:        noArgs,
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, _ []string) error {
			if owner == "" && createdBy == "" {
				return usagef("list needs --owner or --created-by")
			}
			if limit < 1 {
				return usagef("--limit %d: want at least 1", limit)
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			in := token.ListInput{Owner: owner, CreatedBy: createdBy, Status: status}
			var tokens []*token.Token
			for len(tokens) < limit {
				in.Limit = min(limit-len(tokens), token.MaxListLimit)
				page, err := svc.List(cmd.Context(), cliPrincipal(), in)
				if err != nil {
					return failure(err)
				}
				tokens = append(tokens, page.Tokens...)
				if page.NextCursor == "" {
					break
				}
				in.Cursor = page.NextCursor
			}
			now := svc.Now()
			if asJSON {
				out, err := httpapi.LiveViews(cmd.Context(), svc, tokens)
				if err != nil {
					return failure(err)
				}
				return writeJSON(c.stdout, out)
			}
			rows := make([][]string, len(tokens))
			for i, t := range tokens {
				rows[i] = []string{t.ID, t.Name, t.Owner, string(t.Status(now)),
					list(t.Permissions), timeOr(t.ExpiresAt, "never"), timeOr(t.LastUsedAt, "never")}
			}
			return c.writeTable("no tokens", []string{"ID", "NAME", "OWNER", "STATUS", "PERMISSIONS", "EXPIRES", "LAST USED"}, rows)
		}),
	}
	cmd.Flags().StringVar(&owner, "owner", "", "the owner whose tokens to list")
	cmd.Flags().StringVar(&createdBy, "created-by", "", "only the tokens this token id created")
	cmd.Flags().StringVar(&status, "status", "active", "active, expired, revoked, disabled or all")
	cmd.Flags().IntVar(&limit, "limit", token.DefaultListLimit, "most tokens to list (newest first)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the tokens as a JSON array, as GET /tokens's tokens")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

func (c *cli) showCommand() *cobra.Command {
	var sf storeFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a token's settings, status and usage",
		Long:  "Show prints one token by id: its settings, status and usage, never its secret.",
		Example: `  apitokens show 4f9Xa1bC2dE3fG4h --stack apitokens
  apitokens show 4f9Xa1bC2dE3fG4h --table apitokens --json`,
		Args:        oneArg("token ID"),
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			t, err := svc.Get(cmd.Context(), cliPrincipal(), args[0])
			if err != nil {
				return failure(err)
			}
			if asJSON {
				views, err := httpapi.LiveViews(cmd.Context(), svc, []*token.Token{t})
				if err != nil {
					return failure(err)
				}
				return writeJSON(c.stdout, views[0])
			}
			return c.printToken(t, svc.Now(), false)
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, as GET /tokens/{id} answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

func (c *cli) updateCommand() *cobra.Command {
	var sf storeFlags
	var f settingsFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "update ID",
		Short: "Change a token's settings; only the flags given change",
		Long: `Update changes the settings given by flags and leaves the others as they are. A revoked token
cannot be changed.`,
		Example: `  apitokens update 4f9Xa1bC2dE3fG4h --stack apitokens --name "ci (old)" --expires-in 7
  apitokens update 4f9Xa1bC2dE3fG4h --table apitokens --enabled=false
  apitokens update 4f9Xa1bC2dE3fG4h --table apitokens --rate-limit none --permissions upload,list --json`,
		Args:        oneArg("token ID"),
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			changed := cmd.Flags().Changed
			var in token.UpdateInput
			if changed("name") {
				in.Name = &f.name
			}
			if changed("permissions") {
				in.Permissions = &f.permissions
			}
			if changed("apis") {
				in.APIs = &f.apis
			}
			if changed("expires-in") {
				l, err := f.lifetime()
				if err != nil {
					return err
				}
				in.Lifetime = &l
			}
			if changed("enabled") {
				in.Enabled = &f.enabled
			}
			if changed("auto-delete") {
				in.AutoDelete = &f.autoDelete
			}
			if changed("meta") {
				meta := json.RawMessage(f.meta)
				if f.meta == "null" {
					meta = nil
				}
				in.Meta = &meta
			}
			limits, err := f.limits(cmd)
			if err != nil {
				return err
			}
			in.Limits = limits
			if in == (token.UpdateInput{}) {
				return usagef("update: nothing to change: give at least one setting flag (see apitokens update --help)")
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			t, err := svc.Update(cmd.Context(), cliPrincipal(), args[0], in)
			if err != nil {
				return failure(err)
			}
			return c.printToken(t, svc.Now(), asJSON)
		}),
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, as PATCH /tokens/{id} answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

func (c *cli) rotateCommand() *cobra.Command {
	var sf storeFlags
	var grace time.Duration
	var asJSON, untilFirstUse bool
	cmd := &cobra.Command{
		Use:   "rotate ID",
		Short: "Give a token a new secret and print it, the only time it is shown",
		Long: `Rotate replaces a token's secret, keeping its id and settings, and prints the new plaintext
once. The old secret keeps working for the grace period (0 to 168h), then never again. With
--until-first-use it stops as soon as the new secret is first used, or when --grace has passed.`,
		Example: `  apitokens rotate 4f9Xa1bC2dE3fG4h --stack apitokens
  apitokens rotate 4f9Xa1bC2dE3fG4h --table apitokens --grace 24h --json
  apitokens rotate 4f9Xa1bC2dE3fG4h --stack apitokens --until-first-use --grace 168h`,
		Args:        oneArg("token ID"),
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			if untilFirstUse && grace <= 0 {
				return usagef("--until-first-use needs --grace: the longest the old secret may keep working")
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			rotate := svc.Rotate
			if untilFirstUse {
				rotate = svc.RotateUntilFirstUse
			}
			t, plaintext, err := rotate(cmd.Context(), cliPrincipal(), args[0], grace)
			if err != nil {
				return failure(err)
			}
			return c.printWithSecret(t, plaintext, svc.Now(), asJSON)
		}),
	}
	cmd.Flags().DurationVar(&grace, "grace", 0, "how long the old secret keeps working, e.g. 1h; at most 168h")
	cmd.Flags().BoolVar(&untilFirstUse, "until-first-use", false, "stop the old secret at the new one's first use; --grace is then the most it keeps working")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, as POST /tokens/{id}/rotate answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

func (c *cli) revokeCommand() *cobra.Command {
	var sf storeFlags
	var cascade, asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token for good, and with --cascade every token descended from it",
		Long: `Revoke revokes a token for good; revoking a revoked token changes nothing. With --cascade it
also revokes every token the token created, the tokens those created, and so on, each with its
own audit event; a repeated call resumes a cascade that stopped on an error.`,
		Example: `  apitokens revoke 4f9Xa1bC2dE3fG4h --stack apitokens
  apitokens revoke 4f9Xa1bC2dE3fG4h --table apitokens --cascade --json`,
		Args:        oneArg("token ID"),
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			if !cascade {
				t, err := svc.Revoke(cmd.Context(), cliPrincipal(), args[0])
				if err != nil {
					return failure(err)
				}
				return c.printToken(t, svc.Now(), asJSON)
			}
			t, family, err := svc.RevokeFamily(cmd.Context(), cliPrincipal(), args[0])
			if err != nil {
				if t != nil {
					fmt.Fprintf(c.stderr, "revoked %s and %d descendants before the error; run the command again to go on\n", t.ID, family.Revoked)
				}
				return failure(err)
			}
			if asJSON {
				return writeJSON(c.stdout, httpapi.RevokeResponse{TokenView: httpapi.View(t, svc.Now()), DescendantsRevoked: &family.Revoked, DescendantsSkipped: &family.Skipped})
			}
			return c.printFields(append(tokenFields(t, svc.Now()),
				field{"Descendants revoked", strconv.Itoa(family.Revoked)},
				field{"Descendants skipped", strconv.Itoa(family.Skipped)}))
		}),
	}
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also revoke every token descended from this one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, as DELETE /tokens/{id} answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

func (c *cli) verifyCommand() *cobra.Command {
	var sf storeFlags
	var permissions []string
	var api, ip string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify TOKEN|-",
		Short: "Check a token as POST /verify does; exit 1 if it is not valid",
		Long: `Verify checks a token as POST /verify does: its secret, status, required permissions, API
binding, then its limits (IP allowlist, rate limit, quota). Like POST /verify, a valid token's
use is recorded and counts against its limits. "-" reads the token from standard input, which
keeps it out of the shell history. The exit status is 0 for a valid token and 1 otherwise.`,
		Example: `  apitokens verify - --stack apitokens < token.txt
  apitokens verify "$TOKEN" --table apitokens --permissions upload --api uploads
  apitokens verify "$TOKEN" --table apitokens --ip 203.0.113.7 --json`,
		Args:        oneArg("token"),
		Annotations: map[string]string{annotationEnv: envHelp(commandEnv...)},
		RunE: action(func(cmd *cobra.Command, args []string) error {
			in := token.VerifyInput{Token: args[0], Permissions: permissions, API: api}
			if in.Token == "-" {
				line, err := bufio.NewReader(c.stdin).ReadString('\n')
				if err != nil && err != io.EOF {
					return fmt.Errorf("read the token from standard input: %w", err)
				}
				in.Token = line
			}
			in.Token = strings.TrimSpace(in.Token)
			if in.Token == "" {
				return usagef("verify: the token is empty")
			}
			if ip != "" {
				addr, err := netip.ParseAddr(ip)
				if err != nil {
					return usagef("--ip %q: want an IPv4 or IPv6 address", ip)
				}
				in.SourceIP = addr
			}
			_, svc, err := sf.open(cmd.Context(), c, cmd)
			if err != nil {
				return err
			}
			v, err := svc.VerifyRequest(cmd.Context(), in)
			if err != nil {
				return failure(err)
			}
			svc.FlushUsage(cmd.Context(), true) // a use whose write failed: one more try before exiting
			out := httpapi.VerifyView(v)
			if asJSON {
				if err := writeJSON(c.stdout, out); err != nil {
					return err
				}
			} else {
				fields := []field{{"Code", v.Code}, {"Message", v.Message()}}
				if v.Valid() {
					fields = append(fields, field{"ID", out.TokenID}, field{"Owner", out.Owner}, field{"Name", out.Name},
						field{"Permissions", list(out.Permissions)}, field{"Expires", timeOr(v.Token.ExpiresAt, "never")})
				} else if out.Reset != nil {
					fields = append(fields, field{"Reset", out.Reset.Format(time.RFC3339)})
				}
				if err := c.printFields(fields); err != nil {
					return err
				}
			}
			if !v.Valid() {
				return fmt.Errorf("token is not valid: %s", v.Code)
			}
			return nil
		}),
	}
	cmd.Flags().StringSliceVar(&permissions, "permissions", nil, "comma-separated permissions the token must have")
	cmd.Flags().StringVar(&api, "api", "", "the API the token is presented to, for its API binding")
	cmd.Flags().StringVar(&ip, "ip", "", "the address the token is presented from, for its IP allowlist")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON, as POST /verify answers")
	sf.register(cmd, c.getenv, storeDynamoDB)
	return cmd
}

// printWithSecret prints a token made or rotated, with its plaintext. The text form starts with
// the line "Token: <plaintext>", which scripts read (the Makefile's measure target does).
func (c *cli) printWithSecret(t *token.Token, plaintext string, now time.Time, asJSON bool) error {
	if asJSON {
		return writeJSON(c.stdout, httpapi.WithSecret{TokenView: httpapi.View(t, now), Token: plaintext})
	}
	fmt.Fprintln(c.stderr, "Keep the token now: it is not shown again.")
	fmt.Fprintf(c.stdout, "Token: %s\n", plaintext)
	return c.printToken(t, now, false)
}

func (c *cli) printToken(t *token.Token, now time.Time, asJSON bool) error {
	if asJSON {
		return writeJSON(c.stdout, httpapi.View(t, now))
	}
	return c.printFields(tokenFields(t, now))
}

// field is one line of a record printed as text.
type field struct{ name, value string }

// printFields prints fields as aligned "name: value" lines.
func (c *cli) printFields(fields []field) error {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(w, "%s:\t%s\n", f.name, f.value)
	}
	return w.Flush()
}

// tokenFields are a token's settings, status and usage as text; "-" for what is unset.
func tokenFields(t *token.Token, now time.Time) []field {
	apis := "every API"
	if len(t.APIs) > 0 {
		apis = list(t.APIs)
	}
	v := httpapi.View(t, now)
	rate, remaining, refill := "-", "-", "-"
	if rl := t.RateLimit; rl != nil {
		rate = fmt.Sprintf("%d per %s", rl.Limit, rl.Window)
	}
	if t.Remaining != nil {
		remaining = strconv.FormatInt(*t.Remaining, 10)
	}
	if rf := t.Refill; rf != nil {
		refill = fmt.Sprintf("%d every %s", rf.Amount, rf.Interval)
	}
	meta := "-"
	if t.Meta != nil {
		meta = string(t.Meta)
	}
	return []field{
		{"ID", t.ID},
		{"Name", t.Name},
		{"Hint", t.Hint},
		{"Owner", t.Owner},
		{"Status", string(v.Status)},
		{"Permissions", list(t.Permissions)},
		{"APIs", apis},
		{"Created", timeOr(t.CreatedAt, "-")},
		{"Created by", or(t.CreatedBy, "-")},
		{"Updated", timeOr(t.UpdatedAt, "-")},
		{"Expires", timeOr(t.ExpiresAt, "never")},
		{"Revoked", timeOr(t.RevokedAt, "-")},
		{"Last used", timeOr(t.LastUsedAt, "never")},
		{"Uses", strconv.FormatInt(t.UsageCount, 10)},
		{"Enabled", strconv.FormatBool(t.Enabled)},
		{"Auto-delete", strconv.FormatBool(t.AutoDelete)},
		{"Client ID", or(t.ClientID, "-")},
		{"Rate limit", rate},
		{"Remaining", remaining},
		{"Refill", refill},
		{"Allowed CIDRs", or(strings.Join(v.AllowedCIDRs, ","), "any")},
		{"Meta", meta},
	}
}

func list(items []string) string { return or(strings.Join(items, ","), "-") }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func timeOr(t time.Time, def string) string {
	if t.IsZero() {
		return def
	}
	return t.UTC().Format(time.RFC3339)
}

// writeJSON prints v as indented JSON, with <, > and & as they are, as the API writes them.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// writeTable prints rows under header as aligned columns, or empty on stderr when there are none.
func (c *cli) writeTable(empty string, header []string, rows [][]string) error {
	if len(rows) == 0 {
		fmt.Fprintln(c.stderr, empty)
		return nil
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	return w.Flush()
}
