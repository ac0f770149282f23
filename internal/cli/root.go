package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
)

// Version is set at build time with -ldflags "-X …/internal/cli.Version=…".
var Version = "dev"

// env carries the process environment to commands, so tests can run them
// with their own streams.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Main runs the command line with args (without the program name) and
// returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, errSilent) {
			return 1
		}
		fmt.Fprintf(stderr, "runagent: %v\n", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintln(stderr, "hint: another process listens there (another runagent serve?); choose another port with --port, or leave the port out to get a free one.")
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			fmt.Fprintln(stderr, "hint: is `runagent serve` running there? Point the CLI at it with --server or RUNAGENT_BASE_URL.")
		}
		if ce, ok := errors.AsType[*client.Error](err); ok {
			printFailureDetails(stderr, ce)
		}
		if ce, ok := errors.AsType[*client.Error](err); ok && ce.Status == 401 {
			if getenv("RUNAGENT_API_KEY", "") == "" {
				fmt.Fprintln(stderr, "hint: set RUNAGENT_API_KEY to an API key: a new server prints its first owner key once; `runagent keys create` makes narrower ones.")
			} else {
				fmt.Fprintln(stderr, "hint: the key in RUNAGENT_API_KEY was refused (revoked, expired or for another server); the server log says why.")
			}
		}
		return 1
	}
	return 0
}

// printFailureDetails prints what an error's details carry for a person
// to act on: the agent's exception type and traceback, the sandbox limits
// it hit, and the invocation to look up.
func printFailureDetails(w io.Writer, ce *client.Error) {
	var d struct {
		Type      string   `json:"type"`
		Traceback string   `json:"traceback"`
		ExitCode  *int     `json:"exit_code"`
		Limits    []string `json:"limits_hit"`
	}
	if len(ce.Details) > 0 && json.Unmarshal(ce.Details, &d) == nil {
		if d.Type != "" {
			fmt.Fprintf(w, "exception: %s\n", d.Type)
		}
		if d.ExitCode != nil {
			fmt.Fprintf(w, "exit code: %d\n", *d.ExitCode)
		}
		if len(d.Limits) > 0 {
			fmt.Fprintf(w, "limits hit: %s\n", strings.Join(d.Limits, ", "))
		}
		if tb := strings.TrimRight(d.Traceback, "\n"); tb != "" {
			fmt.Fprintf(w, "%s\n", tb)
		}
	}
	if ce.InvocationID != "" {
		fmt.Fprintf(w, "invocation: %s (runagent db invocation %s shows its record)\n", ce.InvocationID, ce.InvocationID)
	}
}

// errSilent is returned when the command already told the user what failed.
var errSilent = errors.New("failed")

func (e *env) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "runagent",
		Short: "Deploy AI agents and serve them as secure APIs",
		Long: `runagent deploys AI agents (Python today: LangGraph, CrewAI or plain
functions) described by a runagent.config.json, runs every call in its own
locked-down sandbox (namespaces, cgroups, seccomp, landlock, no network
unless allowed), and serves them over the RunAgent wire protocol behind API
keys or OIDC, rate limits and a security event log, so RunAgent SDKs work
unchanged. Everything is recorded in an embedded SQLite store.

Get started:
  runagent init my-agent          # write an example agent (--framework langgraph, crewai, …: see init --help)
  runagent serve my-agent         # serve it on http://127.0.0.1:8450 (prints an owner key once)
  export RUNAGENT_API_KEY=rak_…   # that key
  runagent run --id <agent_id> --tag generate --message=hello`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.AddCommand(
		e.initCmd(),
		e.serveCmd(),
		e.deployCmd(),
		e.buildsCmd(),
		e.runCmd(false),
		e.runCmd(true),
		e.runsCmd(),
		e.keysCmd(),
		e.projectsCmd(),
		e.principalsCmd(),
		e.secretsCmd(),
		e.memoryCmd(),
		e.agentsCmd(),
		e.deleteAgentCmd(new(string), true),
		e.logsCmd(),
		e.eventsCmd(),
		e.nodesCmd(),
		e.auditCmd(),
		e.dbCmd(),
		e.doctorCmd(),
	)
	return root
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
