package supervisor

// Sandbox mode: the child side of the linux backend (package
// internal/sandbox/linux is the parent side).
//
//	runagent __supervisor --sandbox      PID 1 of the new namespaces
//
// It takes no other argument: the configuration travels on an
// inherited socket (ConfigFD) as JSON, with the detached mounts of the
// host objects to bind, never in argv or the environment. It builds the
// root described in package linux's doc, among it the agent's code at
// AgentMount as an overlay whose writable layer lies on the scratch area
// beside the /tmp folder (setupScratch), the environment at EnvMount,
// the output directory at OutMount and the sandbox's own read-write
// directories at their guest paths (setupMounts).
//
//	runagent __supervisor --hold         waits for EOF on stdin, exits 0
//
// Hold mode does nothing else: the parent starts it in a user namespace
// whose descriptor it needs (the idmap of the agent's code) and kills it.
//
// The descriptors of sandbox mode are in fds.go. It also accepts its
// configuration from a pipe on ConfigFD, JSON only, whose descriptor
// fields then name descriptors it inherited; the linux backend sends a
// socket.

// FlagSandbox is the argument after Command that selects sandbox mode.
const FlagSandbox = "--sandbox"

// FlagHold is the argument after Command that makes the supervisor wait
// until its stdin reaches end-of-file and exit 0, doing nothing else: the
// linux backend starts it in a user namespace it needs only the
// descriptor of (the id mapping of an idmapped mount).
const FlagHold = "--hold"

// HoldArgs returns the arguments (after the executable) of hold mode.
func HoldArgs() []string { return []string{Command, FlagHold} }

// Paths inside the sandbox.
const (
	AgentMount  = "/agent"                // the agent's code, under a writable overlay
	EnvMount    = "/env"                  // the agent's environment, read-only
	OutMount    = "/out"                  // the output directory, read-write
	RunDir      = "/run/runagent"         // the shim and the egress socket
	EgressMount = RunDir + "/egress.sock" // the host's egress proxy socket
	ProxyAddr   = "127.0.0.1:3128"        // the in-sandbox proxy relay
	ProxyURL    = "http://" + ProxyAddr   // value of HTTP(S)_PROXY
	ScratchDir  = "/tmp"                  // the writable scratch area
)

// SandboxArgs returns the arguments (after the executable) of sandbox mode.
func SandboxArgs() []string { return []string{Command, FlagSandbox} }

// SandboxConfig is what the parent tells the sandbox supervisor.
type SandboxConfig struct {
	Hostname string `json:"hostname"`
	// Python is the interpreter's absolute path; it lies in one of
	// SystemDirs, so the same path works inside.
	Python string `json:"python"`
	// ShimName is the base name of the shim, bound at RunDir/ShimName.
	ShimName string   `json:"shim_name"`
	Env      []string `json:"env"`
	// SystemDirs are host directories bound read-only at the same path;
	// a symlink (merged /usr: /bin -> usr/bin) is recreated as a symlink.
	SystemDirs []string `json:"system_dirs"`
	// EtcFiles are host files under /etc bound read-only at the same
	// path when they exist (directories too, e.g. /etc/ssl/certs).
	EtcFiles []string `json:"etc_files"`

	// Detached mounts (open_tree descriptors) of the objects to bind; 0
	// means none. The parent makes them when it is root (the shim and
	// the egress socket from a tmpfs of the sandbox's own, so that no
	// host path shows in the guest's mountinfo) and sends them with the
	// JSON, in which they count from 1 in the order sent; the supervisor
	// replaces each number with its own descriptor of that mount.
	//
	// AgentFD is the agent's code, read-only (and idmapped, where the
	// parent could, so that its files belong to the agent): the lower
	// layer of the overlay at AgentMount, whose upper layer is on the
	// scratch area.
	AgentFD   int `json:"agent_fd"`
	ShimFD    int `json:"shim_fd"`
	ScratchFD int `json:"scratch_fd"` // 0 and no ScratchPath: a tmpfs of ScratchBytes
	EgressFD  int `json:"egress_fd"`  // 0 and no EgressPath: no egress
	EnvFD     int `json:"env_fd"`     // read-only at EnvMount; 0 and no EnvPath: none
	OutFD     int `json:"out_fd"`     // read-write at OutMount; 0 and no OutPath: none

	// Host paths of the same objects, bound by path instead when the
	// parent is not root (open_tree needs privilege in the host's mount
	// namespace; the paths then belong to the parent's uid, which is
	// the sandbox's root).
	AgentPath   string `json:"agent_path,omitempty"`
	ShimPath    string `json:"shim_path,omitempty"`
	ScratchPath string `json:"scratch_path,omitempty"`
	EgressPath  string `json:"egress_path,omitempty"`
	EnvPath     string `json:"env_path,omitempty"`
	OutPath     string `json:"out_path,omitempty"`

	// Mounts are the sandbox's own read-write directories
	// (sandbox.Mount), bound nosuid, nodev and noexec at their Guest
	// paths once /agent and /tmp are in place.
	Mounts []MountConfig `json:"mounts,omitempty"`

	ScratchBytes int64 `json:"scratch_bytes"`

	Exec ExecConfig `json:"exec"`
}

// MountConfig is one of SandboxConfig.Mounts: a detached mount (FD, as
// the other descriptor fields; the parent made it nosuid, nodev and
// noexec) or, unprivileged, a host path (Path), shown at Guest. The
// supervisor creates Guest's missing directories, as the agent's, and
// refuses a Guest whose way passes a symbolic link.
type MountConfig struct {
	FD    int    `json:"fd,omitempty"`
	Path  string `json:"path,omitempty"`
	Guest string `json:"guest"`
}

// ExecConfig is what is applied to the agent's process before it execs Python.
type ExecConfig struct {
	Python string   `json:"python"`
	Args   []string `json:"args"` // argv, Python first
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`
	// UID and GID are the agent's ids inside the user namespace.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Rlimits (soft = hard); 0 leaves a limit alone.
	NoFile int64 `json:"nofile"`
	FSize  int64 `json:"fsize"`
	NProc  int64 `json:"nproc"`
	// Landlock rules: read-only (+exec) trees, read-write trees, and
	// read-write device files.
	ReadOnly  []string `json:"landlock_ro"`
	ReadWrite []string `json:"landlock_rw"`
	Devices   []string `json:"landlock_dev"`
	// Seccomp is the assembled filter, installed last.
	Seccomp []BPF `json:"seccomp"`
	// ShimSeccomp, if set, is a second filter for the shim to install
	// right before the agent's code runs (Limits.NoProcessCreation): the
	// supervisor hands it to Python as raw struct sock_filter entries
	// (native byte order) in a pipe on fd ShimSeccompFD and sets
	// ShimSeccompEnv to that number.
	ShimSeccomp []BPF `json:"shim_seccomp,omitempty"`
	// Zygote, if set, makes Python a fork server (a template, see
	// ZygoteConfig) instead of an agent's run.
	Zygote *ZygoteConfig `json:"zygote,omitempty"`
}

// ZygoteConfig makes the sandbox's Python a fork server: it imports the
// agent and then forks a run per request of the host, each in fresh
// namespaces (the shim's "Fork server" section). The template itself
// gets the rlimits, ids, no_new_privs and Seccomp of its ExecConfig (the
// parent gives it ZygotePolicy, which lets it unshare the runs'
// namespaces and mount their layers), but no landlock domain: a
// landlocked process may not mount. The ExecConfig's landlock rules go
// to the shim as a plan (JSON), from which each run makes its ruleset
// once it has mounted its /tmp, /agent and /proc (a rule made before on
// the mount point would not reach the mount on it: landlock ignores
// covered mount points) and restricts itself, before it installs
// RunSeccomp.
type ZygoteConfig struct {
	// RunSeccomp is the filter each run installs last (Policy).
	RunSeccomp []BPF `json:"run_seccomp"`
	// RunNProc is each run's RLIMIT_NPROC (the template's is higher:
	// its runs' processes count against it too).
	RunNProc int64 `json:"run_nproc"`
	// ScratchBytes sizes each run's tmpfs: the writable layers of its
	// /tmp and /agent.
	ScratchBytes int64  `json:"scratch_bytes"`
	Hostname     string `json:"hostname"`
	// Egress: each run listens on ProxyAddr in its network namespace
	// and hands the listener to the host, which serves the proxy on it.
	Egress bool `json:"egress,omitempty"`
}

// ZygoteEnv is the shim's variable describing its fork server:
// "seccomp=FD,scratch=BYTES,hostname=NAME,nproc=N[,landlock=FD][,egress=1]":
// FD a pipe holding the run's filter (raw struct sock_filter entries) or
// its landlock plan (JSON).
const ZygoteEnv = "RUNAGENT_ZYGOTE"

// ForkStage is the directory of a template's root on which each run
// assembles its writable layers (then unmounts it).
const ForkStage = RunDir + "/fork"

// BPF is one classic BPF instruction (struct sock_filter).
type BPF struct {
	Code uint16 `json:"code"`
	Jt   uint8  `json:"jt"`
	Jf   uint8  `json:"jf"`
	K    uint32 `json:"k"`
}
