//go:build linux

package linux

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// Tests of a sandbox's own read-write directories (sandbox.Mount), on
// sandboxes of Start and (TestForked) on runs forked from one template.

// mountSource reads, writes and attacks what it is shown.
const mountSource = `import ctypes, errno, os, subprocess

def _err(e):
    return "error " + errno.errorcode.get(e.errno, str(e.errno))

def write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
        return "ok"
    except OSError as e:
        return _err(e)

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        return _err(e)

def owner(path):
    return os.stat(path).st_uid

def link(target, path):
    try:
        os.symlink(target, path)
        return "ok"
    except OSError as e:
        return _err(e)

def execute(path):
    try:
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(path, 0o755)
        return subprocess.run([path], capture_output=True, text=True).stdout.strip()
    except OSError as e:
        return _err(e)

def unmount(path):
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    MS_RDONLY, MS_REMOUNT, MS_BIND, MNT_DETACH = 1, 32, 4096, 2
    for name, call in (
        ("umount", lambda: libc.umount2(path.encode(), MNT_DETACH)),
        ("remount_exec", lambda: libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND, None)),
        ("remount_ro", lambda: libc.mount(None, path.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY, None)),
        ("bind_over", lambda: libc.mount(b"/tmp", path.encode(), None, MS_BIND, None)),
    ):
        r = call()
        out[name] = "ok" if r == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    return out
`

// mountRunner starts runs of mountSource with the mounts it is given: a
// sandbox of Start each, or (forked) a run of one template each.
func mountRunner(t *testing.T, e testEnv) func(mounts ...sandbox.Mount) *agent {
	t.Helper()
	eps := refs("write", "read", "owner", "link", "execute", "unmount")
	dir := writeAgent(t, map[string]string{"main.py": mountSource})
	if !forked {
		return func(mounts ...sandbox.Mount) *agent {
			a := startSpec(t, e, sandbox.Spec{AgentDir: dir, Mounts: mounts}, eps)
			a.keep = true
			return a
		}
	}
	tmpl, _, init := startTemplateSpec(t, e, sandbox.Spec{AgentDir: dir}, eps)
	if lateMounts {
		// As the warm pool has it: forked and initialised before the
		// request, its mounts attached by its waiter before the invoke.
		return func(mounts ...sandbox.Mount) *agent {
			a := forkRun(t, tmpl, init, "")
			a.keep = true
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := a.sb.(sandbox.Mounter).AttachMounts(ctx, mounts); err != nil {
				t.Fatalf("AttachMounts: %v", err)
			}
			return a
		}
	}
	return func(mounts ...sandbox.Mount) *agent {
		a := forkRun(t, tmpl, init, "", mounts...)
		a.keep = true
		return a
	}
}

// lateMounts makes mountRunner's forked runs take their mounts after
// their hello (sandbox.Mounter), as pooled runs do.
var lateMounts bool

// str decodes a JSON string result.
func str(t *testing.T, raw string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return s
}

// memDir makes a host directory for a mount, as a memory store would.
func memDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMounts(t *testing.T) {
	e := mustEnv(t)
	run := mountRunner(t, e)
	a, b := memDir(t), memDir(t)
	const guestPath = "/agent/memory"
	note := guestPath + "/note.txt"

	// One run writes in the mount and beside it.
	r1 := run(sandbox.Mount{Host: a, Guest: guestPath})
	for _, p := range []string{note, "/agent/outside.txt", "/tmp/outside.txt"} {
		if got := str(t, r1.call(t, "write", `[`+jsonString(p)+`, "from run 1"]`)); got != "ok" {
			t.Fatalf("run 1 writing %s: %s", p, got)
		}
	}
	if got := r1.call(t, "owner", `[`+jsonString(guestPath)+`]`); got != "1000" && os.Geteuid() == 0 {
		t.Errorf("inside, the mount belongs to uid %s, want the agent's 1000", got)
	}
	data, err := os.ReadFile(filepath.Join(a, "note.txt"))
	if err != nil || string(data) != "from run 1" {
		t.Fatalf("the host directory holds %q (%v), want what run 1 wrote", data, err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{a, filepath.Join(a, "note.txt")} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != HostIDBase+AgentUID || st.Gid != HostIDBase+AgentGID {
				t.Errorf("%s belongs to %d:%d on the host, want the agent's host ids %d:%d",
					p, st.Uid, st.Gid, HostIDBase+AgentUID, HostIDBase+AgentGID)
			}
		}
	}
	r1.sb.Kill()
	r1.sb.Wait()
	if ents, _ := os.ReadDir(a); len(ents) != 1 {
		t.Errorf("the host directory holds %d entries, want only the note (writes outside the mount must not land there)", len(ents))
	}

	// A second run given the same directory reads it; what the first
	// wrote outside the mount is gone.
	r2 := run(sandbox.Mount{Host: a, Guest: guestPath})
	if got := str(t, r2.call(t, "read", `[`+jsonString(note)+`]`)); got != "from run 1" {
		t.Errorf("run 2 reads %q from the mount, want what run 1 wrote", got)
	}
	for _, p := range []string{"/agent/outside.txt", "/tmp/outside.txt"} {
		if got := str(t, r2.call(t, "read", `[`+jsonString(p)+`]`)); got != "error ENOENT" {
			t.Errorf("run 2 reads %s: %q, want ENOENT (run 1's writes outside the mount vanish with it)", p, got)
		}
	}

	// A run without the mount sees nothing of it.
	r3 := run()
	if got := str(t, r3.call(t, "read", `[`+jsonString(note)+`]`)); got != "error ENOENT" {
		t.Errorf("a run without the mount reads %q, want ENOENT", got)
	}

	// A run with another directory sees only its own.
	r4 := run(sandbox.Mount{Host: b, Guest: guestPath}, sandbox.Mount{Host: memDir(t), Guest: "/tmp/cache/x"})
	if got := str(t, r4.call(t, "read", `[`+jsonString(note)+`]`)); got != "error ENOENT" {
		t.Errorf("a run with another directory reads %q, want ENOENT", got)
	}
	if got := str(t, r4.call(t, "write", `[`+jsonString(note)+`, "from run 4"]`)); got != "ok" {
		t.Fatalf("run 4 writing: %s", got)
	}
	if got := str(t, r4.call(t, "write", `["/tmp/cache/x/home.txt", "in the home"]`)); got != "ok" {
		t.Fatalf("run 4 writing below its home: %s", got)
	}
	if data, _ := os.ReadFile(filepath.Join(b, "note.txt")); string(data) != "from run 4" {
		t.Errorf("the other host directory holds %q, want run 4's note", data)
	}
	if data, _ := os.ReadFile(filepath.Join(a, "note.txt")); string(data) != "from run 1" {
		t.Errorf("run 4 changed the first directory: %q", data)
	}
}

func TestMountEscapes(t *testing.T) {
	e := mustEnv(t)
	run := mountRunner(t, e)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("server secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	mem := memDir(t)
	// Links left in the directory (by an earlier run, or planted) that
	// lead out of it on the host.
	for name, target := range map[string]string{"abs": secret, "up": "../../../../../../..", "dir": secretDir} {
		if err := os.Symlink(target, filepath.Join(mem, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := run(sandbox.Mount{Host: mem, Guest: "/agent/memory"})
	for _, p := range []string{
		"/agent/memory/abs",
		"/agent/memory/dir/secret.txt",
		"/agent/memory/up" + secret,
		"/agent/memory/../.." + secret,
		"/agent/memory/../../../../.." + secret,
	} {
		got := str(t, r.call(t, "read", `[`+jsonString(p)+`]`))
		if strings.Contains(got, "server secret") {
			t.Errorf("reading %s from inside reached the host's file: %q", p, got)
		} else {
			t.Logf("reading %s: %s", p, got)
		}
	}
	// A link the guest makes is the guest's: the host reads it as a link.
	if got := str(t, r.call(t, "link", `[`+jsonString(secret)+`, "/agent/memory/made"]`)); got != "ok" {
		t.Fatalf("making a link in the mount: %s", got)
	}
	if fi, err := os.Lstat(filepath.Join(mem, "made")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the guest's link shows on the host as %v (%v), want a symbolic link", fi, err)
	}

	// noexec: a script written there cannot be run (one in /tmp can:
	// what stops it is the mount's noexec).
	if got := str(t, r.call(t, "execute", `["/tmp/run.sh"]`)); got != "ran" {
		t.Fatalf("running a script from /tmp: %q, want it run (the control of the noexec check)", got)
	}
	if got := str(t, r.call(t, "execute", `["/agent/memory/run.sh"]`)); got != "error EACCES" {
		t.Errorf("running a script from the mount: %q, want EACCES (noexec)", got)
	}
	// The guest can neither unmount nor remount it.
	var um map[string]string
	if err := json.Unmarshal([]byte(r.call(t, "unmount", `["/agent/memory"]`)), &um); err != nil {
		t.Fatal(err)
	}
	for op, got := range um {
		if got == "ok" {
			t.Errorf("the guest's %s of the mount succeeded", op)
		}
	}
	t.Logf("the guest's mount calls: %v", um)
	if got := str(t, r.call(t, "write", `["/agent/memory/after.txt", "still there"]`)); got != "ok" {
		t.Fatalf("writing after the attempts: %s", got)
	}
	if data, _ := os.ReadFile(filepath.Join(mem, "after.txt")); string(data) != "still there" {
		t.Errorf("after the guest's attempts, writes no longer reach the host directory (%q)", data)
	}
}

// TestMountPointSymlinkRefused: a mount point that the agent's code makes
// a link (here to /usr, a system directory) is refused, not followed.
func TestMountPointSymlinkRefused(t *testing.T) {
	e := mustEnv(t)
	dir := writeAgent(t, map[string]string{"main.py": mountSource})
	if err := os.Symlink("/usr", filepath.Join(dir, "memory")); err != nil {
		t.Fatal(err)
	}
	eps := refs("write")
	mount := sandbox.Mount{Host: memDir(t), Guest: "/agent/memory/x"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sb sandbox.Sandbox
	var err error
	if forked {
		tmpl, _, init := startTemplateSpec(t, e, sandbox.Spec{AgentDir: dir}, eps)
		sb, err = tmpl.Fork(ctx, "", mount)
		if err == nil {
			_, err = guest.NewConn(sb.Conn(), 0).Init(ctx, init)
		}
	} else {
		sb, err = e.backend.Start(ctx, sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit, Mounts: []sandbox.Mount{mount}})
		if err == nil {
			_, err = guest.NewConn(sb.Conn(), 0).Init(ctx, guest.Init{AgentDir: AgentMount, Entrypoints: eps})
		}
	}
	var logs string
	if sb != nil {
		sb.Kill()
		logs = sb.Wait().Logs
	}
	if err == nil {
		t.Fatal("a mount point through a symbolic link was accepted")
	}
	if !strings.Contains(err.Error()+logs, "not a directory") {
		t.Errorf("error %v, logs %q: want the mount point named as not a directory", err, logs)
	}
}

// TestMountsRefusedBadSpec: Start and Fork check the mounts before they
// make anything.
func TestMountsRefusedBadSpec(t *testing.T) {
	e := mustEnv(t)
	dir := writeAgent(t, map[string]string{"main.py": mountSource})
	bad := sandbox.Mount{Host: memDir(t), Guest: "/etc/x"}
	_, err := e.backend.Start(context.Background(), sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Mounts: []sandbox.Mount{bad}})
	if err == nil || !strings.Contains(err.Error(), "not below") {
		t.Errorf("Start with a mount at /etc/x: %v, want refused", err)
	}
	_, err = e.backend.StartTemplate(context.Background(), sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Mounts: []sandbox.Mount{{Host: memDir(t), Guest: "/agent/m"}}})
	if err == nil {
		t.Errorf("StartTemplate with mounts: accepted, want refused (a template's runs get theirs from Fork)")
	}
	if ents, _ := os.ReadDir(e.state); len(ents) != 0 {
		t.Errorf("refused starts left %d state directories", len(ents))
	}
	tmpl, _, _ := startTemplateSpec(t, e, sandbox.Spec{AgentDir: dir}, refs("write"))
	if _, err := tmpl.Fork(context.Background(), "", bad); err == nil || !strings.Contains(err.Error(), "not below") {
		t.Errorf("Fork with a mount at /etc/x: %v, want refused", err)
	}
}

// BenchmarkMountStart measures a sandbox's start to hello with and
// without a mount (issue 17: a run with persistent memory should start
// within 1.2x of one without), for sandboxes of Start and forked runs.
func BenchmarkMountStart(b *testing.B) {
	e := mustEnv(b)
	dir := writeAgent(b, map[string]string{"main.py": "def f():\n    return 1\n"})
	eps := refs("f")
	mem := b.TempDir()
	tmpl, _, init := startTemplateSpec(b, e, sandbox.Spec{AgentDir: dir}, eps)
	for _, kind := range []string{"started", "forked"} {
		for _, withMount := range []bool{false, true} {
			name := kind + "/no-mount"
			var mounts []sandbox.Mount
			if withMount {
				name = kind + "/mount"
				mounts = []sandbox.Mount{{Host: mem, Guest: "/agent/memory"}}
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					var sb sandbox.Sandbox
					var err error
					in := init
					if kind == "forked" {
						sb, err = tmpl.Fork(ctx, "", mounts...)
					} else {
						sb, err = e.backend.Start(ctx, sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit, Mounts: mounts})
						in = guest.Init{AgentDir: AgentMount, Entrypoints: eps}
					}
					if err != nil {
						cancel()
						b.Fatal(err)
					}
					if _, err := guest.NewConn(sb.Conn(), 0).Init(ctx, in); err != nil {
						b.Error(err)
					}
					cancel()
					sb.Kill()
					sb.Wait()
				}
			})
		}
	}
}
