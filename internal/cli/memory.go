package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (e *env) memoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "List, export and erase agents' persistent memory of their users",
		Long: `memory manages the persistent memory agents keep per user on a running
server (admins of the agent's project).

A run with "persistent_memory": true and a "user_id" finds the folders of
the agent's persistent_folders as the same user left them last time. Each
user's memory of an agent is a size-capped file system, encrypted at rest
with a key from the server's keyring, kept until it is deleted here or by
the retention class "memory" (unused for N days).

  list     who the agent keeps memory for: size, files, last use
  export   one user's files as a tar archive (to -o FILE, or stdout)
  delete   erase one user's memory (right to erasure): nothing is left on
           the server, and the next run of that user starts empty

Export and delete wait for a run of that user that holds the memory.
Every call is audited.`,
		Example: `  runagent memory list $AGENT
  runagent memory export $AGENT alice@example.com -o alice.tar
  runagent memory export $AGENT alice@example.com | tar -tvf -
  runagent memory delete $AGENT alice@example.com`,
	}
	var base string
	serverFlag(cmd, &base)

	var asJSON bool
	list := &cobra.Command{
		Use:               "list <agent_id>",
		Short:             "List the users an agent keeps memory for (size, files, last use)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeAgentArg(&base),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			ms, err := c.Memories(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONLines(e.stdout, ms)
			}
			if len(ms) == 0 {
				fmt.Fprintf(e.stdout, "agent %s keeps no persistent memory\n", args[0])
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USER\tUSED\tFILES\tCAP\tLAST USED")
			for _, m := range ms {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", m.UserID, mib(m.UsedBytes), m.Files, mib(m.CapBytes), m.LastUsedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, jsonFlagUsage)

	var out string
	export := &cobra.Command{
		Use:   "export <agent_id> <user_id>",
		Short: "Write one user's memory as a tar archive to -o FILE or stdout",
		Long: `export writes the files one user's memory of an agent holds as a tar
archive: to the file -o names (created with mode 0600, and only once the
archive is complete), or to standard output when it is not a terminal.
Symbolic links are archived as links; owners are not kept.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeAgentArg(&base),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = e.stdout
			if out == "" {
				if f, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errors.New("the archive is binary: write it to a file with -o FILE, or redirect standard output")
				}
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			var tmp *os.File
			if out != "" {
				if tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*"); err != nil {
					return fmt.Errorf("-o: %w", err)
				}
				defer os.Remove(tmp.Name())
				defer tmp.Close()
				w = tmp
			}
			n, err := c.ExportMemory(cmd.Context(), args[0], args[1], w)
			if err != nil {
				return err
			}
			if tmp == nil {
				return nil
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return fmt.Errorf("-o: %w", err)
			}
			fmt.Fprintf(e.stderr, "memory of user %q exported to %s (%d bytes)\n", args[1], out, n)
			return nil
		},
	}
	export.Flags().StringVarP(&out, "output", "o", "", "write the archive to this file instead of standard output")

	del := &cobra.Command{
		Use:   "delete <agent_id> <user_id>",
		Short: "Erase one user's memory of an agent (right to erasure)",
		Long: `delete erases one user's memory of an agent: its encryption key leaves
the kernel, its file system and then its sealed key are deleted, so
nothing of it is left on the server. A run of that user that holds it is
waited for. The next run of that user starts with empty folders.`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeAgentArg(&base),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			if err := c.DeleteMemory(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "memory of user %q of agent %s deleted\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(list, export, del)
	return cmd
}

// mib formats a byte count in MiB with one decimal.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
