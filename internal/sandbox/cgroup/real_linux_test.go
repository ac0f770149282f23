//go:build linux

package cgroup

// These tests use the real cgroupfs of the machine they run on (v1 on the
// development host, v2 on production-like hosts) and need root. Every test
// uses a parent of its own ("runagent-test-<pid>-<n>") and removes it in
// t.Cleanup, so nothing is left under /sys/fs/cgroup and a running server's
// "runagent" parent is never touched.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
)

var parentSeq atomic.Int64

// mustHost detects the real host with a parent of the test's own.
func mustHost(tb testing.TB) *Host {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create cgroups")
	}
	parent := fmt.Sprintf("runagent-test-%d-%d", os.Getpid(), parentSeq.Add(1))
	h, err := DetectWith(Options{Parent: parent})
	if err != nil {
		tb.Fatalf("Detect: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := h.CleanStale(); err != nil {
			tb.Errorf("cleanup: CleanStale: %v", err)
		}
		if err := h.RemoveParent(); err != nil {
			tb.Errorf("cleanup: RemoveParent: %v", err)
		}
		for _, d := range h.parentDirs() {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				tb.Errorf("cleanup: %s still exists (stat: %v)", d, err)
			}
		}
	})
	return h
}

func mustNew(tb testing.TB, h *Host, id string, l sandbox.Limits) *Cgroup {
	tb.Helper()
	cg, err := h.New(id, l)
	if err != nil {
		tb.Fatalf("New(%q): %v", id, err)
	}
	tb.Cleanup(func() { cg.Destroy() })
	return cg
}

// startIn starts `sh -c script` and moves it into cg before the script
// runs: the shell first waits for a line on stdin.
func startIn(t *testing.T, cg *Cgroup, script string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read go; "+script)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := cg.AddPID(cmd.Process.Pid); err != nil {
		t.Fatalf("AddPID(%d): %v", cmd.Process.Pid, err)
	}
	io.WriteString(in, "go\n")
	in.Close()
	return cmd, &out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestDetectReal(t *testing.T) {
	h := mustHost(t)
	t.Logf("%s\n%s", h, h.ProbeReport())
	if v := h.Version(); v != 1 && v != 2 {
		t.Fatalf("Version() = %d, want 1 or 2", v)
	}
	if !strings.Contains(h.String(), h.parent) {
		t.Errorf("String() = %q, want it to name the parent %q", h.String(), h.parent)
	}
	for _, d := range h.parentDirs() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("parent %s: %v", d, err)
		}
		if ents, _ := os.ReadDir(d); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() }) {
			t.Errorf("probe cgroup left in %s: %v", d, ents)
		}
	}
}

func TestNewWritesLimits(t *testing.T) {
	h := mustHost(t)
	cg := mustNew(t, h, "limits", sandbox.Limits{CPU: 0.5, MemoryBytes: 64 << 20, Processes: 10})
	if _, err := h.New("limits", sandbox.Limits{}); err == nil {
		t.Errorf("New of an existing id succeeded, want an error")
	}
	if _, err := h.New("../x", sandbox.Limits{}); err == nil {
		t.Errorf("New(\"../x\") succeeded, want an invalid id error")
	}
	got := map[string]string{}
	var want map[string]string
	if h.Version() == 2 {
		for _, f := range []string{"cpu.max", "memory.max", "memory.swap.max", "pids.max"} {
			got[f] = read(t, filepath.Join(cg.v2Dir, f))
		}
		want = map[string]string{"cpu.max": "50000 100000", "memory.max": "67108864", "memory.swap.max": "0", "pids.max": "10"}
	} else {
		got["cpu.cfs_period_us"] = read(t, filepath.Join(cg.v1Dirs["cpu"], "cpu.cfs_period_us"))
		got["cpu.cfs_quota_us"] = read(t, filepath.Join(cg.v1Dirs["cpu"], "cpu.cfs_quota_us"))
		got["memory.limit_in_bytes"] = read(t, filepath.Join(cg.v1Dirs["memory"], "memory.limit_in_bytes"))
		got["pids.max"] = read(t, filepath.Join(cg.v1Dirs["pids"], "pids.max"))
		got["oom_kill_disable"] = strings.Fields(read(t, filepath.Join(cg.v1Dirs["memory"], "memory.oom_control")))[1]
		want = map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "memory.limit_in_bytes": "67108864", "pids.max": "10", "oom_kill_disable": "0"}
		if _, err := os.Stat(filepath.Join(cg.v1Dirs["memory"], "memory.memsw.limit_in_bytes")); err == nil {
			got["memory.memsw.limit_in_bytes"] = read(t, filepath.Join(cg.v1Dirs["memory"], "memory.memsw.limit_in_bytes"))
			want["memory.memsw.limit_in_bytes"] = "67108864"
		}
		for _, c := range []string{"freezer", "cpuacct"} {
			if d, ok := cg.v1Dirs[c]; ok {
				if _, err := os.Stat(d); err != nil {
					t.Errorf("%s cgroup: %v", c, err)
				}
			}
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}

	// Zero limits take sandbox.DefaultLimits.
	def := mustNew(t, h, "defaults", sandbox.Limits{})
	var pidsMax string
	if h.Version() == 2 {
		pidsMax = read(t, filepath.Join(def.v2Dir, "pids.max"))
	} else {
		pidsMax = read(t, filepath.Join(def.v1Dirs["pids"], "pids.max"))
	}
	if want := strconv.FormatInt(sandbox.DefaultLimits.Processes, 10); pidsMax != want {
		t.Errorf("default pids.max = %s, want %s", pidsMax, want)
	}
	if v := def.Violations(); len(v) != 0 {
		t.Errorf("Violations() of an unused cgroup = %v, want none", v)
	}
}

func python(t *testing.T) string {
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("python3 is required by the tests (scripts/deps.sh installs it)")
	return ""
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	h := mustHost(t)
	py := python(t)
	cg := mustNew(t, h, "memhog", sandbox.Limits{MemoryBytes: 64 << 20})
	cmd, out := startIn(t, cg, "exec "+py+` -c "b = b'x' * (200 << 20); print('survived')"`)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("python allocating 200 MB under 64 MiB: Wait() = %v (output %q), want killed by SIGKILL", err, out)
	}
	if v := cg.Violations(); !slices.Contains(v, ViolationOOMKill) {
		t.Errorf("Violations() = %v, want %q", v, ViolationOOMKill)
	}
	if s, err := cg.Stats(); err != nil || s.MemoryPeak > 64<<20 || s.MemoryPeak < 32<<20 {
		t.Errorf("Stats() = %+v, %v; want a peak between 32 MiB and the 64 MiB limit", s, err)
	}
}

func TestForkBombHitsPidsMax(t *testing.T) {
	h := mustHost(t)
	cg := mustNew(t, h, "forkbomb", sandbox.Limits{Processes: 10})
	cmd, out := startIn(t, cg, "i=0; while [ $i -lt 50 ]; do sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fork loop did not finish")
	}
	if !strings.Contains(strings.ToLower(out.String()), "fork") && !strings.Contains(out.String(), "Resource temporarily unavailable") {
		t.Errorf("shell output %q, want fork failures", out)
	}
	pids, err := cg.PIDs()
	if err != nil || len(pids) > 10 {
		t.Errorf("PIDs() = %d processes, %v; want at most 10", len(pids), err)
	}
	if v := cg.Violations(); !slices.Contains(v, ViolationProcessLimit) {
		t.Errorf("Violations() = %v, want %q", v, ViolationProcessLimit)
	}
	if err := cg.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if pids, _ := cg.PIDs(); len(pids) != 0 {
		t.Errorf("after Kill, PIDs() = %v, want none", pids)
	}
}

func TestCPUQuota(t *testing.T) {
	h := mustHost(t)
	cg := mustNew(t, h, "cpuquota", sandbox.Limits{CPU: 0.2})
	if h.Version() == 1 && cg.v1Dirs["cpuacct"] == "" {
		t.Skip("no cpuacct hierarchy to measure usage with")
	}
	startIn(t, cg, "while :; do :; done")
	time.Sleep(300 * time.Millisecond) // let the loop start
	s0, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(time.Second)
	s1, err := cg.Stats()
	if err != nil {
		t.Fatal(err)
	}
	share := float64(s1.CPUUsage-s0.CPUUsage) / float64(time.Since(t0))
	t.Logf("busy loop under 0.2 cores used %.3f cores", share)
	// The quota is a ceiling. There is no useful floor: other work on a
	// busy 2-core machine (a parallel test run) can starve the loop to a
	// few percent; it only has to have run.
	if share <= 0 || share > 0.3 {
		t.Errorf("busy loop under a 0.2-core quota used %.3f cores, want more than 0 and at most 0.3", share)
	}
	if v := cg.Violations(); !slices.Contains(v, ViolationCPUThrottled) {
		t.Errorf("Violations() = %v, want %q", v, ViolationCPUThrottled)
	}
}

func TestKillAndDestroy(t *testing.T) {
	h := mustHost(t)
	cg := mustNew(t, h, "kill", sandbox.Limits{})
	cmd, _ := startIn(t, cg, "sleep 100 & sleep 100 & (sleep 100 &) ; wait")
	time.Sleep(100 * time.Millisecond)
	pids, err := cg.PIDs()
	if err != nil || len(pids) < 4 {
		t.Fatalf("PIDs() = %v, %v; want the shell and 3 sleeps", pids, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // reap the shell as Kill ends it
	t0 := time.Now()
	if err := cg.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	t.Logf("Kill of %d processes took %v", len(pids), time.Since(t0))
	if pids, _ := cg.PIDs(); len(pids) != 0 {
		t.Errorf("after Kill, PIDs() = %v, want none", pids)
	}
	<-done
	if err := cg.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	if err := cg.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for _, d := range cg.Dirs() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Destroy, %s: stat error %v, want not exist", d, err)
		}
	}
	if err := cg.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestCleanStale(t *testing.T) {
	h := mustHost(t)
	var cmds []*exec.Cmd
	for _, id := range []string{"stale1", "stale2"} {
		cg, err := h.New(id, sandbox.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := startIn(t, cg, "sleep 100")
		cmds = append(cmds, cmd)
	}
	// A restarted server: detect again with the same parent, then clean.
	h2, err := DetectWith(Options{Parent: h.parent})
	if err != nil {
		t.Fatal(err)
	}
	n, err := h2.CleanStale()
	if err != nil || n != 2 {
		t.Fatalf("CleanStale() = %d, %v; want 2, nil", n, err)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err == nil {
			t.Errorf("process %d of a stale cgroup exited cleanly, want killed", cmd.Process.Pid)
		}
	}
	for _, d := range h.parentDirs() {
		if ents, _ := os.ReadDir(d); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() }) {
			t.Errorf("after CleanStale, %s still has cgroups", d)
		}
	}
}
