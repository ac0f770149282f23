package redistest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills redis-server if the test binary dies without
// running its cleanups (a timeout panic, say).
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
