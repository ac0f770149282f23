//go:build linux

package linux

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/sandbox"
)

// hostile runs one entrypoint of testdata/hostile.py in a new sandbox
// (a guest serves one invocation) and returns its decoded result.
func hostile(t *testing.T, spec sandbox.Spec, name, args string) map[string]any {
	t.Helper()
	return hostileWith(t, mustEnv(t), spec, name, args).result
}

func hostileSource(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("testdata/hostile.py")
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestHostileFiles(t *testing.T) {
	secretDir := t.TempDir() // a "server data dir" the sandbox must not see
	secret := filepath.Join(secretDir, "secret.txt")
	if err := os.WriteFile(secret, []byte("server secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/etc/shadow", secret, "/root/.bashrc", "/proc/1/root/etc/passwd", "/proc/kcore"} {
		got := hostile(t, sandbox.Spec{}, "read_file", "["+jsonString(path)+"]")
		if forked && path == "/proc/1/root/etc/passwd" && got["ok"] == true {
			// A forked run is PID 1 of its namespace: this is its own
			// root, and the file the sandbox's generated passwd.
			if v, _ := got["value"].(string); !strings.Contains(v, "agent:x:1000:1000:agent:") {
				t.Errorf("reading %s: %q, not the sandbox's own passwd", path, v)
			}
			continue
		}
		if got["ok"] != false {
			t.Errorf("reading %s: %v, want an error", path, got)
		} else {
			t.Logf("reading %s: %v %v", path, got["type"], got["errno"])
		}
	}
	got := hostile(t, sandbox.Spec{}, "write_outside", "[]")
	for p, r := range got {
		r := r.(map[string]any)
		if p == "/tmp/ok" || p == "/agent/ok" {
			if r["ok"] != true {
				t.Errorf("writing %s: %v, want success", p, r)
			}
			continue
		}
		if r["ok"] != false || (r["errno"] != "EROFS" && r["errno"] != "EACCES" && !(p == "/proc/x" && r["errno"] == "ENOENT")) {
			t.Errorf("writing %s: %v, want EROFS/EACCES", p, r)
		}
	}
}

func TestHostileSyscalls(t *testing.T) {
	got := hostile(t, sandbox.Spec{}, "syscalls", "[]")
	if os.Geteuid() != 0 {
		delete(got, "setuid0") // the agent is uid 0 of its namespace: a no-op
	}
	for name, want := range map[string]string{
		"mount": "EPERM", "umount": "EPERM", "unshare_user": "EPERM", "unshare_net": "EPERM",
		"ptrace_pid1": "EPERM", "chroot": "EPERM", "keyctl": "EPERM", "bpf": "EPERM",
		"io_uring_setup": "EPERM", "personality_linux32": "EPERM", "setuid0": "EPERM",
	} {
		r, ok := got[name].(map[string]any)
		if !ok {
			continue
		}
		if forked && name == "setuid0" && r["errno"] == "EINVAL" {
			// A forked run's user namespace maps only the agent's
			// uid: there is no uid 0 to become.
			continue
		}
		if r["ret"] != float64(-1) || r["errno"] != want {
			t.Errorf("%s: %v, want -1 %s", name, r, want)
		}
	}
	if r := got["personality_query"].(map[string]any); r["ret"] == float64(-1) {
		t.Errorf("personality query denied: %v", r)
	}
	for _, name := range []string{"raw_socket", "packet_socket"} {
		if r := got[name].(map[string]any); r["ok"] != false || r["errno"] != "EPERM" {
			t.Errorf("%s: %v, want PermissionError", name, r)
		}
	}
	for _, name := range []string{"udp_socket", "thread"} {
		if r := got[name].(map[string]any); r["ok"] != true {
			t.Errorf("%s: %v, want it allowed", name, r)
		}
	}
	su := hostile(t, sandbox.Spec{}, "setuid_binary", "[]")
	if su["code"] == float64(0) {
		t.Errorf("setuid mount succeeded: %v", su)
	}
	t.Logf("setuid mount: %v", su)
}

func TestHostileHost(t *testing.T) {
	sleep := exec.Command("sleep", "1000")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	got := hostile(t, sandbox.Spec{}, "kill_host", fmt.Sprint("[", sleep.Process.Pid, "]"))
	if got["ok"] != false || got["errno"] != "ESRCH" {
		t.Errorf("kill of host pid %d: %v, want ESRCH", sleep.Process.Pid, got)
	}
	if err := sleep.Process.Signal(os.Signal(nil)); err != nil && !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("host sleep: %v", err)
	}
	if _, _, ok := procState(sleep.Process.Pid); !ok {
		t.Errorf("host sleep %d is gone", sleep.Process.Pid)
	}
	got = hostile(t, sandbox.Spec{}, "connect_host", fmt.Sprint("[", port, "]"))
	if got["ok"] != false {
		t.Errorf("connect to the host's 127.0.0.1:%d: %v, want a failure", port, got)
	}
	t.Logf("connect to host port: %v", got)
}

func TestIdentity(t *testing.T) {
	got := hostile(t, sandbox.Spec{Limits: sandbox.Limits{OpenFiles: 200, Processes: 50}}, "identity", "[]")
	t.Logf("identity %v", got)
	for k, want := range map[string]any{
		"uid": agentUID(), "euid": agentUID(), "gid": agentUID(),
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "CapBnd": "0000000000000000",
		"CapInh": "0000000000000000", "CapAmb": "0000000000000000",
		"NoNewPrivs": "1", "Seccomp": "2", "hostname": "sandbox",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if g := got["groups"].([]any); len(g) != 0 {
		t.Errorf("supplementary groups %v, want none", g)
	}
	if r := got["pid1"].(map[string]any); r["ok"] != true || r["value"] == "python3" {
		t.Errorf("/proc/1/comm: %v, want the supervisor", r)
	} else if v := r["value"].(string); forked && strings.HasPrefix(v, "/usr/bin/python3 -I -B -u /run/runagent/shim-") {
		// A forked run is PID 1 of its own namespace (no supervisor).
	} else if v != "runagent __supervisor --sandbox" {
		t.Errorf("PID 1 is %q, want the supervisor", v)
	}
	if pids := got["pids"].([]any); len(pids) > 4 || pids[0] != float64(1) {
		t.Errorf("agent sees pids %v, want only the sandbox's", pids)
	}
	// stdio, the control channel (moved by the shim to a private
	// number) and the descriptor listdir used; nothing of the host's.
	if fds := fmt.Sprint(got["fd_targets"]); fds != "[/dev/null ? pipe socket]" {
		t.Errorf("agent holds descriptors %v (%s), want only stdio and the control channel", got["fds"], fds)
	}
	if ifs := fmt.Sprint(got["ifaces"]); ifs != "[lo]" {
		t.Errorf("interfaces %s, want only lo", ifs)
	}
	nproc := "[50 50]"
	if forked {
		nproc = "[102 102]" // a backstop behind pids.max (TestForkBomb)
	}
	if fmt.Sprint(got["rlimit_nofile"]) != "[200 200]" || fmt.Sprint(got["rlimit_nproc"]) != nproc {
		t.Errorf("rlimits nofile %v nproc %v", got["rlimit_nofile"], got["rlimit_nproc"])
	}
}

func TestFDExhaustion(t *testing.T) {
	got := hostile(t, sandbox.Spec{Limits: sandbox.Limits{OpenFiles: 64}}, "fd_exhaust", "[]")
	if got["errno"] != "EMFILE" || got["opened"].(float64) > 64 {
		t.Errorf("fd exhaustion: %v, want EMFILE within 64", got)
	}
	// The next sandbox works.
	if r := hostile(t, sandbox.Spec{}, "read_file", `["/etc/passwd"]`); r["ok"] != true {
		t.Errorf("next sandbox: %v", r)
	}
}

func TestForkBomb(t *testing.T) {
	got := hostile(t, sandbox.Spec{Limits: sandbox.Limits{Processes: 20}}, "fork_bomb", "[]")
	// Without a real cgroup (these tests' double) only RLIMIT_NPROC
	// stops it; a forked run's is a backstop at twice the limit plus
	// two, so that pids.max is the limit hit (TestRealCgroupForkBomb).
	limit := 20.0
	if forked {
		limit = 2*20 + 2
	}
	if got["errno"] != "EAGAIN" || got["forked"].(float64) >= limit {
		t.Errorf("fork bomb: %v, want EAGAIN before %v processes", got, limit)
	}
	t.Logf("fork bomb: %v", got)
}

func TestDiskFill(t *testing.T) {
	got := hostile(t, sandbox.Spec{Limits: sandbox.Limits{DiskBytes: 8 << 20}}, "fill_disk", "[]")
	if got["ok"] != false || got["errno"] != "ENOSPC" {
		t.Errorf("filling /tmp: %v, want ENOSPC", got)
	}
}

// procState returns a process's state letter, or ok false if it is gone.
func procState(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	fmt.Sscan(f[1], &ppid)
	return f[0], ppid, f[0] != "Z"
}
