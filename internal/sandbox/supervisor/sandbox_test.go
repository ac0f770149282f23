//go:build linux

package supervisor

import (
	"os"
	"os/exec"
	"strings"
	"testing"
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
