package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/agentcfg"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/dotenv"
)

func serverFlag(cmd *cobra.Command, p *string) {
	// Persistent, so that command groups (keys, projects) pass it down.
	cmd.PersistentFlags().StringVar(p, "server", getenv("RUNAGENT_BASE_URL", "http://"+defaultAddr), "base URL of the runagent server [$RUNAGENT_BASE_URL]")
}

const defaultAddr = "127.0.0.1:8450"

// newClient builds an API client. The API key comes only from the
// environment ($RUNAGENT_API_KEY, or the file $RUNAGENT_API_KEY_FILE
// names), never from a flag, so it does not land in shell history or the
// process list.
func newClient(base string) (*client.Client, error) {
	var opts []client.Option
	key := getenv("RUNAGENT_API_KEY", "")
	if f := getenv("RUNAGENT_API_KEY_FILE", ""); key == "" && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("$RUNAGENT_API_KEY_FILE: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key != "" {
		opts = append(opts, client.WithAPIKey(key))
	}
	opts = append(opts, client.WithUserAgent("runagent-cli/"+Version))
	return client.New(base, opts...)
}

func (e *env) deployCmd() *cobra.Command {
	var (
		base   string
		noEnv  bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "deploy <dir>",
		Short: "Deploy or update an agent on a running server",
		Long: `deploy validates the agent project in <dir>, packages it (a deterministic
tar.gz; .git, __pycache__, virtualenvs, .env files and what .runagentignore
lists are left out) and uploads it. The version is the package's content
hash: deploying an unchanged tree is a no-op, a changed tree becomes the
agent's current version at once.

A .env file in <dir> is never uploaded with the code: its variables are
set as the agent's secrets (encrypted at rest, injected into each
invocation's environment, redacted from its logs). --no-env skips that.`,
		Example: `  runagent deploy ./my-agent
  runagent deploy ./my-agent --server http://127.0.0.1:9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			fmt.Fprintf(e.stderr, "Validating %s…\n", dir)
			cfg, warnings, err := agentcfg.Load(dir)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintf(e.stderr, "warning: %s\n", w)
			}
			envFile := filepath.Join(dir, dotenv.Name)
			var vars map[string]string
			if !noEnv {
				// Read before uploading, so a bad .env stops the deploy.
				if vars, err = dotenv.Read(envFile); errors.Is(err, fs.ErrNotExist) {
					vars = nil
				} else if err != nil {
					return fmt.Errorf("%w (or deploy with --no-env)", err)
				}
			}
			fmt.Fprintf(e.stderr, "Packaging %q…\n", cfg.AgentName)
			pkg, hash, err := bundle.Pack(dir, bundle.Limits{})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Uploading %d bytes (%s) to %s…\n", len(pkg), hash, base)
			c, err := newClient(base)
			if err != nil {
				return err
			}
			res, err := c.DeployProgress(cmd.Context(), bytes.NewReader(pkg), func(p client.Progress) {
				if p.Elapsed > 0 {
					fmt.Fprintf(e.stderr, "  %s (%.1f s)\n", p.Message, p.Elapsed.Seconds())
				} else {
					fmt.Fprintf(e.stderr, "  %s\n", p.Message)
				}
			})
			if err != nil {
				if ce, ok := errors.AsType[*client.Error](err); ok && len(ce.Details) > 0 {
					var d struct {
						BuildID string `json:"build_id"`
						LogTail string `json:"log_tail"`
					}
					if json.Unmarshal(ce.Details, &d) == nil && d.BuildID != "" {
						fmt.Fprintf(e.stderr, "%s\n(the whole log: runagent builds show %s)\n", d.LogTail, d.BuildID)
					}
				}
				return err
			}
			if asJSON {
				if vars != nil {
					// Its one line goes with the progress, to stderr.
					toStderr := *e
					toStderr.stdout = e.stderr
					if err := toStderr.importSecrets(cmd.Context(), c, res.AgentID, envFile, vars); err != nil {
						return err
					}
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			state := "unchanged (this version was already deployed)"
			if res.Created {
				state = "deployed new version"
			}
			fmt.Fprintf(e.stdout, "%s %s\n  agent_id: %s\n  version:  %s\n", cfg.AgentName, state, res.AgentID, res.Version)
			if b := res.Build; b != nil {
				switch {
				case b.Environment == "":
					fmt.Fprintf(e.stdout, "  environment: none (no dependencies declared)\n")
				case b.Cached:
					fmt.Fprintf(e.stdout, "  environment: %s (cached)\n", b.Environment[:min(12, len(b.Environment))])
				default:
					fmt.Fprintf(e.stdout, "  environment: %s (built)\n", b.Environment[:min(12, len(b.Environment))])
				}
				fmt.Fprintf(e.stdout, "  build:    %s (%.1f s)\n", b.ID, b.Seconds)
			}
			if vars != nil {
				return e.importSecrets(cmd.Context(), c, res.AgentID, envFile, vars)
			}
			return nil
		},
	}
	serverFlag(cmd, &base)
	cmd.Flags().BoolVar(&noEnv, "no-env", false, "do not import <dir>/.env as the agent's secrets")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result (agent_id, version, created, entrypoints, warnings, build) as one JSON object")
	return cmd
}
