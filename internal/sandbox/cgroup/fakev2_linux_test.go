//go:build linux

package cgroup

// This development machine mounts cgroup v1 for every controller and an
// empty cgroup2 at /sys/fs/cgroup/unified, so the v2 code paths cannot be
// exercised there with real cpu/memory/pids controllers. These tests stand
// in for a v2 host with a fake cgroupfs in t.TempDir(): a mountinfo that
// says cgroup2 is mounted there, and a mkdir hook that pre-creates the
// interface files the kernel would (only for the controllers the parent's
// cgroup.subtree_control enabled). They check what the code writes.
// TestV2RealEmptyMount then drives the controller-free parts (mkdir,
// cgroup.procs moves, cgroup.kill, cgroup.freeze, rmdir) on the real empty
// cgroup2 mount.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/sandbox"
)

type fakeV2 struct {
	root   string
	kill   bool     // create cgroup.kill (Linux 5.14+)
	refuse []string // controllers the fake kernel never hands to children
}

func newFakeV2(t *testing.T, controllers string) (*fakeV2, Options) {
	t.Helper()
	f := &fakeV2{root: filepath.Join(t.TempDir(), "cgroup"), kill: true}
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, "cgroup.controllers", controllers)
	f.write(t, "cgroup.subtree_control", "")
	f.write(t, "cgroup.procs", "1\n2\n")
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	pc := filepath.Join(dir, "cgroup")
	os.WriteFile(mi, []byte("23 1 254:0 / / rw - ext4 /dev/vda rw\n41 31 0:38 / "+f.root+" rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"), 0o644)
	os.WriteFile(pc, []byte("0::/\n"), 0o644)
	return f, Options{Parent: "runagent", mountInfo: mi, procCgroup: pc, fs: fsOps{mkdir: f.mkdir, rmdir: os.RemoveAll}}
}

func (f *fakeV2) write(t *testing.T, rel, s string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.root, rel), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeV2) read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mkdir is what the kernel does on mkdir in cgroup2.
func (f *fakeV2) mkdir(p string) error {
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	sub, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cgroup.subtree_control"))
	var on []string
	for _, c := range strings.Fields(string(sub)) {
		if c = strings.TrimPrefix(c, "+"); !slices.Contains(f.refuse, c) {
			on = append(on, c)
		}
	}
	files := map[string]string{
		"cgroup.controllers":     strings.Join(on, " "),
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cgroup.events":          "populated 0\nfrozen 0\n",
		"cgroup.freeze":          "0\n",
	}
	if f.kill {
		files["cgroup.kill"] = ""
	}
	for _, c := range on {
		switch c {
		case "cpu":
			files["cpu.max"] = "max 100000\n"
			files["cpu.stat"] = "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n"
		case "memory":
			files["memory.max"] = "max\n"
			files["memory.swap.max"] = "max\n"
			files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
			files["memory.current"] = "0\n"
			files["memory.peak"] = "0\n"
		case "pids":
			files["pids.max"] = "max\n"
			files["pids.events"] = "max 0\n"
		}
	}
	for name, s := range files {
		if err := os.WriteFile(filepath.Join(p, name), []byte(s), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func TestFakeV2Detect(t *testing.T) {
	f, o := newFakeV2(t, "cpuset cpu io memory hugetlb pids rdma misc")
	h, err := DetectWith(o)
	if err != nil {
		t.Fatalf("DetectWith: %v", err)
	}
	if h.Version() != 2 || h.v2Dir != filepath.Join(f.root, "runagent") {
		t.Errorf("Version() = %d, dir %s; want 2, %s/runagent", h.Version(), h.v2Dir, f.root)
	}
	if h.String() != "cgroup v2 (cpu, memory, pids) at "+f.root+"/runagent" {
		t.Errorf("String() = %q", h.String())
	}
	for _, rel := range []string{"cgroup.subtree_control", "runagent/cgroup.subtree_control"} {
		if got := f.read(t, rel); got != "+cpu +memory +pids" {
			t.Errorf("%s = %q, want %q", rel, got, "+cpu +memory +pids")
		}
	}
	if ents, _ := os.ReadDir(h.v2Dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() }) {
		t.Errorf("probe cgroup left in %s", h.v2Dir)
	}
}

func TestFakeV2DetectErrors(t *testing.T) {
	t.Run("controller not available", func(t *testing.T) {
		_, o := newFakeV2(t, "cpu pids")
		_, err := DetectWith(o)
		if err == nil || !strings.Contains(err.Error(), "offers no memory controller") || !strings.Contains(err.Error(), "Delegate=yes") {
			t.Errorf("DetectWith = %v, want an error naming the memory controller and the fix", err)
		}
	})
	t.Run("controller not delegated", func(t *testing.T) {
		f, o := newFakeV2(t, "cpu memory pids")
		f.refuse = []string{"memory"}
		_, err := DetectWith(o)
		if err == nil || !strings.Contains(err.Error(), "memory controller is not enabled for delegation") || !strings.Contains(err.Error(), "cgroup.subtree_control") {
			t.Errorf("DetectWith = %v, want an error saying memory is not enabled for delegation", err)
		}
	})
}

func TestDetectV1Missing(t *testing.T) {
	dir := t.TempDir()
	mi := filepath.Join(dir, "mountinfo")
	pc := filepath.Join(dir, "cgroup")
	os.WriteFile(mi, []byte("32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"), 0o644)
	os.WriteFile(pc, []byte("1:cpu:/\n"), 0o644)
	_, err := DetectWith(Options{mountInfo: mi, procCgroup: pc})
	if err == nil || !strings.Contains(err.Error(), "pids, freezer are not mounted") || !strings.Contains(err.Error(), "no cgroup2 mount") {
		t.Errorf("DetectWith = %v, want an error naming the missing pids and freezer hierarchies", err)
	}
	os.WriteFile(mi, []byte("23 1 254:0 / / rw - ext4 /dev/vda rw\n"), 0o644)
	if _, err := DetectWith(Options{mountInfo: mi, procCgroup: pc}); err == nil || !strings.Contains(err.Error(), "mount -t cgroup2") {
		t.Errorf("DetectWith without cgroup mounts = %v, want an error saying how to mount cgroup2", err)
	}
	if _, err := DetectWith(Options{Parent: "../etc", mountInfo: mi, procCgroup: pc}); err == nil {
		t.Errorf("DetectWith with parent ../etc succeeded, want an error")
	}
}

func TestFakeV2Cgroup(t *testing.T) {
	f, o := newFakeV2(t, "cpu memory pids")
	h, err := DetectWith(o)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := h.New("sbx-1", sandbox.Limits{CPU: 0.2, MemoryBytes: 64 << 20, Processes: 10})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := cg.AddPID(4242); err != nil {
		t.Fatalf("AddPID: %v", err)
	}
	got := map[string]string{}
	for _, name := range []string{"cpu.max", "memory.max", "memory.swap.max", "pids.max", "cgroup.procs"} {
		got[name] = f.read(t, "runagent/sbx-1/"+name)
	}
	want := map[string]string{"cpu.max": "20000 100000", "memory.max": "67108864", "memory.swap.max": "0", "pids.max": "10", "cgroup.procs": "4242"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("files written (-want +got):\n%s", d)
	}
	if pids, err := cg.PIDs(); err != nil || !slices.Equal(pids, []int{4242}) {
		t.Errorf("PIDs() = %v, %v; want [4242]", pids, err)
	}

	if v := cg.Violations(); len(v) != 0 {
		t.Errorf("Violations() before any event = %v, want none", v)
	}
	f.write(t, "runagent/sbx-1/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n")
	f.write(t, "runagent/sbx-1/pids.events", "max 3\n")
	f.write(t, "runagent/sbx-1/cpu.stat", "usage_usec 1500000\nnr_periods 20\nnr_throttled 5\n")
	f.write(t, "runagent/sbx-1/memory.current", "1048576\n")
	f.write(t, "runagent/sbx-1/memory.peak", "67108864\n")
	if d := cmp.Diff([]string{ViolationOOMKill, ViolationProcessLimit, ViolationCPUThrottled}, cg.Violations()); d != "" {
		t.Errorf("Violations() (-want +got):\n%s", d)
	}
	if s, err := cg.Stats(); err != nil || s != (Stats{MemoryCurrent: 1 << 20, MemoryPeak: 64 << 20, CPUUsage: 1500 * time.Millisecond}) {
		t.Errorf("Stats() = %+v, %v", s, err)
	}

	// The fake kernel does not kill: empty cgroup.procs as it would.
	f.write(t, "runagent/sbx-1/cgroup.procs", "")
	if err := cg.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if got := f.read(t, "runagent/sbx-1/cgroup.kill"); got != "1" {
		t.Errorf("cgroup.kill = %q, want %q", got, "1")
	}

	if _, err := h.New("sbx-2", sandbox.Limits{}); err != nil {
		t.Fatal(err)
	}
	if got := f.read(t, "runagent/sbx-2/cpu.max"); got != "100000 100000" {
		t.Errorf("default cpu.max = %q, want %q", got, "100000 100000")
	}
	n, err := h.CleanStale()
	if err != nil || n != 2 {
		t.Errorf("CleanStale() = %d, %v; want 2, nil", n, err)
	}
	if ents, _ := os.ReadDir(h.v2Dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() }) {
		t.Errorf("after CleanStale, %s still has cgroups", h.v2Dir)
	}
}

// Without cgroup.kill (Linux < 5.14) Kill freezes, SIGKILLs each process
// listed in cgroup.procs and thaws.
func TestFakeV2KillByFreeze(t *testing.T) {
	f, o := newFakeV2(t, "cpu memory pids")
	f.kill = false
	h, err := DetectWith(o)
	if err != nil {
		t.Fatal(err)
	}
	cg, err := h.New("sbx", sandbox.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.write(t, "runagent/sbx/cgroup.procs", fmt.Sprintf("%d\n", cmd.Process.Pid))
	f.write(t, "runagent/sbx/cgroup.events", "populated 1\nfrozen 1\n")
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		os.WriteFile(filepath.Join(f.root, "runagent/sbx/cgroup.procs"), nil, 0o644)
		waited <- err
	}()
	if err := cg.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	var ee *exec.ExitError
	if err := <-waited; !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("sleep ended with %v, want SIGKILL", err)
	}
	if got := f.read(t, "runagent/sbx/cgroup.freeze"); got != "0" {
		t.Errorf("cgroup.freeze after Kill = %q, want thawed (0)", got)
	}
	if err := cg.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
}

// TestV2RealEmptyMount uses the real cgroup2 mount of a hybrid host (no
// controllers, so no limits) for what needs none: mkdir, moving processes
// with cgroup.procs, cgroup.kill, the freeze path, rmdir.
func TestV2RealEmptyMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var point string
	for _, m := range parseMountInfo(string(mi)) {
		if m.v2 && m.point != "/sys/fs/cgroup" {
			point = m.point
		}
	}
	if point == "" {
		t.Skip("no separate (hybrid) cgroup2 mount")
	}
	h := &Host{version: 2, parent: fmt.Sprintf("runagent-test-%d", os.Getpid()),
		fs: fsOps{mkdir: func(p string) error { return os.Mkdir(p, 0o755) }, rmdir: os.Remove}}
	h.v2Dir = filepath.Join(point, h.parent)
	if err := h.fs.mkdir(h.v2Dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.CleanStale()
		if err := h.RemoveParent(); err != nil {
			t.Errorf("RemoveParent: %v", err)
		}
	})
	for _, viaFreeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("freeze=%v", viaFreeze), func(t *testing.T) {
			cg := h.cgroup(fmt.Sprintf("x%v", viaFreeze))
			cg.noCgroupKill = viaFreeze
			if err := cg.create(); err != nil {
				t.Fatal(err)
			}
			cmd, _ := startIn(t, cg, "sleep 100 & sleep 100 & wait")
			time.Sleep(50 * time.Millisecond)
			if pids, err := cg.PIDs(); err != nil || len(pids) != 3 {
				t.Fatalf("PIDs() = %v, %v; want the shell and 2 sleeps", pids, err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			err := cg.Destroy()
			<-done
			if err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			if _, err := os.Stat(cg.v2Dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after Destroy, stat %s: %v", cg.v2Dir, err)
			}
		})
	}
}
