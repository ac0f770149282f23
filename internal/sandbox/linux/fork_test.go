//go:build linux

package linux

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// forkSource is an agent that reports what a run sees of itself and of
// the other runs, and leaves traces for the next.
const forkSource = `
import os, socket
IMPORTED_PID = os.getpid()
with open("/tmp/template.txt", "w") as f:
    f.write("written at import")
COUNTER = [0]

def probe(mark):
    COUNTER[0] += 1
    seen = sorted(n for n in os.listdir("/tmp") if n.startswith("run-"))
    beside = sorted(n for n in os.listdir(".") if n.startswith("run-"))
    with open("/tmp/run-" + mark, "w") as f:
        f.write(mark)
    with open("run-" + mark, "w") as f:
        f.write(mark)
    try:
        s = socket.socket(); s.settimeout(1); s.connect(("127.0.0.1", 3128)); reach = True
    except OSError:
        reach = False
    return {
        "pid": os.getpid(), "imported_pid": IMPORTED_PID, "counter": COUNTER[0],
        "uid": os.getuid(), "hostname": socket.gethostname(), "cwd": os.getcwd(),
        "template_file": open("/tmp/template.txt").read(),
        "seen_tmp": seen, "seen_agent": beside,
        "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "secret": os.environ.get("SECRET", ""),
    }
`

// startTemplate starts a template of src's entrypoints and sends its init.
func startTemplate(tb testing.TB, e testEnv, src string, spec sandbox.Spec, names ...string) (sandbox.Template, guest.Hello, guest.Init) {
	tb.Helper()
	spec.AgentDir = writeAgent(tb, map[string]string{"main.py": src})
	return startTemplateSpec(tb, e, spec, refs(names...))
}

// startTemplateSpec starts a template for spec (its AgentDir written
// already) and sends its init for eps.
func startTemplateSpec(tb testing.TB, e testEnv, spec sandbox.Spec, eps []guest.EntrypointRef) (sandbox.Template, guest.Hello, guest.Init) {
	tb.Helper()
	if spec.ID != "" {
		spec.ID = "tmpl-" + spec.ID // the runs take the spec's
	}
	spec.ShimPath = e.shim
	spec.Python = systemPython
	spec.Env = append(append([]string{}, quickExit...), spec.Env...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tmpl, err := e.backend.StartTemplate(ctx, spec)
	if err != nil {
		tb.Fatalf("StartTemplate: %v", err)
	}
	tb.Cleanup(func() {
		tmpl.Kill()
		tmpl.Wait()
	})
	init := guest.Init{AgentDir: tmpl.GuestDirs().Agent, EnvDir: tmpl.GuestDirs().Env, Entrypoints: eps}
	hello, err := guest.NewConn(tmpl.Conn(), 0).Init(ctx, init)
	if err != nil {
		tmpl.Kill()
		tb.Fatalf("template Init: %v; logs:\n%s", err, tmpl.Wait().Logs)
	}
	if hello.ForkRefused != "" {
		tb.Fatalf("the template refuses forks: %s", hello.ForkRefused)
	}
	return tmpl, hello, init
}

// forkRun forks a run from tmpl and sends it init.
func forkRun(tb testing.TB, tmpl sandbox.Template, init guest.Init, id string, mounts ...sandbox.Mount) *agent {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sb, err := tmpl.Fork(ctx, id, mounts...)
	if err != nil {
		tb.Fatalf("Fork: %v", err)
	}
	tb.Cleanup(func() {
		sb.Kill()
		sb.Wait()
	})
	conn := guest.NewConn(sb.Conn(), 0)
	hello, err := conn.Init(ctx, init)
	if err != nil {
		sb.Kill()
		tb.Fatalf("run Init: %v; logs:\n%s", err, sb.Wait().Logs)
	}
	return &agent{sb: sb, conn: conn, hello: hello}
}

func TestForkRuns(t *testing.T) {
	e := mustEnv(t)
	tmpl, hello, init := startTemplate(t, e, forkSource, sandbox.Spec{}, "probe")
	if hello.ForkRefused != "" {
		t.Fatalf("the template refuses forks: %s", hello.ForkRefused)
	}
	a, b := forkRun(t, tmpl, init, ""), forkRun(t, tmpl, init, "")
	// Run a gets a secret with its invoke; it reaches neither b nor the
	// template.
	if err := a.conn.Invoke(guest.Invoke{ID: "s", Tag: "probe", Args: json.RawMessage(`["a"]`), Env: map[string]string{"SECRET": "s3cret-value"}, Keep: true, LogMark: "m1"}); err != nil {
		t.Fatal(err)
	}
	var ra map[string]any
	for {
		ev, err := a.conn.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == guest.Result {
			ra = decode(t, string(ev.Value))
			break
		}
	}
	if ra["secret"] != "s3cret-value" {
		t.Errorf("run a did not get its secret: %v", ra["secret"])
	}
	rb := decode(t, b.call(t, "probe", `["b"]`))
	if rb["secret"] != "" {
		t.Errorf("run b sees run a's secret: %v", rb["secret"])
	}
	if found := memoryHolds(t, tmpl.(*Template).zygotePID(), "s3cret-value"); found {
		t.Error("the template's memory holds a run's secret")
	}
	if !memoryHolds(t, a.sb.(*forkedSandbox).pid, "s3cret-value") {
		t.Error("the search cannot find the secret even in the run that got it")
	}
	a.sb.Kill() // kept for the check above (keep)
	for _, r := range []map[string]any{ra, rb} {
		if r["pid"] != 1.0 {
			t.Errorf("a run is pid %v, want 1 (PID 1 of its own namespace)", r["pid"])
		}
		if r["counter"] != 1.0 {
			t.Errorf("counter %v: a run saw another's memory writes", r["counter"])
		}
		if r["template_file"] != "written at import" {
			t.Errorf("a run does not see what the import wrote to /tmp: %v", r["template_file"])
		}
		if r["uid"] != agentUID() {
			t.Errorf("uid %v, want %v", r["uid"], agentUID())
		}
		if r["cwd"] != AgentMount || r["hostname"] != "sandbox" {
			t.Errorf("cwd %v hostname %v", r["cwd"], r["hostname"])
		}
		if len(r["seen_tmp"].([]any)) != 0 || len(r["seen_agent"].([]any)) != 0 {
			t.Errorf("a run sees another's files: /tmp %v, /agent %v", r["seen_tmp"], r["seen_agent"])
		}
		if procs := r["procs"].([]any); len(procs) != 1 {
			t.Errorf("a run sees processes %v, want only itself", procs)
		}
	}
	if exit := b.sb.Wait(); exit.Code != 0 {
		t.Errorf("run exit %+v", exit)
	}
	a.sb.Wait()
	// The template is unharmed and forks again; the runs' files are gone.
	c := forkRun(t, tmpl, init, "")
	rc := decode(t, c.call(t, "probe", `["c"]`))
	if len(rc["seen_tmp"].([]any)) != 0 || len(rc["seen_agent"].([]any)) != 0 || rc["counter"] != 1.0 {
		t.Errorf("a later run sees earlier runs' traces: %v", rc)
	}
}

// forked makes startSpec fork its sandboxes from a template (TestForked).
var forked bool

// TestForked runs the hostile-agent suite, the lifecycle and the
// directory tests on runs forked from a template: each test's sandbox is
// a run of a template of its agent.
func TestForked(t *testing.T) {
	forked = true
	defer func() { forked = false }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"HostileFiles", TestHostileFiles},
		{"HostileSyscalls", TestHostileSyscalls},
		{"HostileHost", TestHostileHost},
		{"Identity", TestIdentity},
		{"FDExhaustion", TestFDExhaustion},
		{"ForkBomb", TestForkBomb},
		{"DiskFill", TestDiskFill},
		{"KillLeavesNothing", TestKillLeavesNothing},
		{"ExitStatusAndLogs", TestExitStatusAndLogs},
		{"NoNetworkWithoutEgress", TestNoNetworkWithoutEgress},
		{"Egress", TestEgress},
		{"AgentDirWritable", TestAgentDirWritable},
		{"AgentDirWritableRealScratch", TestAgentDirWritableRealScratch},
		{"RealCgroupForkBomb", TestRealCgroupForkBomb},
		{"RealCgroupMemoryBomb", TestRealCgroupMemoryBomb},
		{"RealScratch", TestRealScratch},
		{"Mounts", TestMounts},
		{"MountEscapes", TestMountEscapes},
		{"MountPointSymlinkRefused", TestMountPointSymlinkRefused},
		{"LateMounts", late(TestMounts)},
		{"LateMountEscapes", late(TestMountEscapes)},
	} {
		t.Run(tc.name, tc.f)
	}
}

// late runs f with late mounts (lateMounts).
func late(f func(*testing.T)) func(*testing.T) {
	return func(t *testing.T) {
		lateMounts = true
		defer func() { lateMounts = false }()
		f(t)
	}
}

// BenchmarkForkCreateDestroy forks runs from one template, each
// initialised, killed and reaped, with the real cgroups (as the server
// runs them); sub-benchmarks in parallel measure the rate on all cores.
func BenchmarkForkCreateDestroy(b *testing.B) {
	for _, real := range []bool{false, true} {
		name := "fake-cgroups"
		if real {
			name = "real-cgroups"
		}
		b.Run(name, func(b *testing.B) {
			e := mustEnv(b)
			if real {
				e.backend.cfg.Cgroups = realCgroups(b)
			}
			tmpl, _, init := startTemplate(b, e, "def f():\n    return 1\n", sandbox.Spec{}, "f")
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					sb, err := tmpl.Fork(ctx, "")
					if err != nil {
						cancel()
						b.Error(err)
						return
					}
					if _, err := guest.NewConn(sb.Conn(), 0).Init(ctx, init); err != nil {
						b.Error(err)
					}
					cancel()
					sb.Kill()
					sb.Wait()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/float64(runtime.NumCPU()), "sandboxes/s/core")
		})
	}
}

// TestForkRunDisk: a run whose disk is larger than half its memory gets a
// scratch image of its own (not a tmpfs, which would count against its
// memory): it writes past half its memory and stops at ENOSPC, not with
// an OOM kill; the image is released with the run.
func TestForkRunDisk(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Cgroups = realCgroups(t)
	sm := realScratch(t)
	e.backend.cfg.Scratch = sm
	mountPoint := filepath.Join(sm.(*scratch.Manager).StateDir(), "disk1")
	src := "import os\ndef fill():\n    n = 0\n    try:\n        with open('/tmp/fill', 'wb') as f:\n            while True:\n                f.write(b'x' * (1 << 20))\n                f.flush()\n                n += 1\n    except OSError as e:\n        return {'mb': n, 'errno': e.errno}\n"
	tmpl, _, init := startTemplate(t, e, src, sandbox.Spec{Limits: sandbox.Limits{MemoryBytes: 64 << 20, DiskBytes: 48 << 20}}, "fill")
	a := forkRun(t, tmpl, init, "disk1")
	got := decode(t, a.call(t, "fill", "[]"))
	if got["errno"] != 28.0 || got["mb"].(float64) <= 32 || got["mb"].(float64) > 48 {
		t.Errorf("filling the run's disk: %v, want ENOSPC after more than half the memory (32 MiB) and at most 48 MiB", got)
	}
	if x := a.sb.Wait(); x.Code != 0 || len(x.Violations) != 0 {
		t.Errorf("run exit %+v", x)
	}
	// Its image's mount point is named after the run.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), mountPoint) {
			break
		}
		if time.Now().After(deadline) {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, mountPoint) {
					t.Errorf("the run's disk is still mounted after Wait: %s", l)
				}
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkForkStartInvoke is a run's cold start on the fork server, as
// the server runs it (real cgroups, scratch disks kept ready, the
// compiled shim): from Fork to the result of its one call, one run after
// another; teardown after, untimed. The template's own start (once per
// agent version) is BenchmarkLinuxStartInvokeServer's.
func BenchmarkForkStartInvoke(b *testing.B) {
	e, shim, _ := serverEnv(b)
	e.shim = shim
	tmpl, _, init := startTemplate(b, e, "def f(x):\n    return x\n", sandbox.Spec{}, "f")
	ctx := context.Background()
	var total time.Duration
	for b.Loop() {
		start := time.Now()
		sb, err := tmpl.Fork(ctx, "")
		if err != nil {
			b.Fatal(err)
		}
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(ctx, init); err != nil {
			b.Fatal(err)
		}
		if err := c.Invoke(guest.Invoke{ID: "c", Tag: "f", Args: []byte("[1]")}); err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := c.Next()
			if err != nil {
				b.Fatal(err)
			}
			if ev.Kind == guest.Result {
				break
			}
		}
		total += time.Since(start)
		b.StopTimer()
		sb.Kill()
		sb.Wait()
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "to-result-ns/op")
}

// memoryHolds reports whether the readable memory of process pid holds
// needle (the host reads it through /proc/pid/mem, as root).
func memoryHolds(t *testing.T, pid int, needle string) bool {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, line := range strings.Split(string(maps), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[1][0] != 'r' {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err != nil || hi-lo > 1<<30 {
			continue
		}
		buf := make([]byte, hi-lo)
		n, _ := mem.ReadAt(buf, int64(lo))
		if strings.Contains(string(buf[:n]), needle) {
			return true
		}
	}
	return false
}

// hostileImport is an agent whose import — which runs in the template,
// under ZygotePolicy and without landlock — tries what a run may not do,
// and reports.
const hostileImport = `
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
R = {}
def _try(name, f):
    ctypes.set_errno(0)
    try:
        r = f()
    except Exception as e:
        R[name] = type(e).__name__
        return
    R[name] = "ok" if r == 0 or (r > 0 and name != "ptrace") else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
RUN = 0x10000000 | 0x00020000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x20000000
_try("mount_in_template", lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None))
_try("unshare_user_only", lambda: libc.unshare(0x10000000))
_try("unshare_with_time", lambda: libc.unshare(RUN | 0x80))
_try("open_tree", lambda: libc.syscall(428, -100, b"/", 1))
_try("fsopen", lambda: libc.syscall(430, b"tmpfs", 0))
_try("ptrace", lambda: libc.ptrace(16, 1, 0, 0))
_try("setns", lambda: libc.setns(os.open("/proc/self/ns/mnt", os.O_RDONLY), 0))
_try("read_shadow", lambda: open("/etc/shadow").read() and 0)
# What the template may do: make a run's namespaces and mount in them;
# even so, nothing of the host is there to reach.
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    out = {}
    out["unshare_run"] = "ok" if libc.unshare(RUN) == 0 else errno.errorcode.get(ctypes.get_errno())
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", "1000 1000 1"), ("gid_map", "1000 1000 1")):
            with open("/proc/self/" + name, "w") as f:
                f.write(text)
        out["mount_in_own"] = "ok" if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0 else errno.errorcode.get(ctypes.get_errno())
    except Exception as e:
        out["mount_in_own"] = type(e).__name__
    out["host_root"] = str(sorted(os.listdir("/")))
    try:
        open("/etc/shadow").read()
        out["own_shadow"] = "ok"
    except Exception as e:
        out["own_shadow"] = type(e).__name__
    os.write(w, repr(out).encode())
    os._exit(0)
os.close(w)
data = b""
while True:
    b = os.read(r, 4096)
    if not b:
        break
    data += b
os.waitpid(pid, 0)
import ast
R.update(ast.literal_eval(data.decode()))

def report():
    return R
`

// TestForkTemplateImportBoundary: what the agent's import may do in the
// template beyond a run — create exactly the runs' namespaces and mount
// in them — reaches nothing of the host, and the rest stays denied.
func TestForkTemplateImportBoundary(t *testing.T) {
	e := mustEnv(t)
	tmpl, hello, init := startTemplate(t, e, hostileImport, sandbox.Spec{}, "report")
	if hello.ForkRefused != "" {
		t.Fatalf("refused: %s", hello.ForkRefused)
	}
	got := decode(t, forkRun(t, tmpl, init, "").call(t, "report", "[]"))
	t.Logf("import in the template: %v", got)
	for name, want := range map[string]string{
		"mount_in_template": "EPERM", "unshare_user_only": "EPERM", "unshare_with_time": "EPERM",
		"open_tree": "EPERM", "fsopen": "EPERM", "ptrace": "EPERM", "setns": "EPERM",
		"read_shadow": "FileNotFoundError",
		"unshare_run": "ok", "mount_in_own": "ok", "own_shadow": "FileNotFoundError",
	} {
		if got[name] != want {
			t.Errorf("%s: %v, want %s", name, got[name], want)
		}
	}
	if root := got["host_root"].(string); strings.Contains(root, "'home'") || strings.Contains(root, "'root'") || strings.Contains(root, "'var'") {
		t.Errorf("the template's own namespaces show the host's root: %s", root)
	}
}

// TestTemplateCgroupLimits: a template's cgroup, which holds every run's
// set-up until the run moves into its own, may use all the machine's CPUs
// and one process more per run it can have; a run's keeps its limits.
func TestTemplateCgroupLimits(t *testing.T) {
	l := sandbox.DefaultLimits
	if got := cgroupLimits(l, false); got != l {
		t.Errorf("a run's cgroup limits %+v, want %+v", got, l)
	}
	got := cgroupLimits(l, true)
	if got.CPU != max(l.CPU, float64(runtime.NumCPU())) || got.Processes != l.Processes+templateMaxRuns || got.MemoryBytes != l.MemoryBytes {
		t.Errorf("a template's cgroup limits %+v", got)
	}
}

// TestForkRefused: a template whose import left a thread or a process
// running, or a file open for writing, says why it must not be forked.
func TestForkRefused(t *testing.T) {
	e := mustEnv(t)
	for name, src := range map[string]string{
		"threads":          "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\ndef f():\n    return 1\n",
		"processes":        "import subprocess\nP = subprocess.Popen(['sleep', '60'])\ndef f():\n    return 1\n",
		"open for writing": "LOG = open('/tmp/agent.log', 'w')\ndef f():\n    return 1\n",
	} {
		t.Run(name, func(t *testing.T) {
			spec := sandbox.Spec{AgentDir: writeAgent(t, map[string]string{"main.py": src}), ShimPath: e.shim, Python: systemPython, Env: quickExit}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tmpl, err := e.backend.StartTemplate(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { tmpl.Kill(); tmpl.Wait() }()
			hello, err := guest.NewConn(tmpl.Conn(), 0).Init(ctx, guest.Init{AgentDir: tmpl.GuestDirs().Agent, Entrypoints: refs("f")})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(hello.ForkRefused, name) {
				t.Errorf("fork_refused %q, want it to say %q", hello.ForkRefused, name)
			}
		})
	}
}

// TestStartTemplateNotForkable: what may never be forked is refused with
// a NotForkableError, which tells the caller not to try again.
func TestStartTemplateNotForkable(t *testing.T) {
	e := mustEnv(t)
	dir := writeAgent(t, map[string]string{"main.py": "def f():\n    return 1\n"})
	for name, spec := range map[string]sandbox.Spec{
		"output directory":    {OutDir: t.TempDir()},
		"no process creation": {Limits: sandbox.Limits{NoProcessCreation: true}},
	} {
		spec.AgentDir, spec.ShimPath, spec.Python = dir, e.shim, systemPython
		tmpl, err := e.backend.StartTemplate(context.Background(), spec)
		if err == nil {
			tmpl.Kill()
			tmpl.Wait()
		}
		if _, ok := errors.AsType[*sandbox.NotForkableError](err); !ok {
			t.Errorf("%s: %v, want a NotForkableError", name, err)
		}
	}
}

// TestCheckRunRefuses: the host refuses as a run a process that shares
// the template's namespaces (the template itself, as a subverted one
// might send "ready" from it) and one that holds capabilities (this test
// process, as root on the host).
func TestCheckRunRefuses(t *testing.T) {
	e := mustEnv(t)
	tmpl, _, _ := startTemplate(t, e, "def f():\n    return 1\n", sandbox.Spec{}, "f")
	tp := tmpl.(*Template)
	if err := tp.checkRun(tp.zygotePID()); err == nil || !strings.Contains(err.Error(), "shares the template's") {
		t.Errorf("the template checked as a run: %v, want refused for its namespaces", err)
	}
	if err := tp.checkRun(os.Getpid()); err == nil {
		t.Error("a process with the host's namespaces and capabilities passed as a run")
	}
}

// readyFrame is what a run sends when it is ready.
var readyFrame = append([]byte{0, 0, 0, 16}, `{"type":"ready"}`...)

// FuzzReadReady: whatever a run (or a template that subverted it) writes
// before its ready frame, readReady returns an error or the writer's pid,
// never a pid for anything but the exact ready frame, and never hangs.
func FuzzReadReady(f *testing.F) {
	f.Add(readyFrame)
	f.Add([]byte{0, 0, 0, 1, '{'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add(append(readyFrame, "trailing"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.SetsockoptInt(pair[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		host := os.NewFile(uintptr(pair[0]), "host")
		fc, err := net.FileConn(host)
		host.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer fc.Close()
		w := os.NewFile(uintptr(pair[1]), "run")
		w.Write(data)
		w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		pid, fds, err := readReady(ctx, fc.(*net.UnixConn))
		for _, fd := range fds {
			unix.Close(fd)
		}
		if err == nil && (pid != os.Getpid() || !bytes.HasPrefix(data, readyFrame)) {
			t.Errorf("readReady(%q) = pid %d, want an error", data, pid)
		}
	})
}
