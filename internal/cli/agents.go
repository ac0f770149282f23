package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// agentsCmd lists agents, their versions, rolls one back and deletes one.
func (e *env) agentsCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "agents",
		Short: "List agents, their versions; roll one back, delete one",
		Long: `agents manages the agents a running server serves. Every deploy of
changed code is a new version, kept until the agent is deleted; a rollback
makes an older one current again (admins of the agent's project). Deleting
an agent stops serving it at once and removes its versions and secrets;
its invocation records stay.`,
		Example: `  runagent agents list
  runagent agents versions 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b
  runagent agents rollback 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --to sha256:3d611b23
  runagent agents delete 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b`,
	}
	serverFlag(cmd, &base)
	var listJSON, versionsJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the agents you may see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			as, err := c.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if listJSON {
				return printJSONLines(e.stdout, as)
			}
			if len(as) == 0 {
				fmt.Fprintln(e.stderr, "no agents deployed; deploy one with `runagent deploy <dir>`")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "AGENT ID\tNAME\tVERSION\tUPDATED")
			for _, a := range as {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", a.ID, a.Name, shortVersion(a.CurrentVersion), a.UpdatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&listJSON, "json", false, jsonFlagUsage)

	versions := &cobra.Command{
		Use:               "versions <agent_id>",
		ValidArgsFunction: completeAgentArg(&base),
		Short:             "List an agent's versions, newest first",
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			vs, err := c.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if versionsJSON {
				return printJSONLines(e.stdout, vs)
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tCREATED\tSIZE\tCURRENT")
			for _, v := range vs {
				cur := ""
				if v.Current {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", v.Version, v.CreatedAt.UTC().Format(time.RFC3339), v.Size, cur)
			}
			return tw.Flush()
		},
	}
	versions.Flags().BoolVar(&versionsJSON, "json", false, jsonFlagUsage)

	var to string
	rollback := &cobra.Command{
		Use:               "rollback <agent_id> --to <version>",
		ValidArgsFunction: completeAgentArg(&base),
		Short:             "Make an earlier version of an agent current",
		Long: `rollback makes a stored version current again: later runs use it. The
version is a hash 'runagent agents versions' lists, or a unique prefix of
one ("sha256:" may be left out).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			v, err := resolveVersion(cmd.Context(), c, args[0], to)
			if err != nil {
				return err
			}
			res, err := c.Rollback(cmd.Context(), args[0], v)
			if err != nil {
				return err
			}
			if res.PreviousVersion == res.Version {
				fmt.Fprintf(e.stdout, "agent %s already runs version %s\n", res.AgentID, res.Version)
				return nil
			}
			fmt.Fprintf(e.stdout, "agent %s rolled back to version %s (was %s)\n", res.AgentID, res.Version, shortVersion(res.PreviousVersion))
			return nil
		},
	}
	rollback.Flags().StringVar(&to, "to", "", "the version to make current (required)")
	rollback.MarkFlagRequired("to")

	cmd.AddCommand(list, versions, rollback, e.deleteAgentCmd(&base, false))
	return cmd
}

// deleteAgentCmd is `agents delete <agent_id>`, or with runAgentStyle
// RunAgent's `delete --id <agent_id>`.
// base is the --server of the command it is added to; with runAgentStyle
// the command has its own.
func (e *env) deleteAgentCmd(base *string, runAgentStyle bool) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "delete <agent_id>",
		Short: "Delete an agent: no longer served, its versions and secrets removed",
		Long: `delete deletes an agent (admins of its project): the server stops
serving it at once, its versions and secrets are removed, its invocation
records stay. Its id is not reused.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			agent := id
			if len(args) == 1 {
				agent = args[0]
			}
			c, err := newClient(*base)
			if err != nil {
				return err
			}
			if err := c.DeleteAgent(cmd.Context(), agent); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "agent %s deleted\n", agent)
			return nil
		},
	}
	cmd.ValidArgsFunction = completeAgentArg(base)
	if runAgentStyle {
		serverFlag(cmd, base)
		cmd.Use, cmd.Args = "delete --id <agent_id>", cobra.NoArgs
		cmd.Flags().StringVar(&id, "id", "", "agent id (required)")
		cmd.MarkFlagRequired("id")
		cmd.RegisterFlagCompletionFunc("id", completeAgentFlag(base))
		cmd.ValidArgsFunction = nil
	}
	return cmd
}

// resolveVersion returns the one version of agent that v names: a whole
// hash, or a unique prefix of one with or without "sha256:".
func resolveVersion(ctx context.Context, c *client.Client, agent, v string) (string, error) {
	vs, err := c.Versions(ctx, agent)
	if err != nil {
		return "", err
	}
	want := strings.ToLower(strings.TrimPrefix(v, "sha256:"))
	var match []string
	for _, x := range vs {
		if strings.HasPrefix(strings.TrimPrefix(x.Version, "sha256:"), want) {
			match = append(match, x.Version)
		}
	}
	switch {
	case want == "":
		return "", fmt.Errorf("--to is empty; `runagent agents versions %s` lists the versions", agent)
	case len(match) == 0:
		return "", fmt.Errorf("agent %s has no version %s; `runagent agents versions %s` lists them", agent, v, agent)
	case len(match) > 1:
		return "", fmt.Errorf("version %s is ambiguous (%d versions start with it): give more of it", v, len(match))
	}
	return match[0], nil
}
