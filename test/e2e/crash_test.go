package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// leftovers lists what sandboxes of the server with data directory data
// hold on the host: mounts and loop devices under its data directory, and
// sandbox cgroups (with or without processes) under cgroupParent, the
// server's own parent cgroup.
func leftovers(t *testing.T, data, cgroupParent string) []string {
	t.Helper()
	var found []string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, data) {
			found = append(found, "mount: "+line)
		}
	}
	loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range loops {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), data) {
			found = append(found, "loop device: "+f+" -> "+strings.TrimSpace(string(b)))
		}
	}
	kids, _ := filepath.Glob(filepath.Join(cgroupParent, "*", "cgroup.procs"))
	for _, k := range kids {
		procs, _ := os.ReadFile(k)
		found = append(found, fmt.Sprintf("sandbox cgroup: %s (%d processes)", filepath.Dir(k), len(bytes.Fields(procs))))
	}
	return found
}

var pidsCgroupRE = regexp.MustCompile(`pids=(\S+?)"?(\s|$)`)

// TestCrashThenRestartLeavesNothing: kill -9 of the server while an agent
// runs leaves the sandbox behind; the next start on the same data
// directory removes it (processes, cgroups, scratch mount, loop device)
// and records the interrupted invocation as failed.
func TestCrashThenRestartLeavesNothing(t *testing.T) {
	needSandbox(t)
	data := t.TempDir()
	s := startServerIn(t, data)
	m := pidsCgroupRE.FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("the server log does not name its pids cgroup:\n%s", s.stderr.String())
	}
	parent := m[1]
	go func() {
		// The reply never comes: the server dies.
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/agents/"+agentID+"/run", strings.NewReader(`{"entrypoint_tag":"sleeps","input_kwargs":{"seconds":60}}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	running := func() bool {
		for _, l := range leftovers(t, data, parent) {
			if strings.HasPrefix(l, "sandbox cgroup") && !strings.HasSuffix(l, "(0 processes)") && !strings.HasSuffix(l, "(1 processes)") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(20 * time.Second)
	for !running() {
		if time.Now().After(deadline) {
			t.Fatal("the run never showed up as a running sandbox")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	after := leftovers(t, data, parent)
	t.Logf("after kill -9:\n%s", strings.Join(after, "\n"))

	// Restart whatever happened above, so a failing test cleans up too.
	s2 := startServerIn(t, data)
	if len(after) == 0 {
		t.Error("kill -9 left nothing behind: the test did not exercise clean-up")
	}
	_, env := s2.do(t, "GET", "/api/v1/agents/"+agentID+"/invocations?status=failed", "", nil)
	if !strings.Contains(string(env.Data), "the server stopped while the invocation was running") {
		t.Errorf("the interrupted invocation is not recorded as failed: %s", env.Data)
	}
	// The new server prepares scratch disks and cgroups of its own at
	// start (its load check starts a sandbox), whose mounts and loop
	// devices may even reuse the crashed one's numbers: stopped cleanly,
	// it removes its own, so whatever remains is what the crash left.
	s2.stop()
	if l := leftovers(t, data, parent); len(l) != 0 {
		t.Errorf("after restart and a clean stop these remain:\n%s", strings.Join(l, "\n"))
	}
}
