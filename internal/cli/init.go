package cli

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/scaffold"
)

func (e *env) initCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "init <dir>",
		Short: "Write a working example agent into a directory",
		Long: `init writes a runagent.config.json with a fresh agent_id, a main.py
with a plain entrypoint (generate) and a streaming one (generate_stream),
and a README. The agent uses only Python's standard library.`,
		Example: `  runagent init my-agent
  runagent init my-agent --name "Support bot"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if name == "" {
				name = filepath.Base(filepath.Clean(dir))
			}
			cfg, err := scaffold.Write(dir, name)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Created agent %q in %s\n  agent_id: %s\n  entrypoints:", cfg.AgentName, dir, cfg.AgentID)
			for _, ep := range cfg.Entrypoints {
				fmt.Fprintf(e.stdout, " %s", ep.Tag)
			}
			fmt.Fprintf(e.stdout, "\n\nNext:\n  runagent serve %s          # prints the server's first owner key once\n  export RUNAGENT_API_KEY=<that key>\n  runagent run --id %s --tag generate --message=hello\n  runagent run-stream --id %s --tag generate_stream --message=hello\n", dir, cfg.AgentID, cfg.AgentID)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "agent name (default: the directory's name)")
	return cmd
}
