package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestMasterKeyRotation: secrets and payloads written under one master
// key stay readable after `runagent keys rotate-master` and a restart;
// the old key file no longer opens the store; a server given the wrong
// key refuses to start with a clear error instead of serving garbage.
func TestMasterKeyRotation(t *testing.T) {
	data := t.TempDir()
	s := startServerIn(t, data)
	if _, errOut, err := cliIn(t, s, "tok-rotate-5e6f7a8b\n", "secrets", "set", "--agent", agentID, "API_TOKEN"); err != nil {
		t.Fatalf("secrets set: %v %s", err, errOut)
	}
	st, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "string"}})
	if st != http.StatusOK {
		t.Fatalf("run: %d", st)
	}
	inv := env.InvocationID
	s.stop()
	oldKey, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(binary, "keys", "rotate-master", "--data-dir", data)
	cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "master key rotated") {
		t.Fatalf("keys rotate-master: %v\n%s", err, out)
	}
	newKey, _ := os.ReadFile(filepath.Join(data, "master.key"))
	if bytes.Equal(oldKey, newKey) {
		t.Fatal("the key file did not change")
	}
	olds, _ := filepath.Glob(filepath.Join(data, "master.key.old-*"))
	if len(olds) != 1 {
		t.Fatalf("old key kept as %v", olds)
	}
	if fi, err := os.Stat(filepath.Join(data, "master.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode: %v %v", fi.Mode(), err)
	}

	// Restarted with the new key: everything reads.
	s2 := startServerIn(t, data)
	if st, env := s2.do(t, http.MethodGet, "/api/v1/invocations/"+inv, "", nil); st != http.StatusOK || !bytes.Contains(env.Data, []byte("input_kwargs")) {
		t.Errorf("invocation after the rotation: %d %s", st, env.Data)
	}
	st, env = s2.run(t, map[string]any{"entrypoint_tag": "secret"})
	var res string
	json.Unmarshal(env.Data, &res)
	if st != http.StatusOK || !strings.Contains(res, `\"length\":19`) {
		t.Errorf("the secret after the rotation: %d %s", st, res)
	}
	if out, _, err := auditCLI(t, data, "list", "--action", "keyring.rotate_master"); err != nil || !strings.Contains(out, "keyring.rotate_master") {
		t.Errorf("rotation not in the audit trail: %v %s", err, out)
	}
	// A new data key through the server, then everything re-encrypted
	// with it beside the running server.
	if out, errOut, err := cliIn(t, s2, "", "keys", "rotate-data-key"); err != nil || !strings.Contains(out, "active data key is now 3") {
		t.Errorf("keys rotate-data-key: %v %s %s", err, out, errOut)
	}
	cmd = exec.Command(binary, "db", "reencrypt", "--data-dir", data)
	cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil || !regexp.MustCompile(`re-encrypted [1-9]\d* value\(s\) with data key 3`).Match(out) {
		t.Errorf("db reencrypt: %v\n%s", err, out)
	}
	if st, env := s2.do(t, http.MethodGet, "/api/v1/invocations/"+inv, "", nil); st != http.StatusOK || !bytes.Contains(env.Data, []byte("input_kwargs")) {
		t.Errorf("invocation after reencrypt: %d %s", st, env.Data)
	}
	s2.stop()

	// The old key is refused, clearly.
	cmd = exec.Command(binary, "serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--master-key-file", olds[0])
	cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
	done := make(chan struct{})
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("serve with the old master key did not exit")
	}
	if cmd.ProcessState.ExitCode() == 0 || !strings.Contains(outb.String(), "master key does not match") {
		t.Errorf("serve with the old master key: exit %d\n%s", cmd.ProcessState.ExitCode(), outb.String())
	}
}
