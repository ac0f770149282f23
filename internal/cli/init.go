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
	existing  bool
	force     bool
}

func (e *env) initCmd() *cobra.Command {
	var a initArgs
	cmd := &cobra.Command{
		Use:   "init [--framework F] [--name N] <dir> | init --existing <dir>",
		Short: "Write a working agent project, or give an existing one a fresh agent_id",
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
template's sandbox may reach only its model's API (network.allow).

init --existing <dir> gives a project that already has a
runagent.config.json a fresh agent_id: one copied from RunAgent's
templates (they carry the placeholder 00000000-0000-0000-0000-000000000000,
which serve and deploy refuse), one without an id, or one whose id is not
a UUID. Only the agent_id changes; every other field, unknown ones
included, and the file's formatting stay as they were. A project with a
valid id keeps it unless --force is given: the id names the agent on a
server, with its secrets, keys and invocations.`,
		Example: `  runagent init my-agent                          # the standard-library example
  runagent init --framework langgraph my-graph
  runagent init --framework crewai --name "Research crew" crew
  runagent init --existing ./cloned-runagent-template   # replace the nil agent_id`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.existing {
				if cmd.Flags().Changed("framework") || cmd.Flags().Changed("name") {
					return fmt.Errorf("--existing only gives %s a fresh agent_id; it takes no --framework or --name (edit runagent.config.json for those)", args[0])
				}
				return e.runInitExisting(args[0], a.force)
			}
			if a.force {
				return fmt.Errorf("--force goes with --existing: runagent init --existing --force %s", args[0])
			}
			return e.runInit(args[0], a)
		},
	}
	cmd.Flags().StringVar(&a.name, "name", "", "agent name (default: the directory's name)")
	cmd.Flags().StringVar(&a.framework, "framework", scaffold.DefaultFramework, "the project's framework: "+strings.Join(scaffold.FrameworkNames(), ", "))
	cmd.Flags().BoolVar(&a.existing, "existing", false, "write a fresh agent_id into the runagent.config.json already in <dir>, changing nothing else")
	cmd.Flags().BoolVar(&a.force, "force", false, "with --existing: replace a valid agent_id too")
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

func (e *env) runInitExisting(dir string, force bool) error {
	change, err := scaffold.AssignID(dir, force)
	if err != nil {
		return err
	}
	if change.Old == "" {
		fmt.Fprintf(e.stdout, "%s: added agent_id %s (there was none); nothing else changed\n", change.Path, change.New)
	} else {
		fmt.Fprintf(e.stdout, "%s: agent_id %s -> %q; nothing else changed\n", change.Path, change.Old, change.New)
	}
	if change.Problems != nil {
		fmt.Fprintf(e.stdout, "\nThe project has other problems, which serve and deploy will refuse until they are fixed:\n%v\n", change.Problems)
		return nil
	}
	fmt.Fprintf(e.stdout, "  agent_id: %s\n\nNext:\n  runagent serve %s          # or runagent deploy %s to a running server\n", change.New, dir, dir)
	return nil
}
