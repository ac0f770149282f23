package procgroup

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReapKillsLeftoversAndKillIsSafeAfter: a leader that exits leaving a
// background child in its group gets the child killed by Reap, and Kill
// after Reap signals nothing (the pid may belong to someone else by then).
func TestReapKillsLeftoversAndKillIsSafeAfter(t *testing.T) {
	pidFile := t.TempDir() + "/child"
	cmd := exec.Command("sh", "-c", "sleep 100 & echo $! > "+pidFile+"; exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := New(cmd)
	l.Reap()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			break // gone, or a zombie waiting for init
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader's background child %d survived Reap", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Kill(true); err != nil {
		t.Errorf("Kill after Reap = %v, want nil (nothing to signal)", err)
	}
}
