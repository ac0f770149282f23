package e2e

import (
	"bytes"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runFor runs cmd, failing t if it has not exited within d; it returns
// its stdout, stderr and exit error.
func runFor(t *testing.T, d time.Duration, cmd *exec.Cmd) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return stdout.String(), stderr.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s still running after %s\nstderr:\n%s", cmd.Args, d, stderr.String())
		return "", "", nil
	}
}

func statusWith(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// registryRow reads the served agent's row of RunAgent's local registry
// with Python's sqlite3 module, as RunAgent's Python SDK does in local
// mode.
func registryRow(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Fatalf("Debian's /usr/bin/python3 is missing (scripts/deps.sh installs it): %v", err)
	}
	path := filepath.Join(os.Getenv("RUNAGENT_CACHE_DIR"), "runagent_local.db")
	out, err := exec.Command(py, "-c", `import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
r = c.execute("SELECT host, port, status FROM agents WHERE agent_id=?", (sys.argv[2],)).fetchone()
print("%s:%d %s" % r)`, path, agentID).CombinedOutput()
	if err != nil {
		t.Fatalf("read %s: %v\n%s", path, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestOneServerPerDataDir: a second serve on a data directory in use
// exits non-zero naming the first (pid, address) and leaves it serving;
// once the first stops, a new one starts. The served agent is in the
// local registry while it runs and marked stopped after.
func TestOneServerPerDataDir(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	addr := strings.TrimPrefix(s.URL, "http://")
	if got, want := registryRow(t), addr+" running"; got != want {
		t.Errorf("local registry while serving: %q, want %q", got, want)
	}

	second := exec.Command(binary, "serve", "testdata/agent", "--addr", "127.0.0.1:0", "--data-dir", s.DataDir)
	second.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=", "RUNAGENT_BOOTSTRAP_KEY_FILE="+ownerKeyFile(t, s.DataDir))
	_, stderr, err := runFor(t, time.Minute, second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("second serve on the same data directory: %v, want a non-zero exit\n%s", err, stderr)
	}
	for _, want := range []string{"pid " + strconv.Itoa(s.cmd.Process.Pid), addr} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second serve's stderr does not name %q:\n%s", want, stderr)
		}
	}
	if got := statusWith(t, s.URL+"/api/v1/agents", s.OwnerKey); got != http.StatusOK {
		t.Errorf("the first server after the refused second: %d, want 200", got)
	}
	if got := registryRow(t); got != addr+" running" {
		t.Errorf("local registry after the refused second: %q, want %q", got, addr+" running")
	}

	s.stop()
	if got, want := registryRow(t), addr+" stopped"; got != want {
		t.Errorf("local registry after a clean stop: %q, want %q", got, want)
	}
	s2 := startServerIn(t, s.DataDir)
	if got := statusWith(t, s2.URL+"/api/v1/agents", s2.OwnerKey); got != http.StatusOK {
		t.Errorf("a new server after the first stopped: %d, want 200", got)
	}
}

var recoveredKeyRE = regexp.MustCompile(`rak_[0-9A-Za-z_]+`)

// TestKeysRecover: with the owner key lost, keys recover (server stopped)
// mints a new owner key that works and is in the audit trail; it refuses
// while the server runs; and a new bootstrap key file on the owned data
// directory is refused, not ignored.
func TestKeysRecover(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	recover := func() *exec.Cmd {
		cmd := exec.Command(binary, "keys", "recover", "--data-dir", s.DataDir)
		cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
		return cmd
	}
	stdout, stderr, err := runFor(t, time.Minute, recover())
	if err == nil || strings.Contains(stdout, "rak_") || !strings.Contains(stderr, "pid "+strconv.Itoa(s.cmd.Process.Pid)) {
		t.Errorf("keys recover while serving: %v, stdout %q, stderr %q; want a refusal naming the server's pid", err, stdout, stderr)
	}
	if got := statusWith(t, s.URL+"/api/v1/agents", s.OwnerKey); got != http.StatusOK {
		t.Errorf("the server after the refused recover: %d, want 200", got)
	}
	s.stop()

	other := filepath.Join(t.TempDir(), "other.key")
	key, err := exec.Command(binary, "keys", "generate").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(other, key, 0o600)
	serve := exec.Command(binary, "serve", "testdata/agent", "--addr", "127.0.0.1:0", "--data-dir", s.DataDir)
	serve.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=", "RUNAGENT_BOOTSTRAP_KEY_FILE="+other)
	_, stderr, err = runFor(t, time.Minute, serve)
	if err == nil || !strings.Contains(stderr, "already has an owner") || !strings.Contains(stderr, "runagent keys recover") {
		t.Errorf("serve with a new bootstrap key on an owned data directory: %v\n%s\nwant a refusal pointing at runagent keys recover", err, stderr)
	}

	stdout, stderr, err = runFor(t, time.Minute, recover())
	if err != nil {
		t.Fatalf("keys recover: %v\n%s", err, stderr)
	}
	newKey := recoveredKeyRE.FindString(stdout)
	if newKey == "" {
		t.Fatalf("keys recover printed no key:\n%s", stdout)
	}
	s2 := startServerIn(t, s.DataDir)
	if got := statusWith(t, s2.URL+"/api/v1/agents", newKey); got != http.StatusOK {
		t.Errorf("the recovered owner key: %d, want 200", got)
	}
	s2.stop()
	audit := exec.Command(binary, "audit", "list", "--data-dir", s.DataDir, "--action", "key.recover_owner")
	audit.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
	out, err := audit.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "key.recover_owner") {
		t.Errorf("audit list --action key.recover_owner: %v\n%s", err, out)
	}
}
