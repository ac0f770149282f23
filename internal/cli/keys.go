package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

func (e *env) keysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, revoke and rotate API keys",
		Long: `keys manages API keys on a running server through its admin API. Your
own key comes from $RUNAGENT_API_KEY (never a flag: flags end up in shell
history and the process list) and needs the admin role in its project, or
owner.

Each key created here belongs to a new principal (a service by default,
or --kind user for a person) with the role
you give it: viewer (read), user (read, invoke, stream), streamer (read, stream),
admin (everything in the project) or owner (everything; owners only).
--scope narrows a key to some of its role's permissions, --agent to some
agents. --users names the end users (a run's user_id) the key may act for
when a run opens their persistent memory: exact ids, prefixes ending in *
(team-*), or * for a backend that acts for many users. A key without
users opens nobody's memory; runs that only label a user_id work as
before. A key is shown once, when it is created or rotated; the server
keeps only a hash.

Access only narrows: the key you make lies within the one you use. What
you leave out (scopes, agents, expiry, rate limit) is your key's where
yours is narrowed, except users, which you must name; asking for more
than yours holds is refused with the part that was too wide. The first
owner key (and one from keys recover) holds users *, so an owner can
make keys with any users.`,
	}
	var base string
	serverFlag(cmd, &base)

	var req client.KeyRequest
	var keyRate string
	var users []string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a principal (service or user) and an API key for it",
		Example: `  RUNAGENT_API_KEY=$ADMIN_KEY runagent keys create --name ci --role user --agent 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b
  RUNAGENT_API_KEY=$OWNER_KEY runagent keys create --name acme-admin --role admin --project acme --users '*'
  RUNAGENT_API_KEY=$ADMIN_KEY runagent keys create --name support-bot --users alice,bob,'team-*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if req.RateLimit, err = rateFlag(keyRate); err != nil {
				return err
			}
			if req.Users, err = usersFlag(users); err != nil {
				return err
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			k, err := c.CreateKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			e.showNewKey(k)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&req.Name, "name", "", "what the key is for (required)")
	f.StringVar(&req.Role, "role", "user", "viewer, user, streamer, admin or owner")
	f.StringVar(&req.Kind, "kind", "service", "who holds the key: service (a program) or user (a person)")
	f.StringSliceVar(&req.Scopes, "scope", nil, "limit the key to these permissions of its role (read, write, stream, admin); repeatable")
	f.StringSliceVar(&req.Agents, "agent", nil, "limit the key to these agent ids; repeatable")
	f.StringArrayVar(&users, "users", nil, "end users (user_id) the key may act for when a run opens their persistent memory: ids, prefixes ending in * (quote them: 'team-*'), or '*' for all; comma-separated, repeatable (default: none)")
	f.IntVar(&req.ExpiresInDays, "expires-in-days", 0, "lifetime in days (default: the server's --key-ttl, 90 days)")
	f.StringVar(&keyRate, "rate-limit", "", "this key's own rate limit, <count>/<period> such as 10/1m (default: the server's)")
	f.StringVar(&req.ProjectID, "project", "", "project of the key (owners only; default: yours, or \"default\")")
	create.MarkFlagRequired("name")

	var (
		project  string
		keysJSON bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the API keys of your project (owners: all, or --project)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			keys, err := c.Keys(cmd.Context(), project)
			if err != nil {
				return err
			}
			if keysJSON {
				return printJSONLines(e.stdout, keys)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY ID\tNAME\tPROJECT\tSCOPES\tUSERS\tEXPIRES\tLAST USED\tSTATE")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orDash(k.ProjectID),
					orDash(strings.Join(k.Scopes, ",")), usersCell(k.Users), timeOrDash(k.ExpiresAt), timeOrDash(k.LastUsedAt), keyState(k))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&project, "project", "", "project to list (owners only)")
	list.Flags().BoolVar(&keysJSON, "json", false, jsonFlagUsage)

	revoke := &cobra.Command{
		Use:   "revoke <key-id>",
		Short: "Revoke an API key at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			if err := c.RevokeKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked %s\n", args[0])
			return nil
		},
	}

	var overlap time.Duration
	rotate := &cobra.Command{
		Use:   "rotate <key-id>",
		Short: "Issue a successor of an API key; the old one works until the overlap ends",
		Long: `rotate issues a successor of a key: same principal, role, scopes, agents,
users and rate limit, a new secret and a new expiry. The old key keeps
working until --overlap ends. The key must lie within yours (users
included), and the successor expires no later than your own key.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			k, err := c.RotateKey(cmd.Context(), args[0], overlap)
			if err != nil {
				return err
			}
			e.showNewKey(k)
			fmt.Fprintf(e.stderr, "The old key %s keeps working for %s.\n", args[0], overlap)
			return nil
		},
	}
	rotate.Flags().DurationVar(&overlap, "overlap", 24*time.Hour, "how long the old key keeps working")

	generate := &cobra.Command{
		Use:   "generate",
		Short: "Print a new random API key without contacting a server",
		Long: `generate prints a well-formed random key. Put it in a file (mode 0600) and
name the file in $RUNAGENT_BOOTSTRAP_KEY_FILE when a fresh server starts:
the server makes it its first owner key instead of generating one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, _, _ := apikey.New()
			fmt.Fprintln(e.stdout, token)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke, rotate, generate)
	cmd.AddCommand(e.keyringCmds(&base)...)
	cmd.AddCommand(e.keysRecoverCmd())
	return cmd
}

func (e *env) showNewKey(k *client.NewKey) {
	fmt.Fprintln(e.stdout, k.Key)
	fmt.Fprintf(e.stderr, "Key %s (%s, role %s, users %s, expires %s). Store it now: it is shown only once.\n",
		k.Details.ID, k.Details.Name, k.Details.Role, usersCell(k.Details.Users), timeOrDash(k.Details.ExpiresAt))
}

// usersFlag is the users list --users values name: each a comma-separated
// list (core.ParseUsers); nil when none is given.
func usersFlag(vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		us, err := core.ParseUsers(v)
		if err != nil {
			msg := err.Error()
			if ce, ok := err.(*core.Error); ok {
				msg = ce.Message
			}
			return nil, fmt.Errorf("--users %q: %s", v, msg)
		}
		if us == nil {
			return nil, fmt.Errorf("--users %q names no user; leave the flag out for a key that acts for nobody", v)
		}
		out = append(out, us...)
	}
	if err := core.CheckUsers(out); err != nil {
		return nil, fmt.Errorf("--users: %s", err.(*core.Error).Message)
	}
	return out, nil
}

// usersCell shows a key's users in a table: "none" when it acts for
// nobody, the first few entries otherwise.
func usersCell(us []string) string {
	const show = 3
	switch {
	case len(us) == 0:
		return "none"
	case len(us) <= show:
		return strings.Join(us, ",")
	}
	return fmt.Sprintf("%s,+%d", strings.Join(us[:show], ","), len(us)-show)
}

func (e *env) projectsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "Create, list and delete projects, set their rate limits (instance owners only)",
		Long: `Projects are tenants: every agent, key and invocation belongs to one.

A project may carry a rate limit: the default for its keys (a key created
with --rate-limit keeps its own), replacing the server's --rate-limit.`,
	}
	var base string
	serverFlag(cmd, &base)
	var req client.ProjectRequest
	var rate string
	var projectsJSON bool
	create := &cobra.Command{
		Use:     "create <project-id>",
		Short:   "Create a project",
		Example: `  RUNAGENT_API_KEY=$OWNER_KEY runagent projects create acme --name "Acme Corp" --rate-limit 1000/1m`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.ID = args[0]
			var err error
			if req.RateLimit, err = rateFlag(rate); err != nil {
				return err
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "created project %s (%s), rate limit %s\n", p.ID, p.Name, rateOrDefault(p.RateLimit))
			return nil
		},
	}
	create.Flags().StringVar(&req.Name, "name", "", "display name (default: the id)")
	create.Flags().StringVar(&rate, "rate-limit", "", "default rate limit of the project's keys, <count>/<period> such as 1000/1m (default: the server's)")
	setRate := &cobra.Command{
		Use:   "set-rate-limit <project-id> <count>/<period> | default",
		Short: "Set a project's rate limit, or restore the server's default",
		Long: `Set the default rate limit of a project's keys. Keys with their own limit
keep it. "default" removes the project's limit. The change applies at once
on the node that takes it and within 2 seconds on the others.`,
		Example: `  runagent projects set-rate-limit acme 500/1m
  runagent projects set-rate-limit acme default`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rl *client.RateLimit
			if args[1] != "default" {
				var err error
				if rl, err = clientRate(args[1]); err != nil {
					return fmt.Errorf("rate limit %q: %w (or \"default\")", args[1], err)
				}
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			p, err := c.SetProjectRateLimit(cmd.Context(), args[0], rl)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "project %s: rate limit %s\n", p.ID, rateOrDefault(p.RateLimit))
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
			if err != nil {
				return err
			}
			if projectsJSON {
				return printJSONLines(e.stdout, ps)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tNAME\tRATE LIMIT")
			for _, p := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.ID, p.Name, rateOrDefault(p.RateLimit))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&projectsJSON, "json", false, jsonFlagUsage)
	cmd.AddCommand(create, list, setRate, e.projectDeleteCmd(&base))
	return cmd
}

// clientRate parses <count>/<period> (period a Go duration of whole
// seconds, 1s to 24h) for a request.
func clientRate(s string) (*client.RateLimit, error) {
	l, err := ratelimit.ParseLimit(s)
	if err != nil {
		return nil, err
	}
	return &client.RateLimit{Requests: l.Rate, PeriodSeconds: int(l.Period / time.Second)}, nil
}

// rateFlag is the value of a --rate-limit flag: nil when not given.
func rateFlag(s string) (*client.RateLimit, error) {
	if s == "" {
		return nil, nil
	}
	rl, err := clientRate(s)
	if err != nil {
		return nil, fmt.Errorf("--rate-limit: %w", err)
	}
	return rl, nil
}

func rateOrDefault(rl *client.RateLimit) string {
	if rl == nil {
		return "default"
	}
	return fmt.Sprintf("%d/%s", rl.Requests, time.Duration(rl.PeriodSeconds)*time.Second)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func keyState(k client.APIKey) string {
	now := time.Now()
	switch {
	case k.RevokedAt != nil && !now.Before(*k.RevokedAt):
		return "revoked"
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return "expired"
	case k.ReplacedBy != "":
		return "rotated (until expiry)"
	}
	return "active"
}
