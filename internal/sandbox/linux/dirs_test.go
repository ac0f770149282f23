//go:build linux

package linux

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/sandbox/scratch"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// Tests of the directories a sandbox shows its agent: the code at /agent
// under a writable overlay on the scratch area, the environment read-only
// at /env, the output directory read-write at /out.

// writerSource writes beside its code, in all the ways agents do, and
// reports what it sees.
const writerSource = `import os, sqlite3
def write():
    db = sqlite3.connect("memory.sqlite")
    db.execute("create table if not exists m (v text)")
    db.execute("insert into m values ('remembered')")
    db.commit()
    rows = db.execute("select count(*) from m").fetchone()[0]
    db.close()
    with open("notes.txt", "a") as f:
        f.write("appended\n")
    with open("data/new.json", "w") as f:
        f.write("{}")
    os.remove("data/old.json")
    os.makedirs("cache/deep", exist_ok=True)
    st = os.stat("main.py")
    return {"rows": rows, "notes": open("notes.txt").read(), "data": sorted(os.listdir("data")),
            "owner": st.st_uid, "cwd": os.getcwd()}

def look():
    return sorted(os.listdir("."))

def fill(path):
    try:
        with open(path, "wb") as f:
            for _ in range(1 << 16):
                f.write(b"\0" * (1 << 20))
        return "no error"
    except OSError as e:
        import errno
        return errno.errorcode.get(e.errno, str(e.errno))
`

// writerProject is an agent directory holding writerSource and files it
// changes.
func writerProject(tb testing.TB) string {
	tb.Helper()
	dir := writeAgent(tb, map[string]string{
		"main.py": writerSource, "notes.txt": "shipped\n", "data/old.json": "[]", "data/keep.txt": "kept",
	})
	if err := os.Symlink("notes.txt", filepath.Join(dir, "link")); err != nil {
		tb.Fatal(err)
	}
	return dir
}

func writerRefs() []guest.EntrypointRef {
	return []guest.EntrypointRef{
		{Tag: "write", File: "main.py", Module: "write"},
		{Tag: "look", File: "main.py", Module: "look"},
		{Tag: "fill", File: "main.py", Module: "fill"},
	}
}

// checkWritable runs the writer in a sandbox of e and checks the writes
// succeed inside, leave the host's code as it was, and are gone in the
// next sandbox.
func checkWritable(t *testing.T, e testEnv, spec sandbox.Spec) {
	t.Helper()
	spec.AgentDir = writerProject(t)
	before := sandboxtest.Tree(t, spec.AgentDir)
	a := startSpec(t, e, spec, writerRefs())
	got := decode(t, a.call(t, "write", "[]"))
	want := map[string]any{
		"rows": float64(1), "notes": "shipped\nappended\n", "data": []any{"keep.txt", "new.json"},
		"owner": agentUID(), "cwd": AgentMount,
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("writing beside the code (-got +want):\n%s", diff)
	}
	if exit := a.sb.Wait(); exit.Code != 0 {
		t.Errorf("exit %+v", exit)
	}
	if diff := cmp.Diff(sandboxtest.Tree(t, spec.AgentDir), before); diff != "" {
		t.Errorf("the host's agent directory changed (-after +before):\n%s", diff)
	}
	// A new sandbox of the same code sees none of it.
	spec.ID = ""
	b := startSpec(t, e, spec, writerRefs())
	if got, want := b.call(t, "look", "[]"), `["data","link","main.py","notes.txt"]`; got != want {
		t.Errorf("the next sandbox sees %s, want %s", got, want)
	}
}

func TestAgentDirWritable(t *testing.T) {
	checkWritable(t, mustEnv(t), sandbox.Spec{ID: "agentrw"})
}

func TestAgentDirWritableRealScratch(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Scratch = realScratch(t)
	checkWritable(t, e, sandbox.Spec{ID: "agentrw-scratch"})
}

// TestAgentDirDiskLimit: what the agent writes beside its code counts
// against the sandbox's disk, and writing past it is ENOSPC.
func TestAgentDirDiskLimit(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(map[bool]string{false: "tmpfs", true: "scratch image"}[real], func(t *testing.T) {
			e := mustEnv(t)
			spec := sandbox.Spec{Limits: sandbox.Limits{DiskBytes: 8 << 20}}
			if real {
				e.backend.cfg.Scratch = realScratch(t)
				spec.Limits.DiskBytes = scratch.MinSize
			}
			spec.AgentDir = writerProject(t)
			before := sandboxtest.Tree(t, spec.AgentDir)
			a := startSpec(t, e, spec, writerRefs())
			if got := a.call(t, "fill", `["/agent/big"]`); got != `"ENOSPC"` {
				t.Errorf("filling /agent: %s, want ENOSPC", got)
			}
			a.sb.Wait()
			if diff := cmp.Diff(sandboxtest.Tree(t, spec.AgentDir), before); diff != "" {
				t.Errorf("the host's agent directory changed (-after +before):\n%s", diff)
			}
		})
	}
}

// dirsSource uses the environment and the output directory, and tries to
// get around them.
const dirsSource = `import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)

def _try(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def _libc(name, *args):
    ctypes.set_errno(0)
    r = getattr(libc, name)(*args)
    return "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

MS_REMOUNT, MS_BIND = 32, 4096

def use():
    import envpkg, yaml
    out = os.environ["RUNAGENT_OUT_DIR"]
    with open(os.path.join(out, "result.txt"), "w") as f:
        f.write("from the sandbox")
    return {
        "envpkg": envpkg.VALUE, "yaml": getattr(yaml, "MARK", "the system's yaml"),
        "envpkg_file": envpkg.__file__, "out": out,
        "write_env": _try(lambda: open("/env/x", "w").close()),
        "write_env_pkg": _try(lambda: open("/env/site-packages/envpkg/__init__.py", "a").close()),
        "remount_env": _libc("mount", None, b"/env", None, MS_REMOUNT | MS_BIND, None),
        "remount_agent": _libc("mount", None, b"/agent", None, MS_REMOUNT | MS_BIND, None),
        "umount_agent": _libc("umount2", b"/agent", 2),
        # mount_setattr(AT_FDCWD, "/env", 0, {attr_clr: MOUNT_ATTR_RDONLY}, 32)
        "setattr_env": _libc("syscall", 442, -100, b"/env", 0, (ctypes.c_uint64 * 4)(0, 1, 0, 0), 32),
    }

def mountinfo():
    return open("/proc/self/mountinfo").read()
`

func TestEnvAndOutDirs(t *testing.T) {
	e := mustEnv(t)
	env := writeAgent(t, map[string]string{
		"site-packages/envpkg/__init__.py": "VALUE = 'from the environment'\n",
		// Debian's python3 has yaml in its dist-packages: the
		// environment's must win.
		"site-packages/yaml/__init__.py": "MARK = 'the environment\\'s yaml'\n",
	})
	out := t.TempDir()
	spec := sandbox.Spec{ID: "envout", EnvDir: env, OutDir: out}
	spec.AgentDir = writeAgent(t, map[string]string{"main.py": dirsSource})
	envBefore := sandboxtest.Tree(t, env)
	a := startSpec(t, e, spec, []guest.EntrypointRef{{Tag: "use", File: "main.py", Module: "use"}})
	got := decode(t, a.call(t, "use", "[]"))
	t.Logf("use: %v", got)
	want := map[string]any{
		"envpkg": "from the environment", "yaml": "the environment's yaml",
		"envpkg_file": "/env/site-packages/envpkg/__init__.py", "out": "/out",
		"remount_env": "EPERM", "remount_agent": "EPERM", "umount_agent": "EPERM", "setattr_env": "EPERM",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	for _, k := range []string{"write_env", "write_env_pkg"} {
		if got[k] != "EROFS" && got[k] != "EACCES" {
			t.Errorf("%s = %v, want EROFS or EACCES", k, got[k])
		}
	}
	a.sb.Wait()
	b, err := os.ReadFile(filepath.Join(out, "result.txt"))
	if err != nil || string(b) != "from the sandbox" {
		t.Errorf("the output file on the host: %q, %v", b, err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{out, filepath.Join(out, "result.txt")} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != HostIDBase+AgentUID || st.Gid != HostIDBase+AgentGID {
				t.Errorf("%s on the host is owned by %d:%d, want the agent's host ids %d:%d", p, st.Uid, st.Gid, HostIDBase+AgentUID, HostIDBase+AgentGID)
			}
		}
	}
	if diff := cmp.Diff(sandboxtest.Tree(t, env), envBefore); diff != "" {
		t.Errorf("the environment changed (-after +before):\n%s", diff)
	}
}

// TestMountinfo: the guest's mount table shows the sandbox's own mounts
// and nothing of the host's layout: not the state or scratch directories,
// not the code's or the environment's host paths (their overlays name
// their layers relative to a staging directory that is gone), not the
// shim's or the egress socket's (bound from a detached tmpfs of the
// sandbox's own), not the binary's. What remains, as the package doc
// says: the output directory's path within its file system (a writable
// bind's root; the kernel shows it), and, unprivileged, the shim's and the
// egress socket's.
func TestMountinfo(t *testing.T) {
	e := mustEnv(t)
	root := os.Geteuid() == 0
	if root {
		e.backend.cfg.Scratch = realScratch(t)
	}
	e.backend.cfg.Egress = &fakeEgress{}
	secret := t.TempDir()
	spec := sandbox.Spec{ID: "mountinfo", EnvDir: writeAgent(t, map[string]string{"site-packages/x.py": ""}), OutDir: t.TempDir(),
		Network: sandbox.Network{Mode: core.NetworkEgress}}
	spec.AgentDir = writeAgent(t, map[string]string{"main.py": dirsSource})
	a := startSpec(t, e, spec, []guest.EntrypointRef{{Tag: "mountinfo", File: "main.py", Module: "mountinfo"}})
	var info string
	if err := json.Unmarshal([]byte(a.call(t, "mountinfo", "[]")), &info); err != nil {
		t.Fatal(err)
	}
	t.Logf("mountinfo:\n%s", info)
	var points []string
	for _, l := range strings.Split(strings.TrimSpace(info), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			t.Fatalf("mountinfo line %q", l)
		}
		points = append(points, f[4])
	}
	for _, p := range []string{"/", AgentMount, "/env", "/out", "/tmp", "/proc", "/dev", "/usr"} {
		if !slices.Contains(points, p) {
			t.Errorf("no mount at %s in %q", p, points)
		}
	}
	for _, p := range points {
		if strings.Contains(p, ".stage") || strings.HasPrefix(p, "/tmp/") {
			t.Errorf("a staging mount is left at %s", p)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hidden := []string{e.state, secret, spec.AgentDir, spec.EnvDir, filepath.Dir(exe), "lowerdir=/", "upperdir=/"}
	if root {
		hidden = append(hidden, shimDir, os.TempDir()+"/")
	}
	for _, l := range strings.Split(strings.TrimSpace(info), "\n") {
		if f := strings.Fields(l); f[4] == "/out" {
			continue // its root is its path in its file system
		} else if !root && (f[4] == supervisor.EgressMount || strings.HasPrefix(f[4], supervisor.RunDir+"/shim-")) {
			continue // bound by path
		}
		for _, h := range hidden {
			if strings.Contains(l, h) {
				t.Errorf("mountinfo reveals %q: %s", h, l)
			}
		}
	}
}
