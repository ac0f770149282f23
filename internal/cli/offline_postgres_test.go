package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/server"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestOfflineCommandsOnPostgres: with --store-file (or
// $RUNAGENT_STORE_URL) the offline commands work on the PostgreSQL store
// that nodes share: audit verify checks the one chain that two nodes
// appended to, db invocations reads and records its read in that chain,
// and a record changed in the database breaks verification at its seq.
// The password never shows.
func TestOfflineCommandsOnPostgres(t *testing.T) {
	for _, env := range []string{"RUNAGENT_STORE_URL", "RUNAGENT_STORE_URL_FILE", "RUNAGENT_DATA_DIR", server.MasterKeyFileEnv, server.MasterPassphraseEnv, server.MasterPassphraseFileEnv} {
		t.Setenv(env, "")
	}
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	pgtest.Exec(t, url, `ALTER USER postgres PASSWORD 'hunter2-secret'`)
	secretURL := strings.Replace(url, "postgres@", "postgres:hunter2-secret@", 1)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "master.key")
	urlFile := filepath.Join(dir, "store-url")
	if err := os.WriteFile(urlFile, []byte(secretURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Two nodes' stores on one database append to its audit trail, as
	// two servers would; one invocation is stored.
	for node := range 2 {
		db, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := server.OpenKeyring(t.Context(), db, dir, server.KeyringConfig{MasterKeyFile: keyFile, Generate: true}, nil, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		trail, err := audit.New(db, kr.MACKey(server.AuditKeyPurpose), audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := trail.Append(t.Context(), audit.Record{Action: "agent.deploy", Resource: fmt.Sprintf("agent/n%d-%d", node, i), Outcome: audit.OutcomeSuccess}); err != nil {
				t.Fatal(err)
			}
		}
		if node == 0 {
			if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: "inv-pg-1", AgentID: "agent-1", EntrypointTag: "echo"}); err != nil {
				t.Fatal(err)
			}
		}
		trail.Close()
		db.Close()
	}

	run := func(t *testing.T, args ...string) (string, int) {
		t.Helper()
		var out, errs strings.Builder
		code := Main(t.Context(), args, strings.NewReader(""), &out, &errs)
		all := out.String() + errs.String()
		if strings.Contains(all, "hunter2-secret") {
			t.Errorf("runagent %v shows the store password:\n%s", args, all)
		}
		return all, code
	}
	keyArgs := []string{"--store-file", urlFile, "--master-key-file", keyFile}

	out, code := run(t, append([]string{"audit", "verify"}, keyArgs...)...)
	if code != 0 || !strings.Contains(out, "audit trail OK: 6 records") {
		t.Fatalf("audit verify on PostgreSQL: exit %d, want OK with 6 records:\n%s", code, out)
	}

	out, code = run(t, append([]string{"db", "invocations"}, keyArgs...)...)
	if code != 0 || !strings.Contains(out, "inv-pg-1") {
		t.Fatalf("db invocations on PostgreSQL: exit %d, want inv-pg-1 listed:\n%s", code, out)
	}

	// The URL from the environment works as well; the read above is in
	// the trail now.
	t.Setenv("RUNAGENT_STORE_URL", secretURL)
	out, code = run(t, "audit", "verify", "--master-key-file", keyFile)
	if code != 0 || !strings.Contains(out, "audit trail OK: 7 records") {
		t.Fatalf("audit verify with $RUNAGENT_STORE_URL: exit %d, want OK with 7 records (the CLI's read included):\n%s", code, out)
	}
	out, code = run(t, "audit", "list", "--action", "invocation.list", "--master-key-file", keyFile)
	if code != 0 || !strings.Contains(out, "invocation.list") {
		t.Errorf("audit list --action invocation.list: exit %d, want the CLI's read:\n%s", code, out)
	}
	t.Setenv("RUNAGENT_STORE_URL", "")

	// A password typed on the command line is refused before anything
	// connects.
	out, code = run(t, "audit", "verify", "--store", secretURL, "--master-key-file", keyFile)
	if code == 0 || !strings.Contains(out, "--store-file") {
		t.Errorf("audit verify --store <URL with password>: exit %d, want refused pointing at --store-file:\n%s", code, out)
	}

	// Someone with database access changes a record (past the triggers
	// that refuse it to the store's own statements).
	pgtest.Exec(t, url, `ALTER TABLE audit_records DISABLE TRIGGER audit_records_no_update`)
	pgtest.Exec(t, url, `UPDATE audit_records SET resource = 'agent/forged' WHERE seq = 4`)
	out, code = run(t, append([]string{"audit", "verify"}, keyArgs...)...)
	if code == 0 || !strings.Contains(out, "BROKEN at seq 4") {
		t.Errorf("audit verify after a record was changed: exit %d, want BROKEN at seq 4:\n%s", code, out)
	}
}
