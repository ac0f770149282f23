//go:build linux

package linux

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// pidNSMembers lists the host pids of the processes in the PID namespace
// of host process pid.
func pidNSMembers(ns string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && l == ns {
			if _, _, ok := procState(pid); ok {
				out = append(out, pid)
			}
		}
	}
	return out
}

// TestKillLeavesNothing kills a sandbox whose agent left a background
// process and checks no process, mount, state or cgroup survives Wait.
func TestKillLeavesNothing(t *testing.T) {
	e := mustEnv(t)
	before := mounts(t)
	src, _ := os.ReadFile("testdata/hostile.py")
	a := startAgent(t, e, string(src), sandbox.Spec{ID: "killme"}, "h_stream=hang")
	if err := a.conn.Invoke(guest.Invoke{ID: "c", Tag: "h_stream", Stream: true}); err != nil {
		t.Fatal(err)
	}
	if ev, err := a.conn.Next(); err != nil || ev.Kind != guest.Chunk {
		t.Fatalf("first event %v %s, %v; want the sleeper's pid", ev.Kind, ev.Value, err)
	}
	e.cgroups.mu.Lock()
	pid, held := e.cgroups.pids[len(e.cgroups.pids)-1], e.cgroups.held[len(e.cgroups.held)-1]
	e.cgroups.mu.Unlock()
	if !held {
		t.Errorf("the supervisor had got past the sync pipe when its pid was added to the cgroup")
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		t.Fatal(err)
	}
	if forked {
		// The run (PID 1 of its namespace) and sleep; no state dir.
		if m := pidNSMembers(ns); len(m) < 2 {
			t.Fatalf("run processes %v, want the run and sleep", m)
		}
	} else {
		if m := pidNSMembers(ns); len(m) < 3 {
			t.Fatalf("sandbox processes %v, want the supervisor, the shim and sleep", m)
		}
		if _, err := os.Stat(e.state + "/killme"); err != nil {
			t.Errorf("state dir: %v", err)
		}
	}
	if err := a.sb.Kill(); err != nil {
		t.Fatal(err)
	}
	exit := a.sb.Wait()
	if exit.Code != -1 || exit.Signal != "SIGKILL" {
		t.Errorf("exit %+v, want killed", exit)
	}
	if err := a.sb.Kill(); err != nil {
		t.Errorf("Kill after Wait: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(pidNSMembers(ns)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m := pidNSMembers(ns); len(m) > 0 {
		t.Errorf("processes %v survive the sandbox", m)
	}
	if entries, _ := os.ReadDir(e.state); len(entries) != 0 && !forked { // forked: the template's, until it ends
		t.Errorf("state dir holds %v after Wait", entries)
	}
	if m := newMounts(before, mounts(t)); len(m) != 0 {
		t.Errorf("new host mounts %q", m)
	}
	e.cgroups.mu.Lock()
	defer e.cgroups.mu.Unlock()
	if live := e.cgroups.live; live != 0 && !(forked && live == 1) { // forked: the template's is live
		t.Errorf("%d cgroups not destroyed", live)
	}
}

func TestExitStatusAndLogs(t *testing.T) {
	e := mustEnv(t)
	a := startAgent(t, e, "import os\ndef f():\n    print('bye', flush=True)\n    os._exit(7)\n", sandbox.Spec{LogLimit: 3}, "f")
	if err := a.conn.Invoke(guest.Invoke{ID: "c", Tag: "f"}); err != nil {
		t.Fatal(err)
	}
	exit := a.sb.Wait()
	if exit.Code != 7 || exit.Logs != "ye\n" || !exit.Truncated || exit.Duration <= 0 {
		t.Errorf("exit %+v, want code 7 and the truncated tail of the log", exit)
	}
}

func TestStartErrors(t *testing.T) {
	e := mustEnv(t)
	agent := writeAgent(t, map[string]string{"main.py": ""})
	private := t.TempDir() // 0700: the sandbox's uid may not read it
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		spec sandbox.Spec
		want string
	}{
		{"no agent dir", t.Context(), sandbox.Spec{ShimPath: e.shim, Python: systemPython}, "agent directory"},
		{"pyenv python", t.Context(), sandbox.Spec{AgentDir: agent, ShimPath: e.shim, Python: "/root/.pyenv/shims/python3"}, "python"},
		{"private agent dir", t.Context(), sandbox.Spec{AgentDir: private, ShimPath: e.shim, Python: systemPython}, "not readable by other users"},
		{"egress without proxy", t.Context(), sandbox.Spec{AgentDir: agent, ShimPath: e.shim, Python: systemPython,
			Network: sandbox.Network{Mode: core.NetworkEgress}}, "egress proxy"},
		{"bad mode", t.Context(), sandbox.Spec{AgentDir: agent, ShimPath: e.shim, Python: systemPython,
			Network: sandbox.Network{Mode: "bridge"}}, "network mode"},
		{"cancelled", cancelled, sandbox.Spec{AgentDir: agent, ShimPath: e.shim, Python: systemPython}, "cancel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "private agent dir" && os.Geteuid() != 0 {
				t.Skip("the sandbox's root is the server's own uid: it can read the directory")
			}
			sb, err := e.backend.Start(tt.ctx, tt.spec)
			if err == nil {
				sb.Kill()
				sb.Wait()
				t.Fatalf("Start succeeded")
			}
			if !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("Start error %q, want one about %q", err, tt.want)
			}
		})
	}
	if entries, _ := os.ReadDir(e.state); len(entries) != 0 {
		t.Errorf("state dir holds %v after failed starts", entries)
	}
}

// TestCheckPython: the server asks at start whether the sandbox can run
// each configured interpreter; one outside the system directories, such
// as a pyenv build under /root, it cannot.
func TestCheckPython(t *testing.T) {
	var b Backend
	if err := b.CheckPython(systemPython); err != nil {
		t.Errorf("CheckPython(%s) = %v", systemPython, err)
	}
	// An interpreter outside the system directories: a copy of the
	// system's, as a pyenv build under /root would be.
	elsewhere := filepath.Join(t.TempDir(), "python3")
	src, err := os.ReadFile(systemPython)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(elsewhere, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.CheckPython(elsewhere); err == nil || !strings.Contains(err.Error(), "not under a system directory") {
		t.Errorf("CheckPython(%s) = %v, want it refused", elsewhere, err)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{Exe: "x", StateDir: "y"}); err == nil || !strings.Contains(err.Error(), "cgroup") {
		t.Errorf("New without cgroups: %v, want an error about cgroups", err)
	}
	b, err := New(Config{Exe: "x", StateDir: "y", AllowNoCgroups: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "linux" {
		t.Errorf("Name() = %q", b.Name())
	}
}

// fakeEgress is a test double of EgressManager (package internal/egress
// is being written): an HTTP proxy on the unix socket that answers every
// request itself, naming the sandbox and the requested URL.
type fakeEgress struct {
	mu   sync.Mutex
	seen []string
}

func (f *fakeEgress) Listen(path, sandboxID, agentID string, n sandbox.Network) (io.Closer, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return f.Serve(ln, sandboxID, agentID, n), nil
}

// Serve implements EgressServer (a forked run's listener).
func (f *fakeEgress) Serve(ln net.Listener, sandboxID, agentID string, n sandbox.Network) io.Closer {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				f.mu.Lock()
				f.seen = append(f.seen, sandboxID+" "+req.Method+" "+req.URL.String())
				f.mu.Unlock()
				body := "proxied " + sandboxID + " " + req.URL.String()
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			}()
		}
	}()
	return ln
}

func TestEgress(t *testing.T) {
	e := mustEnv(t)
	fe := &fakeEgress{}
	e.backend.cfg.Egress = fe
	src, _ := os.ReadFile("testdata/hostile.py")
	a := startAgent(t, e, string(src), sandbox.Spec{ID: "egress1", Network: sandbox.Network{Mode: core.NetworkEgress}}, "fetch")
	got := decode(t, a.call(t, "fetch", `["http://example.com/x"]`))
	if got["ok"] != true || got["value"] != "proxied egress1 http://example.com/x" {
		a.sb.Kill()
		t.Errorf("fetch through the proxy: %v; logs:\n%s", got, a.sb.Wait().Logs)
	}
	fe.mu.Lock()
	defer fe.mu.Unlock()
	if len(fe.seen) != 1 {
		t.Errorf("proxy saw %v", fe.seen)
	}
}

func TestNoNetworkWithoutEgress(t *testing.T) {
	got := hostile(t, sandbox.Spec{}, "fetch", `["http://93.184.215.14/"]`)
	if got["ok"] != false {
		t.Errorf("fetch without egress: %v, want a failure", got)
	}
}

func TestNoProcessCreation(t *testing.T) {
	e := mustEnv(t)
	agent := writeAgent(t, map[string]string{"main.py": ""})
	spec := sandbox.Spec{AgentDir: agent, ShimPath: e.shim, Python: systemPython, Limits: sandbox.Limits{NoProcessCreation: true}}
	if sb, err := e.backend.Start(t.Context(), spec); err == nil {
		sb.Kill()
		sb.Wait()
		t.Fatal("Start with NoProcessCreation succeeded though the shim does not filter")
	}
	// With a shim that installs the filter (see also
	// TestNoProcessCreationShim).
	e.backend.cfg.ShimFiltersProcesses = true
	got := hostileWith(t, e, sandbox.Spec{Limits: sandbox.Limits{NoProcessCreation: true}}, "no_processes", "[]").result
	for _, name := range []string{"fork", "subprocess"} {
		if r := got[name].(map[string]any); r["ok"] != false || r["errno"] != "EPERM" {
			t.Errorf("%s: %v, want EPERM", name, r)
		}
	}
	if r := got["thread"].(map[string]any); r["ok"] != true {
		t.Errorf("thread: %v, want allowed", r)
	}
}
