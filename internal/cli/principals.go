package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// principalsArgs are the arguments of `runagent principals`.
type principalsArgs struct {
	base    string
	project string // list: only this project's
	role    string // list: only this role
	json    bool   // list: JSON lines
}

func (e *env) principalsCmd() *cobra.Command {
	args := &principalsArgs{}
	cmd := &cobra.Command{
		Use:   "principals",
		Short: "List, disable, enable and delete principals (instance owners only)",
		Long: `A principal is who holds API keys: a user or a service, with a role in one
project, or an instance owner. 'runagent keys create' makes one per key;
'runagent principals list' shows their ids.

disable refuses a principal's keys until enable; delete ends it for good
and revokes its keys. Either takes effect at once on this server and
within 2 seconds on others sharing its database. A deleted principal is
still listed (with its state), so that the audit trail's references to
it keep their meaning.

The last enabled owner with a usable key cannot be disabled or deleted,
so that the instance keeps an owner: create another owner key first
(runagent keys create --role owner).`,
	}
	serverFlag(cmd, &args.base)

	list := &cobra.Command{
		Use:   "list",
		Short: "List principals: all, or of --project or --role",
		Example: `  runagent principals list --project acme
  runagent principals list --role owner`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return e.runPrincipalsList(cmd.Context(), args) },
	}
	list.Flags().StringVar(&args.project, "project", "", "only this project's principals")
	list.Flags().StringVar(&args.role, "role", "", "only this role: viewer, user, streamer, admin or owner")
	list.Flags().BoolVar(&args.json, "json", false, jsonFlagUsage)

	change := func(use, short string, do func(context.Context, *client.Client, string) (string, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " <principal-id>",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, argv []string) error {
				return e.runPrincipalChange(cmd.Context(), args, argv[0], do)
			},
		}
	}
	disable := change("disable", "Refuse a principal's keys until it is enabled again", disablePrincipal)
	enable := change("enable", "Let a disabled principal's keys work again", enablePrincipal)
	del := change("delete", "Delete a principal and revoke its keys", deletePrincipal)
	cmd.AddCommand(list, disable, enable, del)
	return cmd
}

func (e *env) runPrincipalsList(ctx context.Context, args *principalsArgs) error {
	c, err := newClient(args.base)
	if err != nil {
		return err
	}
	ps, err := c.Principals(ctx, args.project, args.role)
	if err != nil {
		return err
	}
	if args.json {
		return printJSONLines(e.stdout, ps)
	}
	tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL ID\tNAME\tKIND\tROLE\tPROJECT\tCREATED\tSTATE")
	for _, p := range ps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Kind, p.Role, orDash(p.ProjectID),
			timeOrDash(&p.CreatedAt), principalState(p))
	}
	return tw.Flush()
}

// runPrincipalChange applies do to principal id and prints what it says.
func (e *env) runPrincipalChange(ctx context.Context, args *principalsArgs, id string, do func(context.Context, *client.Client, string) (string, error)) error {
	c, err := newClient(args.base)
	if err != nil {
		return err
	}
	out, err := do(ctx, c, id)
	if client.IsNotFound(err) {
		return fmt.Errorf("%w (runagent principals list shows the principals and their ids)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, out)
	return nil
}

func disablePrincipal(ctx context.Context, c *client.Client, id string) (string, error) {
	p, err := c.DisablePrincipal(ctx, id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("disabled principal %s (%s): its keys are refused until `runagent principals enable %s`", p.ID, p.Name, p.ID), nil
}

func enablePrincipal(ctx context.Context, c *client.Client, id string) (string, error) {
	p, err := c.EnablePrincipal(ctx, id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("enabled principal %s (%s)", p.ID, p.Name), nil
}

func deletePrincipal(ctx context.Context, c *client.Client, id string) (string, error) {
	revoked, err := c.DeletePrincipal(ctx, id)
	if err != nil {
		return "", err
	}
	if len(revoked) == 0 {
		return fmt.Sprintf("deleted principal %s (it had no keys left to revoke)", id), nil
	}
	return fmt.Sprintf("deleted principal %s; revoked its keys %s", id, strings.Join(revoked, ", ")), nil
}

func principalState(p client.Principal) string {
	switch {
	case p.DeletedAt != nil:
		return "deleted " + timeOrDash(p.DeletedAt)
	case p.DisabledAt != nil:
		return "disabled " + timeOrDash(p.DisabledAt)
	}
	return "active"
}
