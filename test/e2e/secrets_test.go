package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliIn runs the CLI against s as the owner with stdin.
func cliIn(t *testing.T, s *server, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "RUNAGENT_BASE_URL="+s.URL, "RUNAGENT_API_KEY="+s.OwnerKey)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestSecretsJourney: a secret set with the CLI (value on stdin) reaches
// the agent's environment in the sandbox, is redacted from its logs and
// errors, is listed by name only, and is nowhere in clear: not in the
// server's log, not in the database files. A .env file deployed with an
// agent becomes its secrets.
func TestSecretsJourney(t *testing.T) {
	s := startServer(t)
	const token = "tok-9f8e7d6c5b4a"
	if out, errOut, err := cliIn(t, s, token+"\n", "secrets", "set", "--agent", agentID, "API_TOKEN"); err != nil || !strings.Contains(out, "set (16 bytes)") {
		t.Fatalf("secrets set: %v %s %s", err, out, errOut)
	}
	status, env := s.run(t, map[string]any{"entrypoint_tag": "secret"})
	if status != http.StatusOK {
		t.Fatalf("run: %d %+v", status, env.Error)
	}
	var out string
	json.Unmarshal(env.Data, &out)
	if _, v := decodeStructured(t, out); !strings.Contains(mustJSON(t, v), `"length":16`) || !strings.Contains(mustJSON(t, v), `"present":true`) {
		t.Errorf("the agent saw %v", v)
	}
	// Its logs (recorded after the sandbox ends) have the value redacted.
	logs := waitLogs(t, s, env.InvocationID)
	if strings.Contains(logs, token) || !strings.Contains(logs, "the token is [REDACTED:API_TOKEN]") {
		t.Errorf("recorded logs: %q", logs)
	}
	// So does an error that quotes it.
	status, env = s.run(t, map[string]any{"entrypoint_tag": "secret", "input_kwargs": map[string]any{"leak": true}})
	if env.Success || env.Error == nil {
		t.Fatalf("leaking run: %d %+v", status, env)
	}
	if raw, _ := json.Marshal(env.Error); bytes.Contains(raw, []byte(token)) || !bytes.Contains(raw, []byte("[REDACTED:API_TOKEN]")) {
		t.Errorf("error answer: %s", raw)
	}
	list, _, err := cliIn(t, s, "", "secrets", "list", "--agent", agentID)
	if err != nil || !strings.Contains(list, "API_TOKEN") || strings.Contains(list, token) {
		t.Errorf("secrets list: %v\n%s", err, list)
	}
	st, body := s.do(t, http.MethodGet, "/api/v1/agents/"+agentID+"/secrets", "", nil)
	if raw, _ := json.Marshal(body); st != http.StatusOK || bytes.Contains(raw, []byte(token)) {
		t.Errorf("GET secrets: %d %s", st, raw)
	}

	// A .env deployed with an agent project.
	dir := filepath.Join(t.TempDir(), "dotenv-agent")
	if _, errOut, err := cliIn(t, s, "", "init", dir); err != nil {
		t.Fatalf("init: %v %s", err, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("# deploy-time secrets\nDOTENV_TOKEN=\"dot-1a2b3c4d5e\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deployOut, errOut, err := cliIn(t, s, "", "deploy", dir)
	if err != nil || !strings.Contains(deployOut, "imported 1 secret(s)") || !strings.Contains(deployOut, "DOTENV_TOKEN") {
		t.Fatalf("deploy with .env: %v\n%s%s", err, deployOut, errOut)
	}
	id := agentIDRE.FindStringSubmatch(deployOut)
	if id == nil {
		t.Fatalf("no agent id in %q", deployOut)
	}
	if list, _, err := cliIn(t, s, "", "secrets", "list", "--agent", id[1]); err != nil || !strings.Contains(list, "DOTENV_TOKEN") {
		t.Errorf("secrets of the deployed agent: %v %s", err, list)
	}
	if _, errOut, err := cliIn(t, s, "", "secrets", "delete", "--agent", id[1], "DOTENV_TOKEN"); err != nil {
		t.Errorf("secrets delete: %v %s", err, errOut)
	}

	// Nothing in clear, anywhere the server writes.
	for _, secret := range []string{token, "dot-1a2b3c4d5e"} {
		if strings.Contains(s.stderr.String(), secret) {
			t.Errorf("the server log holds %s", secret)
		}
		filepath.Walk(s.DataDir, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return nil
			}
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %s in clear", path, secret)
			}
			return nil
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitLogs polls an invocation until its logs are recorded.
func waitLogs(t *testing.T, s *server, id string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, env := s.do(t, http.MethodGet, "/api/v1/invocations/"+id, "", nil)
		var inv struct {
			Logs string `json:"logs"`
		}
		if st == http.StatusOK {
			json.Unmarshal(env.Data, &inv)
			if inv.Logs != "" {
				return inv.Logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no logs recorded for %s (%d)", id, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
