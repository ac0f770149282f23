package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (e *env) buildsCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "builds",
		Short: "Show how agent versions were made ready: environments and load checks",
		Long: `Every deploy makes the new version ready before it serves: it builds the
Python environment the agent's requirements.txt (or pyproject.toml, or
wheels/ folder) declares — or reuses one built before for the same set —
and imports every entrypoint in a sandbox. Each attempt is a build, kept
with its log (pip's output, the load check's findings), failed ones too.`,
		Example: `  runagent builds list 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b
  runagent builds show 0b6c3c1e-…      # with the log`,
	}
	serverFlag(cmd, &base)
	var (
		limit      int
		buildsJSON bool
	)
	list := &cobra.Command{
		Use:               "list <agent_id>",
		ValidArgsFunction: completeAgentArg(&base),
		Short:             "List an agent's builds, newest first",
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			bs, err := c.Builds(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if buildsJSON {
				return printJSONLines(e.stdout, bs)
			}
			if len(bs) == 0 {
				fmt.Fprintf(e.stderr, "agent %s has no builds recorded\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 2, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "BUILD ID\tSTARTED\tSECONDS\tSTATUS\tENVIRONMENT\tVERSION")
			for _, b := range bs {
				envDesc := "-"
				if b.Environment != "" {
					envDesc = b.Environment[:min(12, len(b.Environment))]
					if b.Cached {
						envDesc += " (cached)"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\n", b.ID, b.StartedAt.UTC().Format(time.RFC3339),
					b.FinishedAt.Sub(b.StartedAt).Seconds(), b.Status, envDesc, shortVersion(b.Version))
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many (at most 100)")
	list.Flags().BoolVar(&buildsJSON, "json", false, jsonFlagUsage)
	show := &cobra.Command{
		Use:   "show <build_id>",
		Short: "Show one build and its log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			b, err := c.Build(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "build %s of agent %s, version %s: %s in %.1f s\n", b.ID, b.AgentID, shortVersion(b.Version), b.Status, b.FinishedAt.Sub(b.StartedAt).Seconds())
			if b.Environment != "" {
				fmt.Fprintf(e.stdout, "environment %s (cached: %v)\n", b.Environment, b.Cached)
			}
			if b.Error != "" {
				fmt.Fprintf(e.stdout, "error: %s\n", b.Error)
			}
			if b.Log != "" {
				fmt.Fprintf(e.stdout, "--- log ---\n%s", b.Log)
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func shortVersion(v string) string {
	if len(v) > 19 {
		return v[:19]
	}
	return v
}
