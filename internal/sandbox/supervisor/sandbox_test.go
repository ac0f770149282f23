//go:build linux

package supervisor

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSandboxModeNeedsItsDescriptors checks sandbox mode refuses to run without the parent's configuration descriptor.
// (The linux backend's tests run them for real.)
func TestSandboxModeNeedsItsDescriptors(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{FlagSandbox} {
		t.Run(flag, func(t *testing.T) {
			cmd := exec.Command(exe, Command, flag)
			cmd.Env = append(os.Environ(), quickExit)
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != exitSetup {
				t.Errorf("exit %d, want %d; output %q", got, exitSetup, out)
			}
			if !strings.Contains(string(out), "configuration") {
				t.Errorf("output %q does not explain the failure", out)
			}
		})
	}
}

func TestSandboxArgs(t *testing.T) {
	if got := strings.Join(SandboxArgs(), " "); got != "__supervisor --sandbox" {
		t.Errorf("SandboxArgs() = %q", got)
	}
}

// TestHold: hold mode waits until its stdin is closed, then exits 0.
func TestHold(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, HoldArgs()...)
	cmd.Env = append(os.Environ(), quickExit)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("hold mode exited (%v) with stdin open", err)
	case <-time.After(200 * time.Millisecond):
	}
	stdin.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("hold mode after EOF: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("hold mode still running 10s after EOF")
	}
}
