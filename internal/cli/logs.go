package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// logsCmd prints what an invocation's agent wrote to stdout and stderr.
func (e *env) logsCmd() *cobra.Command {
	var base string
	cmd := &cobra.Command{
		Use:   "logs <invocation_id>",
		Short: "Print an invocation's logs",
		Long: `logs prints what the agent wrote (stdout and stderr) during one
invocation, as the server recorded it, secrets redacted. 'runagent run'
prints the invocation id; the server's invocation listing has the others.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			inv, err := c.Invocation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if inv.Logs == "" {
				fmt.Fprintf(e.stderr, "invocation %s (%s) recorded no logs\n", inv.ID, inv.Status)
				return nil
			}
			fmt.Fprint(e.stdout, inv.Logs)
			if !strings.HasSuffix(inv.Logs, "\n") {
				fmt.Fprintln(e.stdout)
			}
			return nil
		},
	}
	serverFlag(cmd, &base)
	return cmd
}
