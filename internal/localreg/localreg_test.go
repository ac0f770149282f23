package localreg

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustOpen(tb testing.TB, path string) *Registry {
	tb.Helper()
	r, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// row reads one agent's address and status as another tool would.
func row(tb testing.TB, path, id string) (host string, port int, status string) {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT host, port, status FROM agents WHERE agent_id = ?`, id).Scan(&host, &port, &status); err != nil {
		tb.Fatalf("agent %s: %v", id, err)
	}
	return host, port, status
}

func TestRegisterThenStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", FileName)
	r := mustOpen(t, path)
	ctx := t.Context()
	agents := []Agent{{ID: "a1", Path: "/src/a1", Framework: "langgraph"}, {ID: "a2", Path: "/src/a2"}}
	if err := r.Register(ctx, "127.0.0.1", 8450, agents); err != nil {
		t.Fatal(err)
	}
	if h, p, s := row(t, path, "a1"); h != "127.0.0.1" || p != 8450 || s != StatusRunning {
		t.Errorf("a1 = %s:%d %s, want 127.0.0.1:8450 running", h, p, s)
	}
	// A restart on another port moves the row.
	if err := r.Register(ctx, "127.0.0.1", 9000, agents[:1]); err != nil {
		t.Fatal(err)
	}
	if _, p, _ := row(t, path, "a1"); p != 9000 {
		t.Errorf("a1 port after re-register = %d, want 9000", p)
	}
	// Stop only touches rows still naming our address.
	if err := r.Stop(ctx, "127.0.0.1", 9000, []string{"a1", "a2"}); err != nil {
		t.Fatal(err)
	}
	if _, _, s := row(t, path, "a1"); s != StatusStopped {
		t.Errorf("a1 status = %s, want %s", s, StatusStopped)
	}
	if _, _, s := row(t, path, "a2"); s != StatusRunning {
		t.Errorf("a2 (registered at 8450, not stopped at 9000) status = %s, want %s", s, StatusRunning)
	}
}

// oldSchema is the agents table RunAgent's Go and TypeScript SDKs (and
// its Python SDK before the config-based columns) create.
const oldSchema = `CREATE TABLE agents (
	agent_id TEXT PRIMARY KEY,
	agent_path TEXT NOT NULL,
	host TEXT NOT NULL DEFAULT 'localhost',
	port INTEGER NOT NULL DEFAULT 8450,
	framework TEXT,
	status TEXT NOT NULL DEFAULT 'deployed',
	deployed_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
	last_run DATETIME,
	run_count INTEGER NOT NULL DEFAULT 0,
	success_count INTEGER NOT NULL DEFAULT 0,
	error_count INTEGER NOT NULL DEFAULT 0,
	created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
	updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
)`

// TestOtherToolsRowSurvives: a file written by another of RunAgent's
// tools keeps its row; runagent's rows join it, and a table in the older
// schema gains the columns the Python SDK selects.
func TestOtherToolsRowSurvives(t *testing.T) {
	for name, create := range map[string]string{"current schema": schema, "older schema": oldSchema} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(create); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`INSERT INTO agents (agent_id, agent_path, host, port, framework, status, run_count)
VALUES ('theirs', '/home/x/agent', 'localhost', 8451, 'crewai', 'deployed', 7)`); err != nil {
				t.Fatal(err)
			}
			db.Close()

			r := mustOpen(t, path)
			if err := r.Register(t.Context(), "127.0.0.1", 8450, []Agent{{ID: "ours", Path: "/src", Name: "hello"}}); err != nil {
				t.Fatal(err)
			}
			if err := r.Stop(t.Context(), "127.0.0.1", 8450, []string{"ours", "theirs"}); err != nil {
				t.Fatal(err)
			}
			if h, p, s := row(t, path, "theirs"); h != "localhost" || p != 8451 || s != "deployed" {
				t.Errorf("their row = %s:%d %s, want localhost:8451 deployed", h, p, s)
			}
			if _, _, s := row(t, path, "ours"); s != StatusStopped {
				t.Errorf("our row status = %s, want %s", s, StatusStopped)
			}
			db, err = sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRow(`SELECT run_count FROM agents WHERE agent_id = 'theirs'`).Scan(&n); err != nil || n != 7 {
				t.Errorf("their run_count = %d, %v; want 7", n, err)
			}
			if _, err := db.Exec(`SELECT ` + modelColumns + ` FROM agents`); err != nil {
				t.Errorf("the Python SDK's select of every Agent column: %v", err)
			}
		})
	}
}

// TestConcurrentWriters: servers starting at once, each in its own
// connection, all land their rows and leave the file intact.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	const writers = 8
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			r, err := Open(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			for j := range 10 {
				id := fmt.Sprintf("w%d-%d", i, j)
				if err := r.Register(context.Background(), "127.0.0.1", 9000+i, []Agent{{ID: id, Path: "/src/" + id}}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check = %q, %v; want ok", check, err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM agents`).Scan(&n); err != nil || n != writers*10 {
		t.Errorf("rows = %d, %v; want %d", n, err, writers*10)
	}
}

// TestPythonSDKFindsAddress reads the file with Python's sqlite3 module,
// the way RunAgent's Python SDK looks an agent up in local mode.
func TestPythonSDKFindsAddress(t *testing.T) {
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Fatalf("Debian's /usr/bin/python3 is missing (scripts/deps.sh installs it): %v", err)
	}
	path := filepath.Join(t.TempDir(), FileName)
	r := mustOpen(t, path)
	if err := r.Register(t.Context(), "127.0.0.1", 8450, []Agent{{ID: "6d2c2f5e", Path: "/src"}}); err != nil {
		t.Fatal(err)
	}
	// The second query is what SQLAlchemy sends for the SDK's
	// session.query(Agent).filter(Agent.agent_id == id).first().
	script := `import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT host, port FROM agents WHERE agent_id=?", (sys.argv[2],)).fetchone())
r = c.execute("SELECT ` + modelColumns + ` FROM agents WHERE agents.agent_id = ? LIMIT 1", (sys.argv[2],)).fetchone()
print(r[2:6], r[7], r[13], r[9] is not None)`
	out, err := exec.CommandContext(t.Context(), py, "-c", script, path, "6d2c2f5e").CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := "('127.0.0.1', 8450)\n('127.0.0.1', 8450, None, 'running') 1 0 True"
	if got != want {
		t.Errorf("python read:\n%s\nwant:\n%s", got, want)
	}
}

// modelColumns are the columns of RunAgent's Agent model
// (runagent/sdk/db.py), in its order.
const modelColumns = "agent_id, agent_path, host, port, framework, status, remote_status, is_local, fingerprint, " +
	"deployed_at, last_run, run_count, success_count, error_count, created_at, updated_at, " +
	"agent_name, description, template, version, initialized_at, config_fingerprint, project_id"

func TestDefaultPath(t *testing.T) {
	t.Setenv(DirEnv, "/tmp/cache")
	if got, err := DefaultPath(); err != nil || got != "/tmp/cache/"+FileName {
		t.Errorf("DefaultPath with $%s = %q, %v; want /tmp/cache/%s", DirEnv, got, err, FileName)
	}
	t.Setenv(DirEnv, "")
	t.Setenv("HOME", "/home/u")
	if got, err := DefaultPath(); err != nil || got != "/home/u/.runagent/"+FileName {
		t.Errorf("DefaultPath = %q, %v; want /home/u/.runagent/%s", got, err, FileName)
	}
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		addr string
		host string
		port int
	}{
		{"127.0.0.1:8450", "127.0.0.1", 8450},
		{"0.0.0.0:80", "127.0.0.1", 80},
		{"[::]:9000", "127.0.0.1", 9000},
		{"192.168.1.5:9000", "192.168.1.5", 9000},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			h, p, err := HostPort(tc.addr)
			if err != nil || h != tc.host || p != tc.port {
				t.Errorf("HostPort(%q) = %s, %d, %v; want %s, %d", tc.addr, h, p, err, tc.host, tc.port)
			}
		})
	}
}
