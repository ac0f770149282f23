package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// schemaVersions returns the versions recorded in schema_migrations.
func schemaVersions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func wantVersions(t *testing.T) []int {
	t.Helper()
	ms, err := sqlite.LoadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	vs := make([]int, len(ms))
	for i, m := range ms {
		vs[i] = m.Version
	}
	return vs
}

// TestMigrateIdempotent: opening a migrated database again applies
// nothing and keeps the data.
func TestMigrateIdempotent(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	db := mustOpen(t, url)
	if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: "inv-1", AgentID: "a"}); err != nil {
		t.Fatalf("CreateInvocation = %v", err)
	}
	db.Close()
	again := mustOpen(t, url)
	if got, want := schemaVersions(t, again), wantVersions(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations after a second Open = %v, want %v", got, want)
	}
	if _, err := again.Invocation(t.Context(), "inv-1"); err != nil {
		t.Errorf("Invocation(inv-1) after a second Open = %v, want it kept", err)
	}
}

// TestMigrateConcurrently: nodes opening a fresh database at once all
// succeed, and each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	const nodes = 4
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), url) })
	}
	wg.Wait()
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: Open = %v", i, errs[i])
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if got, want := schemaVersions(t, dbs[0]), wantVersions(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations = %v, want %v", got, want)
	}
}

// TestSchemaTooNew: a database migrated by a newer binary is refused.
func TestSchemaTooNew(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	mustOpen(t, url)
	pgtest.Exec(t, url, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`)
	db, err := Open(t.Context(), url)
	if err == nil {
		db.Close()
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open of a database at version 999 = %v, want ErrSchemaTooNew", err)
	}
}

// TestRestartedServer: while PostgreSQL is down a store operation fails
// with an error saying the database is unavailable; once it is back the
// same DB works again, without reopening.
func TestRestartedServer(t *testing.T) {
	c := pgtest.Start(t)
	db := mustOpen(t, c.NewDatabase(t))
	ctx := t.Context()
	if err := db.CreateInvocation(ctx, &core.Invocation{ID: "before", AgentID: "a"}); err != nil {
		t.Fatalf("CreateInvocation before the restart = %v", err)
	}

	c.Stop(t)
	err := db.CreateInvocation(ctx, &core.Invocation{ID: "during", AgentID: "a"})
	if err == nil || !strings.Contains(err.Error(), "database unavailable") || core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("CreateInvocation while PostgreSQL is down = %v, want a %s error saying the database is unavailable", err, core.CodeUnavailable)
	}
	if err := db.Ping(ctx); err == nil {
		t.Errorf("Ping while PostgreSQL is down = nil, want an error")
	}

	c.Restart(t)
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping after the restart = %v", err)
	}
	if err := db.CreateInvocation(ctx, &core.Invocation{ID: "after", AgentID: "a"}); err != nil {
		t.Fatalf("CreateInvocation after the restart = %v", err)
	}
	for _, id := range []string{"before", "after"} {
		if _, err := db.Invocation(ctx, id); err != nil {
			t.Errorf("Invocation(%s) after the restart = %v", id, err)
		}
	}
	if _, err := db.Invocation(ctx, "during"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Invocation(during) = %v, want ErrNotFound (it was refused)", err)
	}
}

var auditKey = bytes.Repeat([]byte{0x42}, audit.KeySize)

// TestAuditOneChainAcrossNodes: two nodes (two DBs on one database, each
// with its own audit Log) append concurrently; the trail is one chain
// that verifies whole, holding every acknowledged record once.
func TestAuditOneChainAcrossNodes(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	const nodes, perNode = 2, 40
	logs := make([]*audit.Log, nodes)
	for i := range nodes {
		l, err := audit.New(mustOpen(t, url), auditKey, audit.Options{})
		if err != nil {
			t.Fatalf("audit.New = %v", err)
		}
		t.Cleanup(func() { l.Close() })
		logs[i] = l
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[string]int64{} // request id -> seq
	)
	for n, l := range logs {
		for g := range 4 {
			wg.Go(func() {
				for i := range perNode / 4 {
					id := fmt.Sprintf("node%d-g%d-%d", n, g, i)
					rec := audit.Record{PrincipalID: "prn-1", Action: "invocation.run", Resource: "agent/a",
						Outcome: audit.OutcomeSuccess, RequestID: id}
					// One call: the batch is chained in its own
					// transaction, so it never loses a race for the head.
					got, err := l.Append(t.Context(), rec)
					if err != nil {
						t.Errorf("Append(%s) = %v", id, err)
						return
					}
					mu.Lock()
					acked[id] = got.Seq
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	checkTrail(t, mustOpen(t, url), acked)
}

// TestAuditChainRefusedInDatabase: a record that does not extend the
// stored head is refused by the database, whichever node sends it.
func TestAuditChainRefusedInDatabase(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	a, b := mustOpen(t, url), mustOpen(t, url)
	zero := make([]byte, audit.HashSize)
	rec := func(seq int64, prev []byte, fill byte) audit.Record {
		return audit.Record{Seq: seq, Time: time.Unix(1, 0).UTC(), Action: "x", Outcome: audit.OutcomeSuccess,
			PrevHash: prev, Hash: bytes.Repeat([]byte{fill}, audit.HashSize)}
	}
	if err := a.AppendAudit(t.Context(), []audit.Record{rec(1, zero, 1)}); err != nil {
		t.Fatalf("AppendAudit(1) on node a = %v", err)
	}
	// Node b still believes the chain is empty.
	if err := b.AppendAudit(t.Context(), []audit.Record{rec(1, zero, 2)}); err == nil {
		t.Errorf("AppendAudit(1) again on node b = nil, want refused")
	}
	if err := b.AppendAudit(t.Context(), []audit.Record{rec(2, zero, 2)}); !errors.Is(err, audit.ErrNotNext) || !strings.Contains(err.Error(), "does not extend the chain") {
		t.Errorf("AppendAudit(2 after zeros) on node b = %v, want refused as not extending the chain (audit.ErrNotNext)", err)
	}
	if err := b.AppendAudit(t.Context(), []audit.Record{rec(2, bytes.Repeat([]byte{1}, audit.HashSize), 2)}); err != nil {
		t.Errorf("AppendAudit(2 after 1) on node b = %v", err)
	}
}

// TestAuditAppendOnly: the database refuses to change or delete records
// outside a purge.
func TestAuditAppendOnly(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	db := mustOpen(t, url)
	zero := make([]byte, audit.HashSize)
	if err := db.AppendAudit(t.Context(), []audit.Record{{Seq: 1, Time: time.Unix(1, 0).UTC(), Action: "x",
		Outcome: audit.OutcomeSuccess, PrevHash: zero, Hash: bytes.Repeat([]byte{1}, audit.HashSize)}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE audit_records SET action = 'y'`,
		`DELETE FROM audit_records`,
		`TRUNCATE audit_records`,
		`DELETE FROM audit_purge_guard`,
	} {
		if _, err := db.write.ExecContext(t.Context(), q); err == nil {
			t.Errorf("%s = nil, want refused", q)
		}
	}
}

// TestStatementTimeout: every connection runs with a statement timeout,
// the default or the URL's, and a statement past it fails.
func TestStatementTimeout(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	show := func(db *DB) string {
		var v string
		if err := db.read.QueryRowContext(t.Context(), `SHOW statement_timeout`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := show(mustOpen(t, url)); got != "30s" {
		t.Errorf("statement_timeout = %q, want 30s", got)
	}
	short := mustOpen(t, url+"&statement_timeout=100")
	if got := show(short); got != "100ms" {
		t.Errorf("statement_timeout with the URL's 100 = %q, want 100ms", got)
	}
	if _, err := short.read.ExecContext(t.Context(), `SELECT pg_sleep(2)`); err == nil || !strings.Contains(err.Error(), "57014") {
		t.Errorf("a 2 s statement under a 100 ms timeout = %v, want canceled (57014)", err)
	}
}
