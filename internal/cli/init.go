package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/scaffold"
)

// initArgs are init's flags.
type initArgs struct {
	name      string
	framework string
}

func (e *env) initCmd() *cobra.Command {
	var a initArgs
	cmd := &cobra.Command{
		Use:   "init [--framework F] [--name N] <dir>",
		Short: "Write a working agent project into a directory",
		Long: `init writes an agent project into <dir>: a runagent.config.json with a
fresh agent_id and two entrypoints (a plain one and a streaming one, whose
tag ends in _stream), the framework's code in its usual layout, a README
that says how to give it its API key and call it, and for a framework a
requirements.txt and a .env.example.

Frameworks (--framework):
` + frameworkTable() + `
Every framework template reads its model's API key from the environment,
so the key is a secret, never code: copy .env.example to .env (serve and
deploy import it as the agent's secrets, and never upload it) or run
'runagent secrets set --agent <agent_id> OPENAI_API_KEY' against a running
server. Until the key is set, each call answers with how to set it. The
template's sandbox may reach only its model's API (network.allow).`,
		Example: `  runagent init my-agent                          # the standard-library example
  runagent init --framework langgraph my-graph
  runagent init --framework crewai --name "Research crew" crew`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.runInit(args[0], a)
		},
	}
	cmd.Flags().StringVar(&a.name, "name", "", "agent name (default: the directory's name)")
	cmd.Flags().StringVar(&a.framework, "framework", scaffold.DefaultFramework, "the project's framework: "+strings.Join(scaffold.FrameworkNames(), ", "))
	return cmd
}

// frameworkTable lists the templates for init --help.
func frameworkTable() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range scaffold.Templates() {
		fmt.Fprintf(tw, "  %s\t%s\n", t.Framework, t.About)
	}
	tw.Flush()
	return b.String()
}

func (e *env) runInit(dir string, a initArgs) error {
	if _, ok := scaffold.Lookup(a.framework); !ok {
		return fmt.Errorf("unknown framework %q; choose one of %s (runagent init --help describes them)", a.framework, strings.Join(scaffold.FrameworkNames(), ", "))
	}
	name := a.name
	if name == "" {
		name = filepath.Base(filepath.Clean(dir))
	}
	cfg, err := scaffold.Write(dir, name, a.framework)
	if err != nil {
		return err
	}
	t, _ := scaffold.Lookup(cfg.Framework)
	fmt.Fprintf(e.stdout, "Created %s agent %q in %s\n  agent_id: %s\n  entrypoints:", t.Title, cfg.AgentName, dir, cfg.AgentID)
	for _, ep := range cfg.Entrypoints {
		fmt.Fprintf(e.stdout, " %s", ep.Tag)
	}
	fmt.Fprintf(e.stdout, "\n\nNext:\n")
	if t.Key != "" {
		fmt.Fprintf(e.stdout, "  cp %s %s   # and write your %s in it (README.md says more)\n",
			filepath.Join(dir, ".env.example"), filepath.Join(dir, ".env"), t.Key)
	}
	fmt.Fprintf(e.stdout, "  runagent serve %s          # prints the server's first owner key once\n  export RUNAGENT_API_KEY=<that key>\n", dir)
	fmt.Fprintf(e.stdout, "  runagent run --id %s --tag %s --%s=%q\n", cfg.AgentID, t.PlainTag, t.Input, exampleInput(t))
	fmt.Fprintf(e.stdout, "  runagent run-stream --id %s --tag %s --%s=%q\n", cfg.AgentID, t.StreamTag, t.Input, exampleInput(t))
	return nil
}

// exampleInput is the input init's "Next" lines show.
func exampleInput(t scaffold.Template) string {
	if t.Framework == scaffold.DefaultFramework {
		return "hello"
	}
	return t.Example
}
