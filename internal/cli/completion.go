package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Shell completion: cobra's `completion` command writes the scripts;
// these functions complete agent ids from the server when it answers
// within a moment, and nothing (not file names) when it does not.

// agentIDs lists the agents of the server at base as "id<TAB>name", for
// completion.
func agentIDs(ctx context.Context, base, prefix string) []cobra.Completion {
	c, err := newClient(base)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	agents, err := c.Agents(ctx)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, a := range agents {
		out = append(out, cobra.CompletionWithDesc(prefix+a.ID, a.Name))
	}
	return out
}

// completeAgentFlag completes a flag whose value is an agent id on the
// server *base names (set by the time completion runs).
func completeAgentFlag(base *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return agentIDs(cmd.Context(), *base, ""), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeAgentArg completes a first argument that is an agent id.
func completeAgentArg(base *string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return agentIDs(cmd.Context(), *base, ""), cobra.ShellCompDirectiveNoFileComp
	}
}

// runFlagHelp describes run's flags for completion (run parses its own
// flags, so cobra does not know them).
var runFlagHelp = map[string]string{
	"id": "the agent to call", "tag": "the entrypoint tag", "input": "JSON file of inputs",
	"timeout": "seconds", "user-id": "the end user", "persistent-memory": "keep the user's folders",
	"server": "server base URL", "host": "server host", "port": "server port", "local": "the local server",
	"raw": "print compact JSON", "sse": "stream over SSE (run-stream)",
	"async": "run in the background, print the invocation id",
}

// completeRun completes run's and run-stream's words: flag names, agent
// ids after --id, file names after --input.
func completeRun(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	prev := ""
	if len(args) > 0 {
		prev = args[len(args)-1]
	}
	switch {
	case prev == "--input":
		return nil, cobra.ShellCompDirectiveDefault
	case prev == "--id":
		return agentIDs(cmd.Context(), runServer(args), ""), cobra.ShellCompDirectiveNoFileComp
	case strings.HasPrefix(toComplete, "--id="):
		return agentIDs(cmd.Context(), runServer(args), "--id="), cobra.ShellCompDirectiveNoFileComp
	case runValueFlags[strings.TrimPrefix(prev, "--")] && !strings.Contains(prev, "="):
		return nil, cobra.ShellCompDirectiveNoFileComp
	case strings.HasPrefix(toComplete, "-"):
		var out []cobra.Completion
		for name, help := range runFlagHelp {
			if name == "sse" && cmd.Name() != "run-stream" {
				continue
			}
			out = append(out, cobra.CompletionWithDesc("--"+name, help))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// runServer is the server the words typed so far name.
func runServer(args []string) string {
	ra := &runArgs{}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimPrefix(args[i], "--"), "=")
		if !hasVal && runValueFlags[name] && i+1 < len(args) {
			i++
			val = args[i]
		}
		switch name {
		case "server":
			ra.server = val
		case "host":
			ra.host = val
		case "port":
			ra.port = val
		case "local":
			ra.local = true
		}
	}
	if ra.settleServer() != nil {
		return getenv("RUNAGENT_BASE_URL", "http://"+defaultAddr)
	}
	return ra.server
}
