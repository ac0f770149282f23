//go:build linux

package linux

import (
	"errors"
	"os"
	"slices"
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
