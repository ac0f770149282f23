//go:build linux

package linux

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/cgroup"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// These tests plug the real cgroup and scratch packages into the backend
// through its interfaces; they skip where the host lacks what those need.

func realCgroups(t testing.TB) CgroupManager {
	t.Helper()
	h, err := cgroup.DetectWith(cgroup.Options{Parent: "runagent-linux-test"})
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("cgroups need root on this machine: %v", err)
		}
		t.Fatalf("cgroups are unusable although running as root: %v", err)
	}
	t.Cleanup(func() { h.RemoveParent() })
	return CgroupsFunc(func(id string, l sandbox.Limits) (Cgroup, error) {
		cg, err := h.New(id, l)
		if err != nil {
			return nil, err
		}
		return cg, nil
	})
}

// realScratch returns a scratch manager for loop-mounted ext4 images.
func realScratch(t testing.TB) ScratchManager {
	t.Helper()
	m, err := scratch.New(t.TempDir())
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("scratch images need root on this machine: %v", err)
		}
		t.Fatalf("scratch images are unusable although running as root (scripts/deps.sh installs e2fsprogs): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestRealCgroupForkBomb(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Cgroups = realCgroups(t)
	got := hostileWith(t, e, sandbox.Spec{ID: "forkbomb", Limits: sandbox.Limits{Processes: 40}}, "fork_bomb", "[]")
	if got.result["errno"] != "EAGAIN" || got.result["forked"].(float64) >= 40 {
		t.Errorf("fork bomb: %v, want EAGAIN before 40 processes", got.result)
	}
	if !slices.Contains(got.exit.Violations, cgroup.ViolationProcessLimit) {
		t.Errorf("violations %q, want %q", got.exit.Violations, cgroup.ViolationProcessLimit)
	}
	t.Logf("fork bomb: %v; violations %q", got.result, got.exit.Violations)
}

func TestRealCgroupMemoryBomb(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Cgroups = realCgroups(t)
	const src = "def f():\n    b = []\n    while True:\n        b.append(bytearray(1 << 20))\n"
	a := startAgent(t, e, src, sandbox.Spec{ID: "membomb", Limits: sandbox.Limits{MemoryBytes: 64 << 20}}, "f")
	if err := a.conn.Invoke(guest.Invoke{ID: "c", Tag: "f"}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.conn.Next()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, guest.ErrClosed) {
			t.Errorf("memory bomb call ended with %v, want the guest gone", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("memory bomb not stopped within 30s")
	}
	exit := a.sb.Wait()
	if !slices.Contains(exit.Violations, cgroup.ViolationOOMKill) {
		t.Errorf("exit %+v, want violation %q", exit, cgroup.ViolationOOMKill)
	}
}

func TestRealScratch(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Scratch = realScratch(t)
	got := hostileWith(t, e, sandbox.Spec{ID: "diskfill", Limits: sandbox.Limits{DiskBytes: scratch.MinSize}}, "fill_disk", "[]")
	if got.result["ok"] != false || got.result["errno"] != "ENOSPC" {
		t.Errorf("filling the scratch image: %v, want ENOSPC", got.result)
	}
	w := hostileWith(t, e, sandbox.Spec{ID: "scratchw"}, "write_outside", "[]")
	if r := w.result["/tmp/ok"].(map[string]any); r["ok"] != true {
		t.Errorf("writing the scratch image: %v", r)
	}
}

type outcome struct {
	result map[string]any
	exit   sandbox.Exit
}

// hostileWith is hostile with a given environment, also returning how the
// sandbox ended.
func hostileWith(t *testing.T, e testEnv, spec sandbox.Spec, name, args string) outcome {
	t.Helper()
	a := startAgent(t, e, hostileSource(t), spec, name)
	res := decode(t, a.call(t, name, args))
	return outcome{res, a.sb.Wait()}
}

// TestRealCgroupPrestarted: a supervisor started ahead of demand waits in
// a cgroup of its own with the default limits; the sandbox that takes it
// runs under its own limits, lower (processes) and higher (memory) than
// the defaults, and its cgroup is removed when it ends.
func TestRealCgroupPrestarted(t *testing.T) {
	e := mustEnv(t)
	e.backend.cfg.Cgroups = realCgroups(t)
	withPrestart(t, e, 1)
	// The first start finds the pool empty and asks for a refill.
	startAgent(t, e, "def f():\n    return 1\n", sandbox.Spec{}, "f")
	deadline := time.Now().Add(20 * time.Second)
	for len(e.backend.pool) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the pool was not refilled within 20s")
		}
		time.Sleep(time.Millisecond)
	}
	sp := <-e.backend.pool
	if sp.cg == nil {
		t.Fatal("the prestarted supervisor has no cgroup")
	}
	pids, err := sp.cg.(*cgroup.Cgroup).PIDs()
	if err != nil || !slices.Contains(pids, sp.pid) {
		t.Fatalf("the prestarted supervisor (pid %d) is not in its cgroup: %v, %v", sp.pid, pids, err)
	}
	dirs := sp.cg.(*cgroup.Cgroup).Dirs()
	e.backend.pool <- sp

	const mem = 5 << 30 // above the default: memsw must be raised first on v1
	a := startAgent(t, e, hostileSource(t), sandbox.Spec{ID: "forkbomb-ahead", Limits: sandbox.Limits{Processes: 40, MemoryBytes: mem}}, "fork_bomb")
	if got := a.sb.(*linuxSandbox).cgroup; got != sp.cg {
		t.Fatal("the sandbox did not take the prestarted supervisor")
	}
	if got := memoryLimit(t, dirs); got != mem {
		t.Errorf("memory limit %d, want %d", got, mem)
	}
	res := decode(t, a.call(t, "fork_bomb", "[]"))
	if res["errno"] != "EAGAIN" || res["forked"].(float64) >= 40 {
		t.Errorf("fork bomb: %v, want EAGAIN before 40 processes", res)
	}
	exit := a.sb.Wait()
	if !slices.Contains(exit.Violations, cgroup.ViolationProcessLimit) {
		t.Errorf("violations %q, want %q", exit.Violations, cgroup.ViolationProcessLimit)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind (%v)", d, err)
		}
	}
}

// memoryLimit reads the memory limit of the cgroup with directories dirs.
func memoryLimit(t *testing.T, dirs []string) int64 {
	t.Helper()
	for _, d := range dirs {
		for _, f := range []string{"memory.max", "memory.limit_in_bytes"} {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err != nil {
				continue
			}
			n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				t.Fatalf("%s/%s: %v", d, f, err)
			}
			return n
		}
	}
	t.Fatalf("no memory limit file in %q", dirs)
	return 0
}
