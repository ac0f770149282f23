package e2e

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestProjectLifecycleCLI: an owner disables a principal (its key gets
// 401 at once), then deletes a project with an agent: refused without
// --force with what it would remove, done with it; the project's keys
// get 401 at once and its agent is gone. Each step is in the audit trail
// and the refusals' reasons in the security events.
func TestProjectLifecycleCLI(t *testing.T) {
	s := startServer(t)
	must := func(key string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := cliAs(s, key, args...)
		if err != nil {
			t.Fatalf("runagent %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	// status answers a request with key as its credential.
	status := func(key, method, path string) int {
		t.Helper()
		st, _ := s.doWith(t, method, path, "", nil, map[string]string{"Authorization": "Bearer " + key})
		return st
	}
	newKey := func(name, role string) (key, keyID string) {
		t.Helper()
		out, errOut := must(s.OwnerKey, "keys", "create", "--name", name, "--role", role, "--project", "doomed")
		m := keyIDRE.FindStringSubmatch(errOut)
		if m == nil {
			t.Fatalf("keys create printed %q / %q", out, errOut)
		}
		return strings.TrimSpace(out), m[1]
	}

	must(s.OwnerKey, "projects", "create", "doomed")
	adminKey, adminKeyID := newKey("doomed-admin", "admin")
	ciKey, _ := newKey("ci", "user")

	// Disable the ci principal: its key is refused on the next request.
	out, _ := must(s.OwnerKey, "principals", "list", "--project", "doomed")
	m := regexp.MustCompile(`(?m)^(\S+)\s+ci\s+service\s+user\s+doomed\s+\S+\s+active$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("principals list --project doomed:\n%s", out)
	}
	ci := m[1]
	if st := status(ciKey, "GET", "/api/v1/agents"); st != http.StatusOK {
		t.Fatalf("ci key before disable: %d", st)
	}
	if out, _ := must(s.OwnerKey, "principals", "disable", ci); !strings.Contains(out, "disabled principal "+ci) {
		t.Errorf("principals disable printed %q", out)
	}
	if st := status(ciKey, "GET", "/api/v1/agents"); st != http.StatusUnauthorized {
		t.Errorf("key of a disabled principal: %d, want 401", st)
	}
	if out, _ := must(s.OwnerKey, "principals", "list", "--project", "doomed"); !regexp.MustCompile(ci + `.*disabled \d{4}-`).MatchString(out) {
		t.Errorf("principals list after disable:\n%s", out)
	}

	// The project's admin deploys an agent into it.
	dir := filepath.Join(t.TempDir(), "doomed-agent")
	out, _ = must(adminKey, "init", dir)
	agent := agentIDRE.FindStringSubmatch(out)[1]
	must(adminKey, "deploy", dir)
	if st := status(s.OwnerKey, "GET", "/api/v1/agents/"+agent+"/architecture"); st != http.StatusOK {
		t.Fatalf("the deployed agent: %d", st)
	}

	// Without --force: refused, saying what would go; nothing changes.
	out, errOut, err := cliAs(s, s.OwnerKey, "projects", "delete", "doomed")
	if err == nil {
		t.Fatalf("projects delete of a project with an agent succeeded: %s", out)
	}
	for _, want := range []string{"has agents, so nothing was deleted", "1 agent: " + agent, "2 principals (deleted)", "2 keys (revoked)", adminKeyID, "runagent projects delete doomed --force"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refused projects delete does not say %q:\n%s", want, errOut)
		}
	}
	if st := status(adminKey, "GET", "/api/v1/agents"); st != http.StatusOK {
		t.Errorf("admin key after a refused delete: %d, want 200", st)
	}

	// With --force: done; the keys are refused at once, the agent gone.
	out, _ = must(s.OwnerKey, "projects", "delete", "doomed", "--force")
	if want := "deleted project doomed: 1 agent removed, 2 principals deleted, 2 keys revoked"; !strings.Contains(out, want) {
		t.Errorf("projects delete --force printed %q, want %q", out, want)
	}
	if st := status(adminKey, "GET", "/api/v1/agents"); st != http.StatusUnauthorized {
		t.Errorf("admin key of the deleted project: %d, want 401", st)
	}
	if _, errOut, err := cliAs(s, adminKey, "keys", "list"); err == nil || !strings.Contains(errOut, "authentication required") {
		t.Errorf("CLI with a key of the deleted project: %v, %q", err, errOut)
	}
	if st := status(s.OwnerKey, "GET", "/api/v1/agents/"+agent+"/architecture"); st != http.StatusNotFound {
		t.Errorf("agent of the deleted project: %d, want 404", st)
	}
	if out, _ := must(s.OwnerKey, "projects", "list"); strings.Contains(out, "doomed") {
		t.Errorf("projects list shows the deleted project:\n%s", out)
	}
	if _, errOut, err := cliAs(s, s.OwnerKey, "projects", "create", "doomed"); err == nil || !strings.Contains(errOut, "deleted project had this id") {
		t.Errorf("re-creating the deleted project: %v, %q", err, errOut)
	}

	// The owner cannot remove itself, the last owner.
	out, _ = must(s.OwnerKey, "principals", "list", "--role", "owner")
	owner := strings.Fields(strings.Split(out, "\n")[1])[0]
	if _, errOut, err := cliAs(s, s.OwnerKey, "principals", "delete", owner); err == nil || !strings.Contains(errOut, "last enabled owner") {
		t.Errorf("deleting the last owner: %v, %q", err, errOut)
	}

	// Audited, and the refusals' reasons are security events.
	for action, want := range map[string][]string{
		"project.delete":    {"project/doomed", "rejected", "success"},
		"principal.disable": {"principal/" + ci, "success"},
		"principal.list":    {"principals", "success"},
		"principal.delete":  {"principal/" + owner, "rejected"},
	} {
		out := cli(t, s, "audit", "list", "--action", action)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("audit list --action %s does not show %q:\n%s", action, w, out)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := must(s.OwnerKey, "events", "--type", "auth_failure")
		if strings.Contains(out, "authentication failed: principal disabled") && strings.Contains(out, "authentication failed: project deleted") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("auth_failure events do not name the reasons:\n%s", out)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
