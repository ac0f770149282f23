package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The hostile agents of testdata/hostile (no network) and
// testdata/hostile_net (egress mode, allow-list api.allowed.example:443).
const (
	hostileID    = "1b8de0b1-5773-4003-beac-0e44b184925d"
	hostileNetID = "2c73cdb5-79fb-4f30-a1e3-d10538aeedd2"
)

// caseTimeout bounds every hostile run (timeout_seconds of the run body).
const caseTimeout = 20

// runOn runs tag of agent id through POST /run with the given kwargs and
// the case timeout, and reports how long the call took.
func (s *server) runOn(t testing.TB, id, tag string, kwargs map[string]any) (int, *envelope, time.Duration) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"entrypoint_tag": tag, "input_kwargs": kwargs, "timeout_seconds": caseTimeout})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+id+"/run", "application/json", bytes.NewReader(b))
	return status, env, time.Since(start)
}

// attack runs an entrypoint that reports instead of raising and returns
// its report. The call must succeed within the case timeout.
func (s *server) attack(t testing.TB, id, tag string, kwargs map[string]any) map[string]any {
	t.Helper()
	rep, _ := s.attackID(t, id, tag, kwargs)
	return rep
}

// attackID is attack that also returns the invocation id.
func (s *server) attackID(t testing.TB, id, tag string, kwargs map[string]any) (map[string]any, string) {
	t.Helper()
	status, env, took := s.runOn(t, id, tag, kwargs)
	if status != http.StatusOK || !env.Success {
		t.Fatalf("%s: status %d error %+v after %v; want a report", tag, status, env.Error, took)
	}
	if took > caseTimeout*time.Second {
		t.Errorf("%s took %v", tag, took)
	}
	var data string
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatalf("%s: data %s is not a structured string", tag, env.Data)
	}
	_, v := decodeStructured(t, data)
	rep, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: report %s is not an object", tag, data)
	}
	t.Logf("%s (%v): %s", tag, took.Round(time.Millisecond), compact(rep))
	return rep, env.InvocationID
}

// invocationLogs returns the logs recorded for an invocation. They are
// recorded once the sandbox is torn down, just after the answer, so it
// waits for them for a few seconds.
func invocationLogs(t testing.TB, s *server, id string) string {
	t.Helper()
	// The logs arrive with the sandbox's teardown, after the answer; a
	// fork-bombed sandbox on a busy machine takes a while to tear down.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, env := s.do(t, http.MethodGet, "/api/v1/invocations/"+id, "", nil)
		if status != http.StatusOK {
			t.Fatalf("invocation %s: status %d error %+v", id, status, env.Error)
		}
		var rec struct {
			Logs string `json:"logs"`
		}
		json.Unmarshal(env.Data, &rec)
		if rec.Logs != "" || time.Now().After(deadline) {
			return rec.Logs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stillServes: after an attack, both the attacked agent and the plain
// test agent answer a normal call.
func (s *server) stillServes(t *testing.T, id string) {
	t.Helper()
	if status, env, took := s.runOn(t, id, "ok", nil); status != http.StatusOK || !env.Success {
		t.Errorf("next call of the attacking agent: status %d error %+v (%v)", status, env.Error, took)
	}
	if status, env, took := s.runOn(t, agentID, "value", map[string]any{"kind": "integer"}); status != http.StatusOK || !env.Success {
		t.Errorf("next call of another agent: status %d error %+v (%v)", status, env.Error, took)
	}
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// num reads a JSON number of a report (decoded with UseNumber).
func num(v any) float64 {
	var f float64
	if n, ok := v.(json.Number); ok {
		f, _ = n.Float64()
	}
	return f
}

// blocked asserts a report entry says the attempt failed with one of errnos.
func blocked(t *testing.T, what string, r any, errnos ...string) {
	t.Helper()
	m, ok := r.(map[string]any)
	if !ok {
		t.Errorf("%s: no report (%v)", what, r)
		return
	}
	if m["blocked"] != true || !slices.Contains(errnos, fmt.Sprint(m["errno"])) {
		t.Errorf("%s: %s, want it blocked with %s", what, compact(m), strings.Join(errnos, " or "))
	}
}

// TestHostile runs attacks through `runagent serve` and the HTTP API: each
// is contained, reported clearly, and the server serves the next call; at
// the end the stopped server has left nothing on the host.
func TestHostile(t *testing.T) {
	needSandbox(t)
	suiteStart := time.Now()
	s := startServer(t, "testdata/hostile", "testdata/hostile_net")
	m := pidsCgroupRE.FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("the server log does not name its pids cgroup:\n%s", s.stderr.String())
	}
	cgroupParent := m[1]
	cgroupName := filepath.Base(cgroupParent) // runagent-<hash>, in every controller

	t.Run("fork_bomb", func(t *testing.T) {
		// Every child forks too and never exits: the pids limit (100)
		// stops the bomb, the parent reports, the teardown kills the rest.
		r, id := s.attackID(t, hostileID, "fork_bomb", nil)
		blocked(t, "fork bomb", r, "EAGAIN")
		if n := num(r["pids_seen"]); n > 100 {
			t.Errorf("the agent saw %v processes; the limit is 100", n)
		}
		if sec := num(r["seconds"]); sec > 10 {
			t.Errorf("the pids limit stopped the bomb only after %vs", sec)
		}
		// The invocation's record names the limit the bomb hit.
		if logs := invocationLogs(t, s, id); !strings.Contains(logs, "process limit") {
			t.Errorf("the invocation's logs do not name the process limit: %q", logs)
		}
		// The bomb's processes (which never exit by themselves) are killed
		// with its sandbox: only warm sandboxes stay, a few processes each.
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := len(sandboxProcs(cgroupName))
			if n <= 20 {
				t.Logf("%d processes in the server's sandboxes after the bomb", n)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("10s after the fork bomb returned, the server's sandboxes still hold %d processes", n)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		s.stillServes(t, hostileID)
	})

	t.Run("memory_bomb", func(t *testing.T) {
		// 2 GiB against the 512 MiB default: the cgroup OOM-kills the agent.
		status, env, took := s.runOn(t, hostileID, "memory_bomb", map[string]any{"mb": 2048})
		if env.Success {
			t.Fatalf("a 2 GiB allocation under a 512 MiB limit succeeded: %s", env.Data)
		}
		if env.Error == nil {
			t.Fatalf("status %d without an error", status)
		}
		t.Logf("memory bomb (%v): status %d code %s message %q details %s", took.Round(time.Millisecond), status, env.Error.Code, env.Error.Message, env.Error.Details)
		if status != http.StatusOK || env.Error.Code != "AGENT_ERROR" {
			t.Errorf("status %d code %s, want 200 (success false) AGENT_ERROR", status, env.Error.Code)
		}
		var d struct {
			Type      string   `json:"type"`
			ExitCode  *int     `json:"exit_code"`
			LimitsHit []string `json:"limits_hit"`
		}
		json.Unmarshal(env.Error.Details, &d)
		if !slices.Contains(d.LimitsHit, "memory limit (OOM kill)") || !strings.Contains(env.Error.Message, "memory limit (OOM kill)") {
			t.Errorf("the error does not name the memory limit: message %q, limits_hit %v", env.Error.Message, d.LimitsHit)
		}
		if took > 15*time.Second {
			t.Errorf("the OOM kill took %v to be reported", took)
		}
		s.stillServes(t, hostileID)
	})

	t.Run("disk_fill", func(t *testing.T) {
		// resources.disk_mb 64: /tmp fills up with ENOSPC, not the host's disk.
		r := s.attack(t, hostileID, "disk_fill", map[string]any{"max_mb": 1024})
		blocked(t, "filling /tmp (disk_mb 64)", r, "ENOSPC")
		if w := num(r["written_mb"]); w > 64 || w < 16 {
			t.Errorf("wrote %v MiB before ENOSPC, want at most 64 (and some)", w)
		}
		s.stillServes(t, hostileID)
	})

	t.Run("disk_fill_default_1GiB", func(t *testing.T) {
		// The egress agent asks for no disk: the 1 GiB default applies.
		r := s.attack(t, hostileNetID, "disk_fill", map[string]any{"max_mb": 4096})
		blocked(t, "filling /tmp (default)", r, "ENOSPC")
		if w := num(r["written_mb"]); w > 1024 || w < 512 {
			t.Errorf("wrote %v MiB before ENOSPC, want at most the 1 GiB default (and over half of it)", w)
		}
		s.stillServes(t, hostileNetID)
	})

	t.Run("fd_exhaustion", func(t *testing.T) {
		r := s.attack(t, hostileID, "fd_exhaust", nil)
		blocked(t, "opening files", r, "EMFILE")
		if n := num(r["opened"]); n > 1024 || n < 900 {
			t.Errorf("opened %v descriptors before EMFILE, want just under the default 1024", n)
		}
		s.stillServes(t, hostileID)
	})

	t.Run("cpu_spin_neighbour", func(t *testing.T) {
		// 4 spinning processes are capped at 1 CPU of the 2: a neighbour's
		// call stays fast while they spin.
		type result struct {
			status int
			env    *envelope
			took   time.Duration
		}
		done := make(chan result, 1)
		calls := []struct {
			id, tag string
			kwargs  map[string]any
		}{{agentID, "value", map[string]any{"kind": "integer"}}, {hostileID, "ok", nil}}
		// The same calls on an idle host first: the baseline latency (three
		// rounds, so that it covers calls served by warm sandboxes and not).
		var baseline time.Duration
		for i := 0; i < 3; i++ {
			for _, c := range calls {
				status, env, took := s.runOn(t, c.id, c.tag, c.kwargs)
				if status != http.StatusOK || !env.Success {
					t.Fatalf("%s of %s: status %d error %+v", c.tag, c.id, status, env.Error)
				}
				baseline = max(baseline, took)
			}
		}
		t.Logf("baseline latency (idle host): %v", baseline.Round(time.Millisecond))
		go func() {
			status, env, took := s.runOn(t, hostileID, "cpu_spin", map[string]any{"seconds": 5, "workers": 4})
			done <- result{status, env, took}
		}()
		time.Sleep(1500 * time.Millisecond) // the spinners are running
		for i := 0; i < 3; i++ {
			for _, c := range calls {
				status, env, took := s.runOn(t, c.id, c.tag, c.kwargs)
				if status != http.StatusOK || !env.Success {
					t.Errorf("%s of %s while the spinner runs: status %d error %+v", c.tag, c.id, status, env.Error)
				}
				t.Logf("%s of %s while the spinner runs: %v", c.tag, c.id[:8], took.Round(time.Millisecond))
				// A starved neighbour would wait seconds; a cold start that
				// shares the other core with the test packages CI runs
				// beside this one was measured at up to 0.6 s more.
				if took > 2*time.Second || took > baseline+time.Second {
					t.Errorf("%s of %s took %v while another agent spins (idle: %v); want under 2s and at most 1s slower",
						c.tag, c.id[:8], took, baseline)
				}
			}
		}
		res := <-done
		if res.status != http.StatusOK || !res.env.Success {
			t.Fatalf("cpu_spin: status %d error %+v", res.status, res.env.Error)
		}
		var data string
		json.Unmarshal(res.env.Data, &data)
		_, v := decodeStructured(t, data)
		r, _ := v.(map[string]any)
		t.Logf("cpu_spin (%v): %s", res.took.Round(time.Millisecond), compact(r))
		// At most the cap (1 core); at least enough to show the spinners
		// ran (on a loaded 2-core machine they were measured at 0.27).
		if ratio := num(r["cpu_per_wall"]); ratio > 1.3 || ratio < 0.2 {
			t.Errorf("4 spinners used %v CPUs on average; the cap is 1", ratio)
		}
		if wall := num(r["wall"]); wall < 4.5 {
			t.Errorf("the spinners ran %vs, want about 5 (the neighbour calls must overlap them)", wall)
		}
	})

	t.Run("read_secrets", func(t *testing.T) {
		// The server's data directory and a file in it exist on the host
		// and are invisible to the agent.
		var dataFile string // the database if there is one, else any file
		filepath.WalkDir(s.DataDir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && (dataFile == "" || strings.HasSuffix(p, ".db")) {
				dataFile = p
			}
			return nil
		})
		if dataFile == "" {
			t.Fatalf("no file in the server's data directory %s", s.DataDir)
		}
		paths := []string{"/etc/shadow", s.DataDir, dataFile, "/root", "/proc/1/root/etc/shadow"}
		r := s.attack(t, hostileID, "read_paths", map[string]any{"paths": paths})
		for _, p := range paths {
			blocked(t, "reading "+p, r[p], "ENOENT", "EACCES", "EPERM")
		}
		s.stillServes(t, hostileID)
	})

	t.Run("write_outside_tmp", func(t *testing.T) {
		r := s.attack(t, hostileID, "write_outside", nil)
		for p, e := range r {
			if p == "/tmp/ok" {
				if e.(map[string]any)["blocked"] != false {
					t.Errorf("writing /tmp: %s, want success", compact(e))
				}
				continue
			}
			blocked(t, "writing "+p, e, "EROFS", "EACCES", "EPERM", "ENOENT")
		}
		s.stillServes(t, hostileID)
	})

	t.Run("privileged_syscalls", func(t *testing.T) {
		// ptrace, mount, unshare, raw and packet sockets: EPERM.
		r := s.attack(t, hostileID, "syscalls", nil)
		for _, name := range []string{"ptrace_attach_pid1", "ptrace_seize_ppid", "mount_tmpfs", "mount_proc",
			"unshare_user", "unshare_mount", "unshare_net", "raw_socket", "packet_socket"} {
			blocked(t, name, r[name], "EPERM")
		}
		s.stillServes(t, hostileID)
	})

	t.Run("setuid_binary", func(t *testing.T) {
		// /usr/bin/mount is setuid root on the host; in the sandbox it does
		// not run as root, so mounting fails.
		r := s.attack(t, hostileID, "setuid_binary", nil)
		if r["setuid_bit"] != true {
			t.Logf("note: /usr/bin/mount has no setuid bit in the sandbox")
		}
		if num(r["code"]) == 0 || r["blocked"] != true {
			t.Errorf("setuid mount succeeded: %s", compact(r))
		}
		if num(r["euid_after"]) == 0 {
			t.Errorf("the agent runs with euid 0: %s", compact(r))
		}
		if r["no_new_privs"] != "1" {
			t.Errorf("NoNewPrivs = %v, want 1", r["no_new_privs"])
		}
		s.stillServes(t, hostileID)
	})

	t.Run("kill_host_process", func(t *testing.T) {
		sleep := exec.Command("sleep", "300")
		if err := sleep.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
		pid := sleep.Process.Pid
		r := s.attack(t, hostileID, "kill_host", map[string]any{"pid": pid})
		blocked(t, fmt.Sprintf("kill -9 of host pid %d", pid), r, "ESRCH")
		if err := sleep.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the host's sleep %d is gone: %v", pid, err)
		}
		if st := procStateLetter(pid); st == "" || st == "Z" {
			t.Errorf("the host's sleep %d is in state %q, want alive", pid, st)
		}
		s.stillServes(t, hostileID)
	})

	for _, a := range []struct{ name, id string }{{"no_network", hostileID}, {"egress_mode", hostileNetID}} {
		t.Run("direct_tcp_"+a.name, func(t *testing.T) {
			// The agent's 127.0.0.1 is its own: a host listener sees nothing.
			// Not port 3128: inside the sandbox that is the proxy relay.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			for ln.Addr().(*net.TCPAddr).Port == 3128 {
				ln.Close()
				if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
			}
			port := ln.Addr().(*net.TCPAddr).Port
			var accepted atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			r := s.attack(t, a.id, "connect", map[string]any{"host": "127.0.0.1", "port": port})
			blocked(t, fmt.Sprintf("TCP to the host's 127.0.0.1:%d", port), r, "ECONNREFUSED", "ENETUNREACH", "EPERM", "EACCES")
			time.Sleep(200 * time.Millisecond)
			ln.Close()
			wg.Wait()
			if n := accepted.Load(); n != 0 {
				t.Errorf("the host listener accepted %d connections from the sandbox", n)
			}
			// No route anywhere but loopback (a UDP connect sends nothing).
			r = s.attack(t, a.id, "no_route", nil)
			blocked(t, "route to 192.0.2.1", r, "ENETUNREACH")
			if ifs := compact(r["ifaces"]); ifs != `["lo"]` {
				t.Errorf("interfaces %s, want only lo", ifs)
			}
			s.stillServes(t, a.id)
		})
	}

	t.Run("egress_proxy", func(t *testing.T) {
		env := s.attack(t, hostileNetID, "proxy_env", nil)
		proxy, _ := env["HTTPS_PROXY"].(string)
		if !strings.HasPrefix(proxy, "http://127.0.0.1:") {
			t.Fatalf("HTTPS_PROXY in the sandbox is %q, want the loopback proxy", proxy)
		}
		// Every target below is refused by policy before any resolution
		// or dial: names off the allow-list, IP literals, malformed hosts.
		cases := []struct {
			kind, target string
			status       float64
		}{
			{"fetch", "http://forbidden.example/", 403},
			{"tunnel", "forbidden.example:443", 403},
			{"tunnel", "api.allowed.example:80", 403}, // allowed host, other port
			{"tunnel", "evil.api.allowed.example:443", 403},
			{"fetch", "http://169.254.169.254/latest/meta-data", 403},
			{"tunnel", "169.254.169.254:80", 403},
			{"fetch", "http://localhost/", 403},
			{"tunnel", "localhost:443", 403},
			{"tunnel", "127.0.0.1:443", 403},
			{"tunnel", "[::1]:443", 403},
			{"tunnel", "127.1:443", 400},
			{"tunnel", "0x7f000001:443", 400},
		}
		var reqs []map[string]any
		for _, c := range cases {
			reqs = append(reqs, map[string]any{"kind": c.kind, "target": c.target})
		}
		got, _ := s.attack(t, hostileNetID, "probe", map[string]any{"requests": reqs})["results"].([]any)
		if len(got) != len(cases) {
			t.Fatalf("%d results for %d requests", len(got), len(cases))
		}
		for i, c := range cases {
			r, _ := got[i].(map[string]any)
			if r["blocked"] != true || num(r["status"]) != c.status {
				t.Errorf("%s %s: %s, want HTTP %v from the proxy", c.kind, c.target, compact(r), c.status)
			}
			if reason, _ := r["egress_reason"].(string); reason == "" {
				t.Errorf("%s %s: no X-Egress-Reason: %s", c.kind, c.target, compact(r))
			}
			if why, _ := r["egress"].(string); !strings.Contains(why, "; reason=") {
				t.Errorf("%s %s: no X-Runagent-Egress with a reason: %s", c.kind, c.target, compact(r))
			}
		}
		// What urllib shows the agent's developer: the reason in the
		// header and body.
		r := s.attack(t, hostileNetID, "fetch", map[string]any{"url": "http://forbidden.example/"})
		if want := `denied; reason="host not on the allow-list: forbidden.example:80"`; r["egress"] != want {
			t.Errorf("urllib http://forbidden.example/: X-Runagent-Egress %v, want %s", r["egress"], want)
		}
		if want := "host not on the allow-list: forbidden.example:80\n"; r["body"] != want {
			t.Errorf("urllib http://forbidden.example/: body %q, want %q", r["body"], want)
		}
		// urllib's own HTTPS path (CONNECT through HTTPS_PROXY) sees the
		// 403; the reason is in the invocation's logs.
		r, id := s.attackID(t, hostileNetID, "fetch", map[string]any{"url": "https://forbidden.example/"})
		if r["blocked"] != true || !strings.Contains(fmt.Sprint(r["error"]), "403") {
			t.Errorf("urllib https://forbidden.example/: %s, want a 403 tunnel failure", compact(r))
		}
		if logs, want := invocationLogs(t, s, id), `runagent egress: 403 denied; reason="host not on the allow-list: forbidden.example:443"`; !strings.Contains(logs, want) {
			t.Errorf("the invocation's logs are %q, want them to contain %s", logs, want)
		}
		// The proxy logged the metadata address as an IP literal denial and
		// allowed nothing at all: nothing was dialled.
		log := s.stderr.String()
		var meta []string
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "msg=egress") && strings.Contains(line, "host=169.254.169.254") {
				meta = append(meta, line)
			}
			if strings.Contains(line, "msg=egress") && strings.Contains(line, "decision=allow") {
				t.Errorf("the proxy allowed a connection: %s", line)
			}
		}
		if len(meta) != 2 {
			t.Errorf("%d proxy log lines for 169.254.169.254, want 2:\n%s", len(meta), strings.Join(meta, "\n"))
		}
		for _, line := range meta {
			if !strings.Contains(line, "decision=deny") || !strings.Contains(line, "ip literal") {
				t.Errorf("169.254.169.254 not refused as an IP literal: %s", line)
			}
		}
		s.stillServes(t, hostileNetID)
	})

	t.Run("nothing_left_on_host", func(t *testing.T) {
		// Stop the server; its sandboxes (warm ones included) must be gone.
		running := sandboxProcs(cgroupName)
		t.Logf("%d processes in the server's sandboxes before it stops", len(running))
		if len(running) == 0 {
			t.Errorf("no process in the server's sandbox cgroups (warm sandboxes expected): the check cannot see them")
		}
		s.cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(20 * time.Second)
		for syscall.Kill(s.cmd.Process.Pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatal("the server did not exit within 20s of SIGTERM")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if p := sandboxProcs(cgroupName); len(p) != 0 {
			t.Errorf("processes still in the server's sandbox cgroups: %v", p)
		}
		if l := leftovers(t, s.DataDir, cgroupParent); len(l) != 0 {
			t.Errorf("the stopped server left behind:\n%s", strings.Join(l, "\n"))
		}
	})
	t.Logf("hostile suite took %v", time.Since(suiteStart).Round(time.Millisecond))
}

// procStateLetter returns the state letter of a host process, "" if gone.
func procStateLetter(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// sandboxProcs lists the host processes in a cgroup whose path contains
// name (the server's parent cgroup), in any controller.
func sandboxProcs(name string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup"))
		if err == nil && strings.Contains(string(b), "/"+name+"/") {
			comm, _ := os.ReadFile(filepath.Join(d, "comm"))
			out = append(out, filepath.Base(d)+":"+strings.TrimSpace(string(comm)))
		}
	}
	return out
}
