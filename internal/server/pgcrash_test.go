package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestPostgresCrashKeepsAcknowledgedRuns runs echo invocations through a
// server on a durable PostgreSQL, whose invocation records are committed
// with synchronous_commit off (postgres.LazyConfig), crashes PostgreSQL
// under that load (immediate shutdown: unflushed asynchronous commits
// are lost), restarts it, and checks that every run answered 200 has its
// record, completed, and its audit record: the durable audit append
// before each answer flushed the run's earlier lazy commits.
//
// TestPostgresCrashLosesLazyCommits below shows what this test would
// catch: lazy commits with no durable commit after them are lost by the
// same crash.
func TestPostgresCrashKeepsAcknowledgedRuns(t *testing.T) {
	token := withOwnerKey(t)
	c := pgtest.StartWith(t, pgtest.Options{Durable: true})
	url := c.NewDatabase(t)
	s := serve(t, Config{AgentDirs: []string{"../../examples/hello"}, StoreURL: url,
		Keyring: KeyringConfig{MasterKeyFile: filepath.Join(t.TempDir(), "master.key")}})

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	hc := &http.Client{Timeout: 20 * time.Second}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if id := runEcho(hc, s.URL(), token); id != "" {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	c.Crash(t) // under load
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	c.Restart(t)
	if len(acked) < 50 {
		t.Fatalf("only %d runs were answered before the crash: too few to tell anything", len(acked))
	}

	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	status := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT id, status FROM invocations`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		status[id] = st
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	rows, err = db.QueryContext(ctx, `SELECT details::json->>'invocation_id' FROM audit_records WHERE action = 'invocation.run' AND outcome = 'success'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id sql.NullString
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		audited[id.String] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if st := status[id]; st != string(core.StatusCompleted) {
			t.Errorf("acknowledged run %s: record status %q after the crash, want completed", id, st)
		}
		if !audited[id] {
			t.Errorf("acknowledged run %s: no audit record after the crash", id)
		}
	}
	t.Logf("%d acknowledged runs, %d records, %d audit records of runs after the crash", len(acked), len(status), len(audited))
}

// runEcho runs the hello agent's echo entrypoint and returns the
// invocation id if the run was answered 200 with success, else "".
func runEcho(hc *http.Client, base, token string) string {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/agents/"+helloID+"/run", bytes.NewReader(echoBody))
	if err != nil {
		return ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var env struct {
		Success      bool   `json:"success"`
		InvocationID string `json:"invocation_id"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&env) != nil || !env.Success {
		return ""
	}
	return env.InvocationID
}

// TestPostgresCrashLosesLazyCommits is the counter-example that makes
// the test above meaningful: invocation records committed lazily (as the
// server commits them when a durable audit append follows) but with no
// durable commit after them are lost, some of them, by an immediate
// shutdown right after the last commit returned. Were the server's
// audit append lazy too, or made before the record's write, its
// acknowledged runs would be lost in the same way.
func TestPostgresCrashLosesLazyCommits(t *testing.T) {
	c := pgtest.StartWith(t, pgtest.Options{Durable: true})
	url := c.NewDatabase(t)
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := core.WithDurableCommitFollows(t.Context())
	const n = 300
	for i := range n {
		inv := &core.Invocation{ID: fmt.Sprintf("lazy-%04d", i), AgentID: "a", EntrypointTag: "echo"}
		if err := db.CreateInvocation(ctx, inv); err != nil {
			t.Fatalf("CreateInvocation: %v", err)
		}
	}
	c.Crash(t)
	db.Close()
	c.Restart(t)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var kept int
	if err := raw.QueryRowContext(t.Context(), `SELECT count(*) FROM invocations`).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d lazily committed records survived the crash", kept, n)
	if kept == n {
		t.Errorf("all %d lazily committed records survived an immediate shutdown right after the last commit: is synchronous_commit off on the lazy pool?", n)
	}
}
