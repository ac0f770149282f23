package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cli runs the runagent binary against s and returns its stdout; it fails
// the test when the command fails.
func cli(t *testing.T, s *server, args ...string) string {
	t.Helper()
	out, errOut, err := cliResult(s, args...)
	if err != nil {
		t.Fatalf("runagent %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func cliResult(s *server, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "RUNAGENT_BASE_URL="+s.URL, "RUNAGENT_DATA_DIR="+s.DataDir, "RUNAGENT_API_KEY="+s.OwnerKey)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

var agentIDRE = regexp.MustCompile(`agent_id: ([0-9a-f-]{36})`)

// TestInitDeployRunCLI walks the user journey: init an agent, deploy it to
// a running server, call both entrypoints from the CLI, redeploy a change,
// and read the records with `db`.
func TestInitDeployRunCLI(t *testing.T) {
	s := startServer(t)
	dir := filepath.Join(t.TempDir(), "my-agent")
	out := cli(t, s, "init", dir)
	m := agentIDRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("init output has no agent_id:\n%s", out)
	}
	id := m[1]

	out = cli(t, s, "deploy", dir)
	if !strings.Contains(out, "deployed new version") {
		t.Errorf("first deploy: %s", out)
	}
	out = cli(t, s, "deploy", dir)
	if !strings.Contains(out, "unchanged") {
		t.Errorf("second deploy of the same tree: %s", out)
	}

	out = cli(t, s, "run", "--id", id, "--tag", "generate", "--message=hello cli", "--repeat=2")
	if !strings.Contains(out, "hello cli") {
		t.Errorf("run output does not echo the message:\n%s", out)
	}
	for _, transport := range [][]string{nil, {"--sse"}} {
		args := append([]string{"run-stream", "--id", id, "--tag", "generate_stream", "--message=one two three", "--words=3"}, transport...)
		out = cli(t, s, args...)
		if !strings.Contains(out, "one") || !strings.Contains(out, "three") {
			t.Errorf("run-stream %v output:\n%s", transport, out)
		}
	}

	// A changed tree is a new version, served at once.
	main := filepath.Join(dir, "main.py")
	src, _ := os.ReadFile(main)
	os.WriteFile(main, append(src, []byte("\n\ndef added():\n    return 'v2'\n")...), 0o644)
	cfgPath := filepath.Join(dir, "runagent.config.json")
	var cfg map[string]any
	raw, _ := os.ReadFile(cfgPath)
	json.Unmarshal(raw, &cfg)
	arch := cfg["agent_architecture"].(map[string]any)
	arch["entrypoints"] = append(arch["entrypoints"].([]any), map[string]any{"file": "main.py", "module": "added", "tag": "added"})
	raw, _ = json.MarshalIndent(cfg, "", "  ")
	os.WriteFile(cfgPath, raw, 0o644)
	if out = cli(t, s, "deploy", dir); !strings.Contains(out, "deployed new version") {
		t.Errorf("deploy of a changed tree: %s", out)
	}
	if out = cli(t, s, "run", "--id", id, "--tag", "added"); strings.TrimSpace(out) != "v2" {
		t.Errorf("new entrypoint returned %q, want v2", out)
	}

	out = cli(t, s, "db", "invocations", "--agent", id)
	if n := strings.Count(out, id[:8]); n != 4 {
		t.Errorf("db invocations lists %d rows for the agent, want 4:\n%s", n, out)
	}
	out = cli(t, s, "db", "cleanup", "--retain-invocations", "1h", "--dry-run")
	if !strings.Contains(out, "would delete 0 invocation(s)") || !strings.Contains(out, "would delete 0 audit record(s)") {
		t.Errorf("cleanup dry run: %s", out)
	}
	// A real run beside the live server: recorded in its audit trail,
	// which still verifies.
	out = cli(t, s, "db", "cleanup", "--retain-invocations", "1h", "--retain-events", "off")
	if !strings.Contains(out, "deleted 0 invocation(s)") || !strings.Contains(out, "kept all security event(s)") {
		t.Errorf("cleanup: %s", out)
	}
	if out = cli(t, s, "audit", "list", "--action", "retention.purge"); !strings.Contains(out, "retention.purge") {
		t.Errorf("audit list after cleanup: %s", out)
	}
	if out = cli(t, s, "audit", "verify"); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify: %s", out)
	}
	// Reading invocations straight from the store is audited too.
	if out = cli(t, s, "audit", "list", "--action", "invocation.list"); !strings.Contains(out, "agent/"+id) {
		t.Errorf("a local read of invocations is not in the trail: %s", out)
	}

	// Errors are clear and exit non-zero.
	_, errOut, err := cliResult(s, "run", "--id", id, "--tag", "missing")
	if err == nil || !strings.Contains(errOut, "not found") {
		t.Errorf("run of an unknown tag: err %v, stderr %q", err, errOut)
	}
}

// TestServeRefusesNonLoopback: without authentication, serve listens on
// loopback only.
func TestServeRefusesNonLoopback(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--auth", "none", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refusing to listen") {
		t.Errorf("serve on 0.0.0.0: err %v, output %q", err, out)
	}
}

func TestServeRejectsBadAgentConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "runagent.config.json"), []byte(`{"agent_name":"x","agent_id":"not-a-uuid","agent_architecture":{"entrypoints":[]}}`), 0o644)
	out, err := exec.Command(binary, "serve", dir, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runagent.config.json") || !strings.Contains(string(out), "agent_id") {
		t.Errorf("serve with a bad config: err %v, output %q", err, out)
	}
}

// TestGracefulShutdownDrains: SIGTERM lets a running invocation finish.
func TestGracefulShutdownDrains(t *testing.T) {
	s := startServer(t)
	var wg sync.WaitGroup
	var status int
	var env *envelope
	wg.Add(1)
	go func() {
		defer wg.Done()
		status, env = s.run(t, map[string]any{"entrypoint_tag": "sleeps", "input_kwargs": map[string]any{"seconds": 1.5}})
	}()
	time.Sleep(700 * time.Millisecond) // the run is under way
	s.cmd.Process.Signal(syscall.SIGTERM)
	wg.Wait()
	if status != 200 || !env.Success {
		t.Fatalf("run in flight during shutdown: status %d error %+v", status, env.Error)
	}
	var data string
	json.Unmarshal(env.Data, &data)
	checkValue(t, data, "string", `"woke"`)
}

// TestDoctorLeavesNothing: doctor probes cgroups by creating its parent;
// it removes it again.
func TestDoctorLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root may create cgroups on this host (cgroup v1): doctor creates none to remove")
	}
	exec.Command(binary, "doctor").Run() // its verdict depends on the host
	for _, c := range []string{"cpu", "cpuacct", "freezer", "memory", "pids", "unified"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "runagent")); err == nil {
			t.Errorf("doctor left /sys/fs/cgroup/%s/runagent behind", c)
		}
	}
}
