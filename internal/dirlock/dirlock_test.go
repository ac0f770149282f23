//go:build unix

package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustAcquire(tb testing.TB, dir, addr string) *Lock {
	tb.Helper()
	l, err := Acquire(dir, "serve", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Release() })
	return l
}

func TestSecondAcquireNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	l := mustAcquire(t, dir, "")
	if err := l.Publish("127.0.0.1:8450"); err != nil {
		t.Fatal(err)
	}
	_, err := Acquire(dir, "serve", "")
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire: %v, want a *HeldError", err)
	}
	if held.Info == nil || held.Info.PID != os.Getpid() || held.Info.Addr != "127.0.0.1:8450" {
		t.Errorf("holder = %+v, want pid %d at 127.0.0.1:8450", held.Info, os.Getpid())
	}
	for _, want := range []string{"pid " + itoa(os.Getpid()), "127.0.0.1:8450", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	l.Release()
	mustAcquire(t, dir, "")
}

// TestStaleInfoIsNotBelieved: serve.json left by a process that died
// neither blocks nor is shown.
func TestStaleInfoIsNotBelieved(t *testing.T) {
	dir := t.TempDir()
	dead := deadPID(t)
	stale := `{"pid":` + itoa(dead) + `,"addr":"127.0.0.1:1","since":"2026-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(dir, InfoName), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	l := mustAcquire(t, dir, "127.0.0.1:2")
	if h := holder(dir); h == nil || h.PID != os.Getpid() || h.Addr != "127.0.0.1:2" {
		t.Errorf("holder after Acquire = %+v, want this process at 127.0.0.1:2", h)
	}
	// Held, but serve.json names a dead process: the error says so
	// without inventing a holder.
	if err := os.WriteFile(filepath.Join(dir, InfoName), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	var held *HeldError
	if _, err := Acquire(dir, "serve", ""); !errors.As(err, &held) || held.Info != nil {
		t.Errorf("Acquire with a stale serve.json: %v (info %+v), want a HeldError without info", err, held)
	}
	l.Release()
}

// TestKilledHolderReleases: a holder killed with SIGKILL leaves the lock
// free (the kernel drops its flock).
func TestKilledHolderReleases(t *testing.T) {
	if os.Getenv("DIRLOCK_HOLD") != "" {
		if _, err := Acquire(os.Getenv("DIRLOCK_HOLD"), "serve", "127.0.0.1:3"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKilledHolderReleases$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf[:4]) != "held" {
		t.Fatalf("holder: %q, %v", buf, err)
	}
	var held *HeldError
	if _, err := Acquire(dir, "serve", ""); !errors.As(err, &held) || held.Info == nil || held.Info.PID != cmd.Process.Pid {
		t.Fatalf("Acquire while the child holds: %v, want a HeldError naming pid %d", err, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	mustAcquire(t, dir, "")
}

func deadPID(tb testing.TB) int {
	tb.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		tb.Fatal("cannot run true:", err)
	}
	return cmd.Process.Pid
}

func itoa(i int) string { return strconv.Itoa(i) }
