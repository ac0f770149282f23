// Package deploy makes an agent version ready to serve before it becomes
// current: the Python environment its dependencies need (built by pyenv
// in a build sandbox, or found built), then a load check — a sandbox
// imports every entrypoint with that environment and says which load. A
// failure of either fails the deploy with what its author needs to fix
// it (pip's log, the agent's traceback), and every attempt is recorded
// as a build. Each agent gets the Python its config names (Runtime), or
// the server's default; one naming a Python the server lacks is refused
// before anything is built.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/registry"
)

// Checker starts an agent's entrypoints in a sandbox, with its
// environment, and reports what loaded (the guest's hello). The
// executor is one.
type Checker interface {
	CheckLoad(ctx context.Context, agentDir, envDir string, cfg *core.AgentConfig) (guest.Hello, error)
}

// Config configures a Preparer.
type Config struct {
	// Builder builds environments; nil refuses agents that declare
	// dependencies, saying so.
	Builder *pyenv.Builder
	// Pythons are the interpreters agents may choose (by Name, from
	// core.AgentConfig.Runtime), the first the default.
	Pythons []pyenv.Interpreter
	// Checker runs load checks; nil skips them.
	Checker Checker
	// Builds records each build; nil records none.
	Builds core.BuildStore
	Log    *slog.Logger
	Now    func() time.Time
}

// Preparer implements registry.Prepare and registry.Environment.
type Preparer struct{ cfg Config }

// New returns a Preparer.
func New(cfg Config) *Preparer {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Preparer{cfg: cfg}
}

// Check refuses a config that names a Python this server lacks, saying
// which it has (registry.Check).
func (p *Preparer) Check(cfg *core.AgentConfig) error {
	_, err := p.python(cfg)
	return err
}

// python returns the interpreter cfg's agent runs with.
func (p *Preparer) python(cfg *core.AgentConfig) (pyenv.Interpreter, error) {
	if len(p.cfg.Pythons) == 0 {
		return pyenv.Interpreter{}, errors.New("deploy: no Python interpreter configured")
	}
	if cfg.Runtime == "" {
		return p.cfg.Pythons[0], nil
	}
	names := make([]string, len(p.cfg.Pythons))
	for i, in := range p.cfg.Pythons {
		if in.Name == cfg.Runtime {
			return in, nil
		}
		names[i] = in.Name
	}
	names[0] += " (default)"
	return pyenv.Interpreter{}, &core.Error{Code: core.CodeValidation, Field: "runtime.python",
		Message: fmt.Sprintf("the agent asks for Python %s; this server has %s", cfg.Runtime, strings.Join(names, ", "))}
}

// Prepare builds (or finds) v's environment and checks that every
// entrypoint loads with it, recording the build.
func (p *Preparer) Prepare(ctx context.Context, v registry.Version, progress func(registry.Progress)) (registry.Prepared, error) {
	start := p.cfg.Now()
	b := &core.Build{ID: uuid.NewString(), AgentID: v.AgentID, ProjectID: v.ProjectID, Version: v.Hash, StartedAt: start.UTC()}
	var log strings.Builder
	fail := func(err error) (registry.Prepared, error) {
		b.Status, b.Error, b.Log, b.FinishedAt = core.BuildFailed, core.ErrorMessage(err), log.String(), p.cfg.Now().UTC()
		p.record(ctx, b)
		progress(registry.Progress{Step: "failed", Message: core.ErrorMessage(err), Elapsed: time.Since(start)})
		if e, ok := errors.AsType[*core.Error](err); ok && e.Details == nil {
			e.Details = failureDetails{BuildID: b.ID, LogTail: tail(b.Log, 4000)}
		}
		return registry.Prepared{}, err
	}

	in, err := p.python(v.Config)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(&log, "python %s: %s\n", in.Name, in.Version)
	envDir, err := p.environment(ctx, v, in, b, &log, progress)
	if err != nil {
		return fail(err)
	}
	if p.cfg.Checker != nil {
		progress(registry.Progress{Step: "load_check", Message: fmt.Sprintf("importing %d entrypoint(s) in a sandbox", len(v.Config.Entrypoints))})
		hello, err := p.cfg.Checker.CheckLoad(ctx, v.Dir, envDir, v.Config)
		if err != nil {
			return fail(&core.Error{Code: core.CodeValidation, Message: "the load check could not run the agent: " + core.ErrorMessage(err), Err: err})
		}
		if err := loadFailures(&log, hello, v.Config); err != nil {
			return fail(err)
		}
		fmt.Fprintf(&log, "load check: %d entrypoint(s) loaded\n", len(hello.Entrypoints))
	}
	b.Status, b.Log, b.FinishedAt = core.BuildSucceeded, log.String(), p.cfg.Now().UTC()
	p.record(ctx, b)
	return registry.Prepared{EnvDir: envDir, Build: b}, nil
}

// failureDetails go with a failed deploy's error.
type failureDetails struct {
	BuildID string `json:"build_id"`
	LogTail string `json:"log_tail,omitempty"`
}

// environment reads v's dependencies and ensures their environment.
func (p *Preparer) environment(ctx context.Context, v registry.Version, in pyenv.Interpreter, b *core.Build, log *strings.Builder, progress func(registry.Progress)) (string, error) {
	deps, err := pyenv.Read(v.Dir)
	if err != nil {
		if pe, ok := errors.AsType[*pyenv.Error](err); ok {
			return "", &core.Error{Code: core.CodeValidation, Field: pe.File, Message: "the agent's dependencies cannot be installed: " + pe.Error(), Err: err}
		}
		return "", err
	}
	if deps.Empty() {
		progress(registry.Progress{Step: "environment", Message: "no dependencies declared (requirements.txt, pyproject.toml, wheels/): the standard library only"})
		return "", nil
	}
	if p.cfg.Builder == nil {
		return "", &core.Error{Code: core.CodeValidation, Field: deps.Source,
			Message: "this agent declares dependencies, but this server builds no environments (it runs without a sandbox that can build them); ask its operator"}
	}
	progress(registry.Progress{Step: "environment", Message: fmt.Sprintf("%d requirement(s) from %s, %d vendored wheel(s)", len(deps.Lines), orNone(deps.Source), len(deps.Wheels))})
	env, err := p.cfg.Builder.Ensure(ctx, v.AgentID, v.Dir, deps, in, func(e pyenv.Event) {
		progress(registry.Progress{Step: e.Step, Message: e.Message, Elapsed: e.Elapsed})
	})
	b.EnvKey = pyenv.Key(deps, in)
	if err != nil {
		if be, ok := errors.AsType[*pyenv.BuildError](err); ok {
			log.WriteString(be.Log)
			return "", &core.Error{Code: core.CodeValidation, Field: deps.Source,
				Message: "the agent's environment did not build: " + be.Msg + " (runagent builds show " + b.ID + ")", Err: err}
		}
		return "", err
	}
	b.Cached = env.Cached
	if env.Cached {
		fmt.Fprintf(log, "environment %s: built before, reused\n", env.Key[:12])
	} else {
		log.WriteString(env.Log)
		fmt.Fprintf(log, "environment %s: built in %s\n", env.Key[:12], env.Duration.Round(time.Millisecond))
	}
	return env.Dir, nil
}

// Environment returns the environment of a version loaded from the
// store, building it if this node has not (registry.Environment).
func (p *Preparer) Environment(ctx context.Context, v registry.Version) (string, error) {
	deps, err := pyenv.Read(v.Dir)
	if err != nil || deps.Empty() {
		return "", err
	}
	if p.cfg.Builder == nil {
		return "", &core.Error{Code: core.CodeUnavailable, Message: "agent " + v.AgentID + " needs an environment, and this server builds none"}
	}
	in, err := p.python(v.Config)
	if err != nil {
		return "", &core.Error{Code: core.CodeUnavailable, Message: "agent " + v.AgentID + ": " + core.ErrorMessage(err), Err: err}
	}
	env, err := p.cfg.Builder.Ensure(ctx, v.AgentID, v.Dir, deps, in, nil)
	if err != nil {
		return "", &core.Error{Code: core.CodeUnavailable, Message: "the environment of agent " + v.AgentID + " could not be built on this server", Err: err}
	}
	return env.Dir, nil
}

// loadFailures checks the hello of a load check: every entrypoint must
// load; a plain tag's function must not be a generator function (its
// result would be a generator, not JSON: the tag must end in _stream).
func loadFailures(log *strings.Builder, hello guest.Hello, cfg *core.AgentConfig) error {
	var bad []string
	for _, ep := range cfg.Entrypoints {
		st, ok := hello.Entrypoint(ep.Tag)
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("entrypoint %s: the load check did not report it", ep.Tag))
		case !st.OK && st.Error != nil:
			msg := fmt.Sprintf("entrypoint %s (%s, %s) does not load: %s: %s", ep.Tag, ep.File, ep.Module, st.Error.Type, st.Error.Message)
			bad = append(bad, msg)
			fmt.Fprintf(log, "%s\n%s\n", msg, st.Error.Traceback)
		case !st.OK:
			bad = append(bad, fmt.Sprintf("entrypoint %s does not load", ep.Tag))
		case st.Generator && !ep.Streaming():
			bad = append(bad, fmt.Sprintf("entrypoint %s is a generator function, but its tag does not end in _stream: rename the tag (%s_stream) or return a value", ep.Tag, ep.Tag))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	for _, b := range bad {
		log.WriteString(b + "\n")
	}
	return &core.Error{Code: core.CodeValidation, Field: "agent_architecture.entrypoints",
		Message: "the agent does not load, so the previous version keeps serving: " + strings.Join(bad, "; ")}
}

func (p *Preparer) record(ctx context.Context, b *core.Build) {
	if p.cfg.Builds == nil {
		return
	}
	if err := p.cfg.Builds.PutBuild(context.WithoutCancel(ctx), b); err != nil {
		p.cfg.Log.Error("record build", "build_id", b.ID, "agent_id", b.AgentID, "err", err)
	}
}

func orNone(s string) string {
	if s == "" {
		return "no file"
	}
	return s
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
