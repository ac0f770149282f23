package server

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/deploy"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// prepareDeploys makes every deploy build its agent's environment (pip
// in a build sandbox of the server's backend, from the configured
// indexes and wheel folders) and check that the agent loads before the
// version becomes current; versions loaded from the store get their
// environment on first need. An agent gets the Python its config names
// (one of pythons), or the first; a deploy naming another is refused.
func (s *Server) prepareDeploys(ctx context.Context, cfg Config, pythons []agentPython) error {
	var ins []pyenv.Interpreter
	for _, py := range pythons {
		in, err := pyenv.Probe(ctx, py.Name, py.Path)
		if err != nil {
			return fmt.Errorf("the agents' Python %s: %w", py.Name, err)
		}
		ins = append(ins, in)
	}
	script, err := python.WriteBuild(filepath.Join(cfg.DataDir, "runtime"))
	if err != nil {
		return fmt.Errorf("install the environment builder: %w", err)
	}
	// With the linux backend a build installs into a disk of its own,
	// capped at the build's disk limit, never into the host's.
	var out pyenv.Scratch
	if _, ok := cfg.Backend.(linuxBackend); ok {
		m, err := scratch.New(filepath.Join(cfg.DataDir, "sandboxes", "build-scratch"))
		if err != nil {
			return fmt.Errorf("the builds' output disks: %w", err)
		}
		if n, err := m.CleanStale(); err != nil {
			return fmt.Errorf("remove build disks left by an earlier run: %w", err)
		} else if n > 0 {
			s.log.Warn("removed build disks left by an earlier run", "count", n)
		}
		s.closers = append(s.closers, func() {
			if err := m.Close(); err != nil {
				s.log.Warn("remove the build disks", "err", err)
			}
		})
		out = m
	}
	builder, err := pyenv.NewBuilder(pyenv.Config{Scratch: out,
		Dir: filepath.Join(cfg.DataDir, "envs"), Backend: cfg.Backend, Script: script,
		Indexes: cfg.PackageIndexes, FindLinks: cfg.FindLinks, Timeout: cfg.BuildTimeout,
		Log: s.log.With("component", "builder"),
	})
	if err != nil {
		return err
	}
	p := deploy.New(deploy.Config{Builder: builder, Pythons: ins, Checker: s.exec, Builds: s.store, Log: s.log})
	check := s.reg.Check
	s.reg.Check = func(c *core.AgentConfig) error {
		if err := p.Check(c); err != nil || check == nil {
			return err
		}
		return check(c)
	}
	s.reg.Prepare = p.Prepare
	s.reg.Environment = p.Environment
	s.log.Info("agent environments", "pythons", pythonNames(pythons), "indexes", len(cfg.PackageIndexes), "find_links", len(cfg.FindLinks))
	return nil
}
