package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/dotenv"
)

func (e *env) secretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Set, list and delete an agent's secrets",
		Long: `secrets manages an agent's secrets on a running server (admins of the
agent's project). A secret is an environment variable the agent's
invocations get — an API key, a database password — stored encrypted,
never returned by any API (only names and dates), and redacted as
[REDACTED:NAME] when the agent prints it in its logs or errors.

Values are read from standard input or a file, never from the command
line (arguments end up in shell history and the process list). A .env
file in an agent project is imported as secrets by 'runagent deploy'.`,
	}
	var (
		base, agent string
		secretsJSON bool
	)
	serverFlag(cmd, &base)
	cmd.PersistentFlags().StringVar(&agent, "agent", "", "agent id (required)")
	cmd.MarkPersistentFlagRequired("agent")
	cmd.RegisterFlagCompletionFunc("agent", completeAgentFlag(&base))

	var fromFile string
	set := &cobra.Command{
		Use:   "set <NAME>",
		Short: "Create or replace a secret; the value comes from stdin or --from-file",
		Example: `  runagent secrets set --agent $AGENT OPENAI_API_KEY            # type it (hidden)
  printf %s "$TOKEN" | runagent secrets set --agent $AGENT API_TOKEN
  runagent secrets set --agent $AGENT TLS_KEY --from-file ./key.pem`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := e.readSecret(args[0], fromFile)
			if err != nil {
				return err
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			s, err := c.SetSecret(cmd.Context(), agent, args[0], value)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "secret %s of agent %s set (%d bytes)\n", s.Name, s.AgentID, len(value))
			return nil
		},
	}
	set.Flags().StringVar(&fromFile, "from-file", "", "read the value from this file (byte for byte)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List an agent's secrets (names and dates, never values)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			ss, err := c.Secrets(cmd.Context(), agent)
			if err != nil {
				return err
			}
			if secretsJSON {
				return printJSONLines(e.stdout, ss)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUPDATED\tBY")
			for _, s := range ss {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.UpdatedAt.UTC().Format(time.RFC3339), s.UpdatedBy)
			}
			return tw.Flush()
		},
	}

	list.Flags().BoolVar(&secretsJSON, "json", false, jsonFlagUsage)

	del := &cobra.Command{
		Use:   "delete <NAME>",
		Short: "Delete a secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(base)
			if err != nil {
				return err
			}
			if err := c.DeleteSecret(cmd.Context(), agent, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "secret %s of agent %s deleted\n", args[0], agent)
			return nil
		},
	}

	imp := &cobra.Command{
		Use:     "import <file.env>",
		Short:   "Set every variable of a .env file as a secret",
		Example: `  runagent secrets import --agent $AGENT ./my-agent/.env`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := dotenv.Read(args[0])
			if err != nil {
				return err
			}
			c, err := newClient(base)
			if err != nil {
				return err
			}
			return e.importSecrets(cmd.Context(), c, agent, args[0], vars)
		},
	}
	cmd.AddCommand(set, list, del, imp)
	return cmd
}

// readSecret reads a secret's value from file, or from stdin: hidden
// when stdin is a terminal, else all of it less one final newline (what
// echo and a heredoc add).
func (e *env) readSecret(name, file string) (string, error) {
	var b []byte
	var err error
	switch {
	case file != "":
		if b, err = os.ReadFile(file); err != nil {
			return "", fmt.Errorf("--from-file: %w", err)
		}
	default:
		if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			fmt.Fprintf(e.stderr, "Value of %s (not shown): ", name)
			b, err = term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(e.stderr)
			if err != nil {
				return "", fmt.Errorf("read the value: %w", err)
			}
			break
		}
		if b, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20)); err != nil {
			return "", fmt.Errorf("read the value from stdin: %w", err)
		}
		s := strings.TrimSuffix(string(b), "\n")
		b = []byte(strings.TrimSuffix(s, "\r"))
	}
	if len(b) == 0 {
		return "", errors.New("the value is empty: pipe it on stdin, type it at the prompt, or use --from-file")
	}
	return string(b), nil
}

// importSecrets sets each variable as a secret of agent, in name order.
func (e *env) importSecrets(ctx context.Context, c *client.Client, agent, from string, vars map[string]string) error {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := c.SetSecret(ctx, agent, n, vars[n]); err != nil {
			return fmt.Errorf("import %s from %s: %w", n, filepath.Base(from), err)
		}
	}
	fmt.Fprintf(e.stdout, "imported %d secret(s) from %s: %s\n", len(names), from, strings.Join(names, ", "))
	return nil
}
