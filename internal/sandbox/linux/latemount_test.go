//go:build linux

package linux

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
)

// Tests of late mounts (forkedSandbox.AttachMounts): what TestForked's
// LateMounts and LateMountEscapes do not cover.

// lateRun forks a run of mountSource from a template of its own and
// sends it its init, as the warm pool does before any request.
func lateRun(t *testing.T, src string) (*agent, *forkedSandbox) {
	t.Helper()
	e := mustEnv(t)
	dir := writeAgent(t, map[string]string{"main.py": mountSource})
	if src != "" {
		if err := os.Symlink(src, filepath.Join(dir, "memory")); err != nil {
			t.Fatal(err)
		}
	}
	tmpl, _, init := startTemplateSpec(t, e, sandbox.Spec{AgentDir: dir}, refs("write", "read"))
	a := forkRun(t, tmpl, init, "")
	a.keep = true
	return a, a.sb.(*forkedSandbox)
}

func attach(s *forkedSandbox, mounts ...sandbox.Mount) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.AttachMounts(ctx, mounts)
}

func TestLateMountsOnce(t *testing.T) {
	a, s := lateRun(t, "")
	if err := attach(s, sandbox.Mount{Host: memDir(t), Guest: "/agent/memory"}); err != nil {
		t.Fatal(err)
	}
	err := attach(s, sandbox.Mount{Host: memDir(t), Guest: "/tmp/other"})
	if err == nil || !strings.Contains(err.Error(), "once") {
		t.Fatalf("a second AttachMounts: %v, want it refused (once)", err)
	}
	// The refusal leaves the run as it was: its first mount serves.
	if got := str(t, a.call(t, "write", `["/agent/memory/x", "y"]`)); got != "ok" {
		t.Errorf("writing in the first mount after the refusal: %s", got)
	}
	if got := str(t, a.call(t, "read", `["/tmp/other/x"]`)); got != "error ENOENT" {
		t.Errorf("the refused mount: reading in it gives %q, want ENOENT", got)
	}
}

func TestLateMountsAfterInvokeRefused(t *testing.T) {
	a, s := lateRun(t, "")
	if got := str(t, a.call(t, "write", `["/tmp/x", "y"]`)); got != "ok" {
		t.Fatalf("the first call: %s", got)
	}
	mem := memDir(t)
	err := attach(s, sandbox.Mount{Host: mem, Guest: "/agent/memory"})
	if err == nil || !strings.Contains(err.Error(), "invoke") {
		t.Fatalf("AttachMounts after the invoke: %v, want it refused", err)
	}
	if got := str(t, a.call(t, "write", `["/agent/memory/x", "y"]`)); got != "error ENOENT" {
		t.Errorf("writing where the refused mount would be: %s, want ENOENT (no mount, no directory)", got)
	}
	if ents, _ := os.ReadDir(mem); len(ents) != 0 {
		t.Errorf("the refused mount's host directory holds %d entries, want none", len(ents))
	}
}

// TestLateMountsSymlinkKillsRun: a mount point through a symbolic link
// is refused, and the run is killed: it never serves.
func TestLateMountsSymlinkKillsRun(t *testing.T) {
	_, s := lateRun(t, "/usr")
	err := attach(s, sandbox.Mount{Host: memDir(t), Guest: "/agent/memory/x"})
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("AttachMounts through a link: %v, want the mount point named as not a directory", err)
	}
	done := make(chan sandbox.Exit, 1)
	go func() { done <- s.Wait() }()
	select {
	case x := <-done:
		if x.Signal != "SIGKILL" {
			t.Errorf("the run ended %+v, want killed", x)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run lives on after its mounts failed")
	}
}

// TestLateMountsWaiterChannelNotInRun: the run (every process of it)
// holds no descriptor of the waiter's channel, so it cannot write to it;
// the waiter holds it until its mounts are attached.
func TestLateMountsWaiterChannelNotInRun(t *testing.T) {
	_, s := lateRun(t, "")
	st, err := procStatus(s.pid)
	if err != nil {
		t.Fatal(err)
	}
	waiter, _ := strconv.Atoi(st["PPid"])
	wsocks := sockets(t, waiter)
	if len(wsocks) == 0 {
		t.Fatalf("the waiter (pid %d) holds no socket: where is its channel?", waiter)
	}
	for ino := range sockets(t, s.pid) {
		if wsocks[ino] {
			t.Errorf("the run holds the waiter's socket %s", ino)
		}
	}
	if err := attach(s, sandbox.Mount{Host: memDir(t), Guest: "/agent/memory"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sockets(t, waiter)) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the waiter still holds its channel after the mounts")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sockets returns the inodes ("socket:[n]") of the sockets process pid
// holds.
func sockets(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:") {
			out[l] = true
		}
	}
	return out
}

func FuzzParseLateMountsAnswer(f *testing.F) {
	for _, s := range []string{`{"type":"mounted"}`, `{"type":"error","message":"x"}`, `{"type":"error"}`, `{"type":"ready"}`, `[]`, ``, `{"type":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseLateMountsAnswer(b)
		if err != nil {
			return
		}
		if a.Type != "mounted" && a.Type != "error" {
			t.Fatalf("accepted type %q", a.Type)
		}
		if a.Type == "error" && (a.Message == "" || len(a.Message) > 1000+len("…")) {
			t.Fatalf("error message %q", a.Message)
		}
	})
}

// BenchmarkLateMounts measures AttachMounts of one directory to a run
// that has said hello (what a pooled run with persistent memory adds).
func BenchmarkLateMounts(b *testing.B) {
	e := mustEnv(b)
	dir := writeAgent(b, map[string]string{"main.py": mountSource})
	tmpl, _, init := startTemplateSpec(b, e, sandbox.Spec{AgentDir: dir}, refs("write"))
	mem := b.TempDir()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		a := forkRun(b, tmpl, init, "")
		b.StartTimer()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := a.sb.(sandbox.Mounter).AttachMounts(ctx, []sandbox.Mount{{Host: mem, Guest: "/agent/memory"}})
		cancel()
		total += time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		a.sb.Kill()
		a.sb.Wait()
		b.StartTimer()
	}
}
