package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/localreg"
)

// runArgs is what run and run-stream accept. Flags are parsed by hand
// because, as in RunAgent's CLI, every --key=value that is not a flag
// becomes an input keyword argument.
type runArgs struct {
	server  string
	host    string
	port    string
	local   bool
	id      string
	tag     string
	input   string
	timeout float64
	userID  string
	// persistent asks for the user's persistent memory (RunAgent's
	// --persistent-memory).
	persistent bool
	sse        bool
	raw        bool
	// async runs in the background: run with async_execution, run-stream
	// with on_disconnect "continue"; the CLI prints the invocation id.
	async  bool
	kwargs map[string]any
	// kwargsArgs are the positional input_args from --input.
	kwargsArgs []any
	help       bool
}

// runValueFlags and runBoolFlags are the flags of run and run-stream:
// ours and RunAgent's (--host, --port, --local, --input, --timeout,
// --user-id, --persistent-memory). Any other --name is an agent input.
var (
	runValueFlags = map[string]bool{"server": true, "id": true, "tag": true, "input": true, "timeout": true, "user-id": true, "host": true, "port": true}
	runBoolFlags  = map[string]bool{"sse": true, "raw": true, "local": true, "persistent-memory": true, "async": true}
)

func parseRunArgs(args []string) (*runArgs, error) {
	ra := &runArgs{kwargs: map[string]any{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			ra.help = true
			return ra, nil
		}
		if !strings.HasPrefix(a, "--") || a == "--" {
			return nil, fmt.Errorf("unexpected argument %q: inputs are given as --name=value", a)
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		if name == "" {
			return nil, fmt.Errorf("malformed flag %q", a)
		}
		if runBoolFlags[name] {
			b := true
			if hasVal {
				var err error
				if b, err = strconv.ParseBool(val); err != nil {
					return nil, fmt.Errorf("--%s takes no value (or true/false), not %q", name, val)
				}
			}
			switch name {
			case "sse":
				ra.sse = b
			case "raw":
				ra.raw = b
			case "local":
				ra.local = b
			case "persistent-memory":
				ra.persistent = b
			case "async":
				ra.async = b
			}
			continue
		}
		if !hasVal {
			// A value follows unless the next word is another flag: a
			// bare --name that is not ours is a mistake, not an input.
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "--") {
				if runValueFlags[name] {
					return nil, fmt.Errorf("flag --%s needs a value", name)
				}
				return nil, fmt.Errorf("--%s is not a flag of runagent run; agent inputs are --name=value", name)
			}
			i++
			val = args[i]
		}
		var err error
		switch name {
		case "server":
			ra.server = val
		case "host":
			ra.host = val
		case "port":
			if p, err := strconv.ParseUint(val, 10, 16); err != nil || p == 0 {
				return nil, fmt.Errorf("--port %q: want a port number (1-65535)", val)
			}
			ra.port = val
		case "id":
			ra.id = val
		case "tag":
			ra.tag = val
		case "input":
			ra.input = val
		case "user-id":
			ra.userID = val
		case "timeout":
			if ra.timeout, err = strconv.ParseFloat(val, 64); err != nil || ra.timeout <= 0 {
				return nil, fmt.Errorf("--timeout %q: want a positive number of seconds", val)
			}
		default:
			// An input: JSON if it parses (numbers, booleans, objects),
			// otherwise the text itself.
			var v any
			if json.Unmarshal([]byte(val), &v) != nil {
				v = val
			}
			ra.kwargs[strings.ReplaceAll(name, "-", "_")] = v
		}
	}
	if err := ra.settleServer(); err != nil {
		return nil, err
	}
	if ra.id == "" || ra.tag == "" {
		return nil, fmt.Errorf("--id and --tag are required (see --help)")
	}
	if ra.input != "" {
		data, err := os.ReadFile(ra.input)
		if err != nil {
			return nil, fmt.Errorf("--input: %w", err)
		}
		var in struct {
			InputArgs   []any          `json:"input_args"`
			InputKwargs map[string]any `json:"input_kwargs"`
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(data, &probe); err != nil {
			return nil, fmt.Errorf("--input %s: not a JSON object: %w", ra.input, err)
		}
		_, hasArgs := probe["input_args"]
		_, hasKwargs := probe["input_kwargs"]
		if hasArgs || hasKwargs {
			if err := json.Unmarshal(data, &in); err != nil {
				return nil, fmt.Errorf("--input %s: %w", ra.input, err)
			}
		} else if err := json.Unmarshal(data, &in.InputKwargs); err != nil {
			return nil, fmt.Errorf("--input %s: %w", ra.input, err)
		}
		for k, v := range in.InputKwargs {
			if _, set := ra.kwargs[k]; !set {
				ra.kwargs[k] = v
			}
		}
		ra.kwargsArgs = in.InputArgs
	}
	return ra, nil
}

// settleServer picks the server to call: --server, or --host and --port
// (RunAgent's way; either alone means 127.0.0.1 or port 8450), or the
// local default with --local, or $RUNAGENT_BASE_URL, or the local default.
func (ra *runArgs) settleServer() error {
	hostPort := ra.host != "" || ra.port != ""
	switch {
	case ra.server != "" && (hostPort || ra.local):
		return errors.New("--server and --host/--port/--local all name the server to call: give one")
	case hostPort && ra.local:
		return errors.New("--local calls the local server at " + defaultAddr + "; --host/--port name another: give one")
	case hostPort:
		host, port := ra.host, ra.port
		defHost, defPort, _ := net.SplitHostPort(defaultAddr)
		if host == "" {
			host = defHost
		}
		if port == "" {
			port = defPort
		}
		ra.server = "http://" + net.JoinHostPort(strings.Trim(host, "[]"), port)
	case ra.local:
		ra.server = "http://" + localAddr(ra.id)
	case ra.server == "":
		ra.server = getenv("RUNAGENT_BASE_URL", "http://"+defaultAddr)
	}
	return nil
}

// localAddr is where the local server serves agentID, as RunAgent's
// local registry records it (a server that had to move off the default
// port records where it went), or the default.
func localAddr(agentID string) string {
	path, err := localreg.DefaultPath()
	if err != nil || agentID == "" {
		return defaultAddr
	}
	if _, err := os.Stat(path); err != nil {
		return defaultAddr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := localreg.Open(ctx, path)
	if err != nil {
		return defaultAddr
	}
	defer r.Close()
	host, port, ok, err := r.Lookup(ctx, agentID)
	if err != nil || !ok {
		return defaultAddr
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func (e *env) runCmd(stream bool) *cobra.Command {
	use, short := "run", "Call an agent's entrypoint and print the result"
	if stream {
		use, short = "run-stream", "Call a streaming entrypoint and print chunks as they arrive"
	}
	cmd := &cobra.Command{
		Use:   use + " --id <agent_id> --tag <tag> [--name=value...]",
		Short: short,
		Long: short + `.

Flags:
  --id <agent_id>     the agent to call (required)
  --tag <tag>         the entrypoint tag (required; streaming tags end in _stream)
  --input <file>      a JSON file: {"input_args": [...], "input_kwargs": {...}},
                      or an object used as input_kwargs
  --name=value        any other flag is an input keyword argument (also
                      --name value); values that parse as JSON (42, true,
                      [1,2], {"a":1}) are sent as JSON, anything else as
                      text. A bare --name that is no flag here is an error.
  --timeout <secs>    ask the server for a shorter deadline
  --user-id <id>      the end user the call is made for
  --persistent-memory keep the user's persistent folders (with --user-id)
  --server <url>      server base URL [$RUNAGENT_BASE_URL, default http://` + defaultAddr + `]
  --host <h> --port <p>
                      the server at http://h:p (RunAgent's flags; either
                      alone means 127.0.0.1 or port 8450)
  --local             the local server: where RunAgent's local registry says it
                      serves the agent, else http://` + defaultAddr + `
  --raw               print values as compact JSON, one per line` + streamOnly(stream) + `
  --async             ` + asyncHelp(stream) + `

When the agent raises, the exception type, its traceback and the
invocation id are printed (runagent db invocation <id> shows the record).
The API key, when the server needs one, is read from $RUNAGENT_API_KEY.`,
		Example: "  runagent " + use + " --id 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --tag " + exampleTag(stream) + " --message=hello\n" +
			"  id=$(runagent " + use + " --async --id 6d2c2f5e-7a51-4b6c-9a43-0c1d2e3f4a5b --tag " + exampleTag(stream) + " --message=hello)\n" +
			"  runagent runs " + followVerb(stream) + " $id",
		DisableFlagParsing: true,
		ValidArgsFunction:  completeRun,
		RunE: func(cmd *cobra.Command, args []string) error {
			ra, err := parseRunArgs(args)
			if err != nil {
				return err
			}
			if ra.help {
				return cmd.Help()
			}
			c, err := newClient(ra.server)
			if err != nil {
				return err
			}
			req := client.RunRequest{Tag: ra.tag, Args: ra.kwargsArgs, Kwargs: ra.kwargs, TimeoutSeconds: ra.timeout, UserID: ra.userID, PersistentMemory: ra.persistent}
			if ra.async {
				return e.runAsync(cmd.Context(), c, ra, req, stream)
			}
			if !stream {
				res, err := c.Run(cmd.Context(), ra.id, req)
				if err != nil {
					return err
				}
				return printValue(e, res.Value, ra.raw, true)
			}
			var s *client.Stream
			if ra.sse {
				s, err = c.StreamSSE(cmd.Context(), ra.id, req)
			} else {
				s, err = c.Stream(cmd.Context(), ra.id, req)
			}
			if err != nil {
				return err
			}
			defer s.Close()
			start := time.Now()
			n := 0
			for s.Next() {
				n++
				if err := printValue(e, s.Value(), ra.raw, false); err != nil {
					return err
				}
			}
			if err := s.Err(); err != nil {
				fmt.Fprintln(e.stdout)
				return err
			}
			fmt.Fprintf(e.stderr, "\n(%d chunks in %.2fs, invocation %s)\n", n, time.Since(start).Seconds(), s.InvocationID())
			return nil
		},
	}
	return cmd
}

// runAsync starts a run that goes on without the CLI and prints its
// invocation id on stdout (alone, for scripts) and on stderr how to follow
// it. A stream is opened over SSE with on_disconnect "continue" and left
// as soon as the server has named its invocation.
func (e *env) runAsync(ctx context.Context, c *client.Client, ra *runArgs, req client.RunRequest, stream bool) error {
	var id string
	if stream {
		req.OnDisconnect = client.OnDisconnectContinue
		s, err := c.StreamSSE(ctx, ra.id, req)
		if err != nil {
			return err
		}
		id = s.InvocationID()
		s.Close()
		if id == "" {
			return errors.New("the server did not name the stream's invocation (no X-Invocation-ID); it cannot be followed")
		}
	} else {
		var err error
		if id, err = c.RunAsync(ctx, ra.id, req); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, id)
	server := ""
	if ra.server != getenv("RUNAGENT_BASE_URL", "http://"+defaultAddr) {
		server = " --server " + ra.server
	}
	follow := "runagent runs wait" + server + " " + id + "     # wait for its result"
	if stream {
		follow = "runagent runs stream" + server + " " + id + "   # print its chunks, from the first"
	}
	fmt.Fprintf(e.stderr, "invocation %s runs in the background; follow it with\n  %s\n  runagent runs cancel%s %s   # stop it\n", id, follow, server, id)
	return nil
}

// followVerb is the runs command that follows a background run.
func followVerb(stream bool) string {
	if stream {
		return "stream"
	}
	return "wait"
}

// asyncHelp describes --async for run or run-stream.
func asyncHelp(stream bool) string {
	if stream {
		return `start the stream and leave it running (on_disconnect
                      "continue", over SSE): print its invocation id; follow
                      it with runagent runs stream <id>`
	}
	return `run in the background (async_execution): print the
                      invocation id at once; runagent runs wait <id> prints
                      the result, runagent runs cancel <id> stops it`
}

func streamOnly(stream bool) string {
	if !stream {
		return ""
	}
	return "\n  --sse               stream over Server-Sent Events instead of WebSocket"
}

func exampleTag(stream bool) string {
	if stream {
		return "generate_stream"
	}
	return "generate"
}

// printValue prints a result or chunk: text as text (chunks without a
// newline, so streamed tokens read naturally), anything else as JSON.
func printValue(e *env, v json.RawMessage, raw, newline bool) error {
	if raw {
		_, err := fmt.Fprintf(e.stdout, "%s\n", v)
		return err
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		if newline {
			s += "\n"
		}
		_, err := fmt.Fprint(e.stdout, s)
		return err
	}
	var pretty any
	if err := json.Unmarshal(v, &pretty); err != nil {
		return fmt.Errorf("server sent a value that is not JSON: %w", err)
	}
	b, _ := json.MarshalIndent(pretty, "", "  ")
	_, err := fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
