package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNarrowedKeyCannotWiden: an admin key limited to one agent, used
// through the CLI as its holder would, makes only keys limited to that
// agent, cannot name another, deploys only its agent, cannot revoke a
// broader key; each refusal says what was too wide and is a
// privilege_refused security event.
func TestNarrowedKeyCannotWiden(t *testing.T) {
	s := startServer(t)
	run := func(key string, args ...string) (string, string, error) {
		t.Helper()
		return cliAs(s, key, args...)
	}
	must := func(key string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := run(key, args...)
		if err != nil {
			t.Fatalf("runagent %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	refused := func(part, key string, args ...string) {
		t.Helper()
		out, errOut, err := run(key, args...)
		if err == nil || !strings.Contains(errOut, "beyond your credential in") || !strings.Contains(errOut, part) {
			t.Errorf("runagent %s: %v\n%s%s\nwant a refusal naming %s", strings.Join(args, " "), err, out, errOut, part)
		}
	}
	agent := func(name string) (dir, id string) {
		dir = filepath.Join(t.TempDir(), name)
		out, _ := must(s.OwnerKey, "init", dir)
		return dir, agentIDRE.FindStringSubmatch(out)[1]
	}
	dirA, idA := agent("a")
	dirB, idB := agent("b")
	must(s.OwnerKey, "deploy", dirA)
	must(s.OwnerKey, "deploy", dirB)
	out, errOut := must(s.OwnerKey, "keys", "create", "--name", "a-admin", "--role", "admin", "--agent", idA)
	narrow := strings.TrimSpace(out)
	_, errOut = must(s.OwnerKey, "keys", "create", "--name", "full-admin", "--role", "admin")
	fullID := keyIDRE.FindStringSubmatch(errOut)[1]

	// What the request leaves out is the caller's: the new key reaches A
	// only.
	out, _ = must(narrow, "keys", "create", "--name", "a-user", "--role", "user")
	inherited := strings.TrimSpace(out)
	if out, _ := must(inherited, "run", "--id", idA, "--tag", "generate", "--message=hi"); !strings.Contains(out, "hi") {
		t.Errorf("the inherited key runs A: %s", out)
	}
	if _, errOut, err := run(inherited, "run", "--id", idB, "--tag", "generate", "--message=hi"); err == nil || !strings.Contains(errOut, "not found") {
		t.Errorf("the inherited key ran B: %v %s", err, errOut)
	}

	refused("agents", narrow, "keys", "create", "--name", "b-user", "--agent", idB)
	refused("role", narrow, "keys", "create", "--name", "boss", "--role", "owner")
	refused("agents", narrow, "keys", "revoke", fullID)
	refused("agents", narrow, "keys", "rotate", fullID)
	refused("agents", narrow, "deploy", dirB)
	fresh, _ := agent("c")
	refused("agents", narrow, "deploy", fresh)
	if err := os.WriteFile(filepath.Join(dirA, "extra.py"), []byte("X = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(narrow, "deploy", dirA)

	out, _ = must(s.OwnerKey, "events", "--type", "privilege_refused")
	if n := strings.Count(out, "privilege_refused"); n != 6 {
		t.Errorf("privilege_refused events: %d, want 6\n%s", n, out)
	}
	// The refused revoke and rotate left the full admin's key as it was.
	out, _ = must(s.OwnerKey, "keys", "list")
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, fullID) && !strings.HasSuffix(strings.TrimSpace(line), "active") {
			t.Errorf("the full admin's key after refused revoke and rotate: %s", line)
		}
	}
	if !strings.Contains(out, fullID) {
		t.Errorf("keys list does not show %s:\n%s", fullID, out)
	}
}
