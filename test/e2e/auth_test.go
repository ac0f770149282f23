package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cliAs runs the CLI against s with key as RUNAGENT_API_KEY.
func cliAs(s *server, key string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "RUNAGENT_BASE_URL="+s.URL, "RUNAGENT_API_KEY="+key)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

var keyIDRE = regexp.MustCompile(`Key ([0-9A-Za-z]{16}) `)

// TestAuthJourneyCLI: the owner creates a project and an admin key for
// it; that admin deploys and runs an agent in the project, cannot see the
// default project's invocations, and loses access when the key is
// revoked. A key never appears in the server's log.
func TestAuthJourneyCLI(t *testing.T) {
	s := startServer(t)
	must := func(key string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := cliAs(s, key, args...)
		if err != nil {
			t.Fatalf("runagent %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	must(s.OwnerKey, "projects", "create", "acme", "--name", "Acme Inc")
	adminKey, errOut := must(s.OwnerKey, "keys", "create", "--name", "acme-admin", "--role", "admin", "--project", "acme")
	adminKey = strings.TrimSpace(adminKey)
	m := keyIDRE.FindStringSubmatch(errOut)
	if !strings.HasPrefix(adminKey, "rak_") || m == nil {
		t.Fatalf("keys create printed %q / %q", adminKey, errOut)
	}
	adminID := m[1]

	dir := filepath.Join(t.TempDir(), "acme-agent")
	out, _ := must(adminKey, "init", dir)
	id := agentIDRE.FindStringSubmatch(out)[1]
	must(adminKey, "deploy", dir)
	if out, _ := must(adminKey, "run", "--id", id, "--tag", "generate", "--message=acme"); !strings.Contains(out, "acme") {
		t.Errorf("run as the acme admin: %s", out)
	}

	// The default project's agent and its invocations are invisible to
	// the acme admin (404, as if they did not exist).
	status, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "integer"}})
	if status != http.StatusOK {
		t.Fatalf("run of the default project's agent: %d %+v", status, env.Error)
	}
	if st, _ := s.doWith(t, http.MethodGet, "/api/v1/invocations/"+env.InvocationID, "", nil, map[string]string{"Authorization": "Bearer " + adminKey}); st != http.StatusNotFound {
		t.Errorf("acme admin reading a default-project invocation: %d, want 404", st)
	}
	if st, _ := s.doWith(t, http.MethodGet, "/api/v1/invocations/"+env.InvocationID, "", nil, nil); st != http.StatusOK {
		t.Errorf("owner reading it: %d, want 200", st)
	}
	out, _ = must(adminKey, "keys", "list")
	if !strings.Contains(out, adminID) || strings.Contains(out, adminKey) {
		t.Errorf("keys list as the acme admin:\n%s", out)
	}

	must(s.OwnerKey, "keys", "revoke", adminID)
	_, errOut, err := cliAs(s, adminKey, "run", "--id", id, "--tag", "generate", "--message=x")
	if err == nil || !strings.Contains(errOut, "authentication required") {
		t.Errorf("run with a revoked key: %v, %q", err, errOut)
	}
	for _, k := range []string{s.OwnerKey, adminKey} {
		if strings.Contains(s.stderr.String(), k[len(k)-20:]) {
			t.Error("a key's secret appears in the server log")
		}
	}
}

// TestProjectRateLimitCLI: an owner limits a project; its keys without a
// limit of their own are held to it, through the CLI.
func TestProjectRateLimitCLI(t *testing.T) {
	s := startServer(t)
	must := func(key string, args ...string) string {
		t.Helper()
		out, errOut, err := cliAs(s, key, args...)
		if err != nil {
			t.Fatalf("runagent %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := must(s.OwnerKey, "projects", "create", "slowco", "--rate-limit", "3/1h"); !strings.Contains(out, "rate limit 3/1h0m0s") {
		t.Errorf("projects create printed %q", out)
	}
	must(s.OwnerKey, "projects", "set-rate-limit", "slowco", "2/1m")
	if out := must(s.OwnerKey, "projects", "list"); !regexp.MustCompile(`slowco\s+slowco\s+2/1m0s`).MatchString(out) {
		t.Errorf("projects list:\n%s", out)
	}
	key := strings.TrimSpace(must(s.OwnerKey, "keys", "create", "--name", "v", "--role", "admin", "--project", "slowco"))
	must(key, "keys", "list")
	must(key, "keys", "list")
	_, errOut, err := cliAs(s, key, "keys", "list")
	if err == nil || !strings.Contains(errOut, "rate limit exceeded (2 per 1m0s") {
		t.Errorf("third request in a project limited to 2/min: %v, %q", err, errOut)
	}
	if _, errOut, err := cliAs(s, s.OwnerKey, "projects", "set-rate-limit", "slowco", "often"); err == nil || !strings.Contains(errOut, `rate limit "often"`) {
		t.Errorf("set-rate-limit with a bad rate: %v, %q", err, errOut)
	}
	must(s.OwnerKey, "projects", "set-rate-limit", "slowco", "default")
	if out := must(s.OwnerKey, "projects", "list"); !regexp.MustCompile(`slowco\s+slowco\s+default`).MatchString(out) {
		t.Errorf("projects list after restoring the default:\n%s", out)
	}
}
