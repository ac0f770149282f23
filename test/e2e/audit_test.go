package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to inspect and tamper with the store file, as an attacker would
)

// auditCLI runs `runagent audit <args> --data-dir data`.
func auditCLI(t *testing.T, data string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"audit"}, args...), "--data-dir", data)...)
	cmd.Env = append(os.Environ(), "RUNAGENT_DATA_DIR=")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// copyStore copies a server's store and master key to a new directory.
func copyStore(t *testing.T, data string) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"runagent.db", "runagent.db-wal", "runagent.db-shm", "master.key"} {
		b, err := os.ReadFile(filepath.Join(data, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// tamper opens a store file directly, drops the audit triggers (an
// attacker with the file can) and runs the statements.
func tamper(t *testing.T, data string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(data, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{"DROP TRIGGER audit_records_no_update", "DROP TRIGGER audit_records_no_delete", "DROP TRIGGER audit_records_chain"}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

var brokenRE = regexp.MustCompile(`audit trail BROKEN at seq (\d+)`)

// TestAuditTamperDetected: the server's trail verifies with `runagent
// audit verify`; a changed, a deleted and two swapped records in copies
// of the store file are each found, at the right record.
func TestAuditTamperDetected(t *testing.T) {
	s := startServer(t)
	for i := range 6 {
		if st, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "integer"}}); st != http.StatusOK {
			t.Fatalf("run %d: %d %+v", i, st, env.Error)
		}
	}
	if _, errOut, err := cliAs(s, s.OwnerKey, "keys", "create", "--name", "audited", "--role", "viewer"); err != nil {
		t.Fatalf("keys create: %v %s", err, errOut)
	}
	out, errOut, err := auditCLI(t, s.DataDir, "verify")
	if err != nil || !strings.Contains(out, "audit trail OK") {
		t.Fatalf("verify of the live trail: %v\n%s%s", err, out, errOut)
	}
	out, _, err = auditCLI(t, s.DataDir, "list", "--action", "key.create")
	if err != nil || strings.Count(out, "key.create") != 2 || !strings.Contains(out, "started") || !strings.Contains(out, "success") {
		t.Errorf("audit list --action key.create: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		stmts []string
		seq   int
	}{
		{"changed", []string{"UPDATE audit_records SET outcome = 'denied' WHERE seq = 3"}, 3},
		{"deleted", []string{"DELETE FROM audit_records WHERE seq = 4"}, 5},
		{"swapped", []string{
			"UPDATE audit_records SET seq = 1000000 WHERE seq = 2",
			"UPDATE audit_records SET seq = 2 WHERE seq = 5",
			"UPDATE audit_records SET seq = 5 WHERE seq = 1000000",
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := copyStore(t, s.DataDir)
			tamper(t, data, tc.stmts...)
			out, _, err := auditCLI(t, data, "verify")
			m := brokenRE.FindStringSubmatch(out)
			if err == nil || m == nil || m[1] != fmt.Sprint(tc.seq) {
				t.Errorf("verify after the %s record: %v\n%s(want broken at seq %d)", tc.name, err, out, tc.seq)
			}
		})
	}
}

// TestAuditSurvivesSIGKILL: while clients run invocations, the server is
// killed with SIGKILL. After a restart every invocation a client saw
// answered has its audit record, the chain verifies, and the database
// passes PRAGMA integrity_check.
func TestAuditSurvivesSIGKILL(t *testing.T) {
	data := t.TempDir()
	s := startServerIn(t, data)
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				body := strings.NewReader(`{"entrypoint_tag":"value","input_kwargs":{"kind":"string"}}`)
				resp, err := client.Post(s.URL+"/api/v1/agents/"+agentID+"/run", "application/json", body)
				if err != nil {
					continue // the server died mid-request: not acknowledged
				}
				var env envelope
				err = json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && env.InvocationID != "" {
					mu.Lock()
					acked = append(acked, env.InvocationID)
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	s.cmd.Process.Kill()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(acked) < 10 {
		t.Fatalf("only %d invocations were answered before the kill", len(acked))
	}

	startServerIn(t, data) // recovers the store
	out, _, err := auditCLI(t, data, "list", "--action", "invocation.run", "--json", "--limit", "1000")
	if err != nil {
		t.Fatalf("audit list: %v", err)
	}
	recorded := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Details map[string]string `json:"details"`
		}
		if json.Unmarshal([]byte(line), &r) == nil {
			recorded[r.Details["invocation_id"]] = true
		}
	}
	missing := 0
	for _, id := range acked {
		if !recorded[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged invocations have no audit record", missing, len(acked))
	}
	if out, _, err := auditCLI(t, data, "verify"); err != nil || !strings.Contains(out, "audit trail OK") {
		t.Errorf("verify after the crash: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "runagent.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v", check, err)
	}
	t.Logf("%d invocations acknowledged before SIGKILL, all with audit records", len(acked))
}
