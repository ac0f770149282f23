package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// projectDeleteArgs are the arguments of `runagent projects delete`.
type projectDeleteArgs struct {
	base  *string // the projects command's --server
	id    string
	force bool
}

func (e *env) projectDeleteCmd(base *string) *cobra.Command {
	args := &projectDeleteArgs{base: base}
	cmd := &cobra.Command{
		Use:   "delete <project-id>",
		Short: "Delete a project, its principals and keys, and with --force its agents",
		Long: `delete ends a project: its principals are deleted and their keys revoked,
refused at once by this server and within 2 seconds by others sharing its
database. A project with agents is deleted only with --force, which also
removes the agents (their versions and secrets) and stops serving them;
without it nothing changes and the command lists what would be removed.
Invocation records and the audit trail stay.

The project's id is never reused, so that the audit trail keeps meaning
what it says. The default project cannot be deleted.`,
		Example: `  runagent projects delete acme           # refused, listing its agents, if it has any
  runagent projects delete acme --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			args.id = argv[0]
			return e.runProjectDelete(cmd.Context(), args)
		},
	}
	cmd.Flags().BoolVar(&args.force, "force", false, "also delete the project's agents")
	return cmd
}

func (e *env) runProjectDelete(ctx context.Context, args *projectDeleteArgs) error {
	c, err := newClient(*args.base)
	if err != nil {
		return err
	}
	removed, err := c.DeleteProject(ctx, args.id, args.force)
	if would := client.WouldRemove(err); would != nil {
		fmt.Fprintf(e.stderr, "runagent: project %s has agents, so nothing was deleted. Deleting it would remove:\n", args.id)
		e.printContents(would)
		fmt.Fprintf(e.stderr, "To delete the project and all of this, run: runagent projects delete %s --force\n", args.id)
		return errSilent
	}
	if client.IsNotFound(err) {
		return fmt.Errorf("%w (runagent projects list shows the projects)", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted project %s: %s, %s, %s\n", args.id,
		plural(len(removed.Agents), "agent removed", "agents removed"),
		plural(len(removed.Principals), "principal deleted", "principals deleted"),
		plural(len(removed.Keys), "key revoked", "keys revoked"))
	return nil
}

// printContents lists what a project's deletion removes, on stderr.
func (e *env) printContents(c *client.ProjectContents) {
	for _, row := range []struct {
		one, many string
		ids       []string
	}{
		{"agent", "agents", c.Agents},
		{"principal (deleted)", "principals (deleted)", c.Principals},
		{"key (revoked)", "keys (revoked)", c.Keys},
	} {
		fmt.Fprintf(e.stderr, "  %s: %s\n", plural(len(row.ids), row.one, row.many), orDash(strings.Join(row.ids, ", ")))
	}
}

// plural is "1 agent removed", "2 agents removed".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
