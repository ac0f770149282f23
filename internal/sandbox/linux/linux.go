package linux

import (
	"errors"
	"io"
	"net"
	"sync"

	"github.com/runagent/runagent/internal/egress"
	"github.com/runagent/runagent/internal/sandbox"
)

// IDs of the sandbox's user namespace.
const (
	// HostIDBase is the host uid and gid that a sandbox's uid and gid 0
	// map to when the server is root; the range is HostIDBase+0 …
	// HostIDBase+IDRange-1.
	HostIDBase = 0x7f000000
	IDRange    = 65536
	// AgentUID and AgentGID are the agent's ids inside the sandbox (when
	// the server is root; otherwise 0).
	AgentUID = 1000
	AgentGID = 1000
)

// AgentMount is where the agent's code is inside the sandbox; the
// executor's init frame must name it.
const AgentMount = "/agent"

// CgroupManager creates a sandbox's cgroup (package internal/sandbox/cgroup
// implements it).
type CgroupManager interface {
	// New creates the cgroup of sandbox id with limits l.
	New(id string, l sandbox.Limits) (Cgroup, error)
}

// Cgroup is one sandbox's cgroup.
type Cgroup interface {
	// AddPID moves a process into the cgroup.
	AddPID(pid int) error
	// SetLimits changes the cgroup's limits (a cgroup made ahead of
	// demand gets its sandbox's limits this way).
	SetLimits(l sandbox.Limits) error
	// Violations lists the limits the sandbox hit (OOM kill, pids.max…).
	Violations() []string
	// Destroy kills what is left in the cgroup and removes it.
	Destroy() error
}

// ScratchManager provides a sandbox's writable scratch area (package
// internal/sandbox/scratch's *Manager implements it).
type ScratchManager interface {
	// Prepare returns a host directory of at most size bytes, owned by
	// the host uid:gid that the sandbox's agent runs as, which Start
	// binds read-write into the sandbox: its tmp/ folder becomes /tmp,
	// and the writable layer of /agent's overlay lies beside it (the
	// supervisor makes both); and how to release it.
	Prepare(id string, size int64, uid, gid int) (dir string, release func() error, err error)
}

// EgressManager serves a sandbox's egress proxy (package internal/egress
// implements it).
type EgressManager interface {
	// Listen serves the proxy for one sandbox on the unix socket at
	// socketPath, applying n's policy, until the returned Closer is
	// closed.
	Listen(socketPath, sandboxID, agentID string, n sandbox.Network) (io.Closer, error)
}

// EgressServer is implemented by EgressManagers that also serve the proxy
// on a listener they are handed: a forked run's, which listens in the
// run's own network namespace (fork servers of egress-mode agents need
// it; without it their templates are refused).
type EgressServer interface {
	// Serve serves the proxy for one sandbox on ln, applying n's
	// policy, until the returned Closer is closed (which closes ln).
	Serve(ln net.Listener, sandboxID, agentID string, n sandbox.Network) io.Closer
}

// ProxyEgress adapts an egress proxy to EgressManager and EgressServer.
type ProxyEgress struct{ Proxy *egress.Proxy }

// Listen serves the proxy on a unix socket at socketPath.
func (p ProxyEgress) Listen(socketPath, sandboxID, agentID string, n sandbox.Network) (io.Closer, error) {
	l, err := p.Proxy.Listen(socketPath, sandboxID, agentID, n)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Serve serves the proxy on ln.
func (p ProxyEgress) Serve(ln net.Listener, sandboxID, agentID string, n sandbox.Network) io.Closer {
	return p.Proxy.Serve(ln, sandboxID, agentID, n)
}

// CgroupsFunc adapts a function to CgroupManager, e.g. for
// internal/sandbox/cgroup, whose Host.New returns a concrete type:
//
//	linux.CgroupsFunc(func(id string, l sandbox.Limits) (linux.Cgroup, error) {
//		cg, err := host.New(id, l)
//		if err != nil {
//			return nil, err
//		}
//		return cg, nil
//	})
type CgroupsFunc func(id string, l sandbox.Limits) (Cgroup, error)

// New calls f.
func (f CgroupsFunc) New(id string, l sandbox.Limits) (Cgroup, error) { return f(id, l) }

// EgressFunc adapts a function to EgressManager, e.g. for
// internal/egress, whose Proxy.Listen returns a concrete *Listener.
type EgressFunc func(socketPath, sandboxID, agentID string, n sandbox.Network) (io.Closer, error)

// Listen calls f.
func (f EgressFunc) Listen(socketPath, sandboxID, agentID string, n sandbox.Network) (io.Closer, error) {
	return f(socketPath, sandboxID, agentID, n)
}

// Config configures the backend.
type Config struct {
	// Exe is the runagent binary (it routes "__supervisor").
	Exe string
	// StateDir holds a directory per running sandbox.
	StateDir string
	// Cgroups creates the cgroups. Nil is an error unless
	// AllowNoCgroups (tests): without it CPU, memory and process limits
	// are not enforced (RLIMIT_NPROC remains).
	Cgroups        CgroupManager
	AllowNoCgroups bool
	// Scratch provides /tmp and the writable layer of /agent; nil mounts
	// a tmpfs of min(DiskBytes, MemoryBytes) inside the sandbox instead.
	Scratch ScratchManager
	// Egress serves egress-mode sandboxes; nil refuses them.
	Egress EgressManager
	// ShimFiltersProcesses says the shim installs the filter handed to
	// it for Limits.NoProcessCreation (supervisor.ShimSeccompEnv). Without
	// it Start refuses such sandboxes rather than run them unfiltered.
	ShimFiltersProcesses bool
	// Prestart is how many sandbox supervisors to keep started ahead of
	// demand: each is a fresh process in fresh namespaces that has
	// started its runtime and holds nothing but its own pipes until a
	// Start hands it a sandbox's configuration. With Cgroups, each also
	// waits in a cgroup of its own, made ahead with the default limits,
	// which Start sets to the sandbox's before it may go on: moving a
	// process into a cgroup waits for an RCU grace period of the kernel
	// (5–10 ms measured here on cgroup v1), which a cold start then does
	// not pay. 0 starts each on demand. Close ends them.
	Prestart int
	// PrestartEnv is added to the environment of the processes of Exe
	// started outside a Start — prestarted supervisors, and the one that
	// makes the user namespace of the code's idmap — (not to the
	// agent's), e.g. GORACE for race-enabled test binaries.
	PrestartEnv []string
}

// Backend starts sandboxes isolated with Linux namespaces.
type Backend struct {
	cfg Config

	pool       chan *spawned // nil without Config.Prestart
	poolMu     sync.Mutex
	poolClosed bool

	// User namespaces for idmapping agent code, by owner uid and gid
	// (idmap_linux.go).
	idmapMu     sync.Mutex
	idmaps      map[[2]uint32]int
	idmapClosed bool
}

var _ sandbox.Backend = (*Backend)(nil)

// New checks cfg and returns a backend.
func New(cfg Config) (*Backend, error) {
	if cfg.Exe == "" {
		return nil, errors.New("linux sandbox backend: no runagent executable")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("linux sandbox backend: no state directory")
	}
	if cfg.Cgroups == nil && !cfg.AllowNoCgroups {
		return nil, errors.New("linux sandbox backend: no cgroup manager (limits would not be enforced)")
	}
	b := &Backend{cfg: cfg}
	if cfg.Prestart > 0 {
		b.pool = make(chan *spawned, cfg.Prestart)
	}
	return b, nil
}

// Name returns "linux".
func (b *Backend) Name() string { return "linux" }
