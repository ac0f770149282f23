package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/runagent/runagent/internal/dirlock"
	"github.com/runagent/runagent/internal/localreg"
	"github.com/runagent/runagent/internal/registry"
)

// LocalRegistryOff as Config.LocalRegistry leaves RunAgent's local
// registry alone.
const LocalRegistryOff = "off"

// localMode is what a server holds on the machine beyond its data
// directory's contents: the directory itself (one server per data
// directory) and its agents' rows in RunAgent's local registry, where the
// SDKs in local mode find them.
type localMode struct {
	lock *dirlock.Lock
	// srcDirs maps agents deployed from folders at start to those
	// folders (the registry's agent_path).
	srcDirs map[string]string
	reg     *localreg.Registry
	host    string
	port    int
	ids     []string
}

// acquire takes the data directory before anything in it is touched: a
// second server would share the store, the code tree and the sandboxes'
// host state with the first, and break its calls.
func (m *localMode) acquire(dataDir, addr string) error {
	l, err := dirlock.Acquire(dataDir, "serve", addr)
	if err != nil {
		return fmt.Errorf("one server per data directory (stop the other, or use another --data-dir): %w", err)
	}
	m.lock = l
	return nil
}

func (m *localMode) deployed(srcDir, agentID string) {
	if m.srcDirs == nil {
		m.srcDirs = map[string]string{}
	}
	if abs, err := filepath.Abs(srcDir); err == nil {
		srcDir = abs
	}
	m.srcDirs[agentID] = srcDir
}

// announce publishes the bound address: in the data directory (for a
// second server's refusal) and in the local registry for every served
// agent. The registry is a convenience for RunAgent's SDKs: a failure to
// write it is logged, never a reason not to serve.
func (m *localMode) announce(ctx context.Context, log *slog.Logger, path, addr string, agents []*registry.Deployment) {
	if m.lock != nil {
		if err := m.lock.Publish(addr); err != nil {
			log.Warn("data directory: cannot record this server's address", "err", err)
		}
	}
	if path == LocalRegistryOff {
		return
	}
	host, port, err := localreg.HostPort(addr)
	if err != nil {
		log.Warn("local registry: not written", "err", err)
		return
	}
	if path == "" {
		if path, err = localreg.DefaultPath(); err != nil {
			log.Warn("local registry: not written", "err", err)
			return
		}
	}
	rows := make([]localreg.Agent, 0, len(agents))
	ids := make([]string, 0, len(agents))
	for _, d := range agents {
		src := m.srcDirs[d.AgentID]
		if src == "" {
			src = d.Dir // deployed before this start: its unpacked code
		}
		rows = append(rows, localreg.Agent{ID: d.AgentID, Name: d.Config.AgentName, Path: src, Framework: d.Config.Framework})
		ids = append(ids, d.AgentID)
	}
	reg, err := localreg.Open(ctx, path)
	if err == nil {
		err = reg.Register(ctx, host, port, rows)
	}
	if err != nil {
		log.Warn("local registry: RunAgent's SDKs in local mode will not find these agents", "path", path, "err", err)
		if reg != nil {
			reg.Close()
		}
		return
	}
	m.reg, m.host, m.port, m.ids = reg, host, port, ids
	log.Info("local registry: agents registered for RunAgent's SDKs in local mode", "path", path, "agents", len(ids), "host", host, "port", port)
}

// close marks the agents stopped in the local registry and gives the data
// directory up; it runs last, once the store is closed.
func (m *localMode) close(log *slog.Logger) {
	if m.reg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.reg.Stop(ctx, m.host, m.port, m.ids); err != nil {
			log.Warn("local registry: cannot mark the agents stopped", "err", err)
		}
		cancel()
		m.reg.Close()
		m.reg = nil
	}
	if m.lock != nil {
		m.lock.Release()
		m.lock = nil
	}
}
