package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// TestPagedListsReadOnlyAPage: the queries of a page of keys and of
// memory records walk an index in the listing's order and stop at the
// limit: SQLite's plan searches an index and needs no sort of its own
// (a sort would read every matching row before the first is returned).
func TestPagedListsReadOnlyAPage(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	after := &core.KeyCursor{CreatedAt: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), ID: "k"}
	type query struct {
		name  string
		q     string
		args  []any
		index string
	}
	var queries []query
	for _, f := range []struct {
		name  string
		f     core.KeyFilter
		index string
	}{
		{"a project's first page of keys", core.KeyFilter{ProjectID: "p1", Limit: 21}, "api_keys_project_created"},
		{"a project's next page of keys", core.KeyFilter{ProjectID: "p1", Limit: 21, After: after}, "api_keys_project_created"},
		{"a page of every key", core.KeyFilter{Limit: 21, After: after}, "api_keys_created"},
		{"a principal's page of keys", core.KeyFilter{PrincipalID: "alice", Limit: 21, After: after}, "api_keys_principal_created"},
	} {
		q, args, err := keysQuery(f.f)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, query{f.name, q, args, f.index})
	}
	q, args, err := memoriesQuery("p1", "a1", "bob", 21)
	if err != nil {
		t.Fatal(err)
	}
	queries = append(queries, query{"a page of memory records", q, args, "sqlite_autoindex_memories"}) // the primary key
	for _, f := range []struct {
		name  string
		f     core.AgentFilter
		index string
	}{
		{"a project's page of agents", core.AgentFilter{ProjectID: "p1", Limit: 21, After: "a"}, "agents_project"},
		{"a page of a key's agents", core.AgentFilter{ProjectID: "p1", IDs: []string{"a", "b"}, Limit: 21}, "agents_project"},
	} {
		q, args, err := agentsQuery(f.f)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, query{f.name, q, args, f.index})
	}
	for _, after := range []*versionPlace{nil, {createdAt: 5, ord: 7}} {
		q, args, err := db.versionsQuery("a1", 21, after)
		if err != nil {
			t.Fatal(err)
		}
		queries = append(queries, query{fmt.Sprintf("a page of versions after %v", after), q, args, "agent_versions_created"})
	}
	for _, qq := range queries {
		text := queryPlan(t, db, qq.q, qq.args...)
		if !strings.Contains(text, "SEARCH") || !strings.Contains(text, qq.index) || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan %q; want a search of %s without a sort", qq.name, text, qq.index)
		}
	}
}

// BenchmarkAPIKeysPage reads the last page (20 keys, cursor paging) of a
// project with 100 and with 10,000 keys: side by side, the two take about
// as long, as a page reads only its own rows.
func BenchmarkAPIKeysPage(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			db := mustOpen(b, tempPath(b))
			seedKeys(b, db, n)
			// The page before the last: the cursor of the key 20 from the
			// end, newest first.
			all, err := db.APIKeys(b.Context(), core.KeyFilter{ProjectID: "p1"})
			if err != nil || len(all) != n {
				b.Fatalf("APIKeys = %d, %v", len(all), err)
			}
			last := all[n-21]
			f := core.KeyFilter{ProjectID: "p1", Limit: 21, After: &core.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}}
			for b.Loop() {
				page, err := db.APIKeys(b.Context(), f)
				if err != nil || len(page) != 20 {
					b.Fatalf("page = %d keys, %v", len(page), err)
				}
			}
		})
	}
}

// seedKeys makes project p1 with one principal and n keys a second apart,
// in one transaction.
func seedKeys(tb testing.TB, db *DB, n int) {
	tb.Helper()
	ctx := tb.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateProject(ctx, &core.Project{ID: "p1", Name: "p1", CreatedAt: start}); err != nil {
		tb.Fatal(err)
	}
	if err := db.CreatePrincipal(ctx, &core.Principal{ID: "alice", ProjectID: "p1", Name: "alice", Role: core.RoleViewer, Kind: core.PrincipalUser, CreatedAt: start}); err != nil {
		tb.Fatal(err)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		at, _ := encodeTime(start.Add(time.Duration(i) * time.Second))
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, principal_id, project_id, name, hash, scopes, agents, created_at, last_used_ip, replaced_by)
VALUES (?, 'alice', 'p1', 'k', x'00', '[]', '[]', ?, '', '')`, fmt.Sprintf("key%05d", i), at); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkAgentVersionsPage reads a page of 20 versions in the middle
// of an agent's 100 and of its 10,000 versions, and a page of 20 agents
// of a project's 100 and its 10,000: side by side, each pair takes about
// as long, as a page reads only its own rows.
func BenchmarkAgentVersionsPage(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			db := mustOpen(b, tempPath(b))
			seedVersions(b, db, n)
			f := core.VersionFilter{Limit: 21, After: fmt.Sprintf("sha256:%064d", n/2)}
			for b.Loop() {
				page, err := db.AgentVersionsPage(b.Context(), "a1", f)
				if err != nil || len(page) != 21 {
					b.Fatalf("page = %d versions, %v", len(page), err)
				}
			}
		})
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) {
			db := mustOpen(b, tempPath(b))
			seedVersions(b, db, 1)
			seedAgents(b, db, n)
			f := core.AgentFilter{ProjectID: "default", Limit: 21, After: fmt.Sprintf("agent%05d", n/2)}
			for b.Loop() {
				page, err := db.AgentsPage(b.Context(), f)
				if err != nil || len(page) != 21 {
					b.Fatalf("page = %d agents, %v", len(page), err)
				}
			}
		})
	}
}

// seedVersions makes agent a1 with n versions a second apart, in one
// transaction.
func seedVersions(tb testing.TB, db *DB, n int) {
	tb.Helper()
	ctx := tb.Context()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	at, _ := encodeTime(start)
	if _, err := tx.ExecContext(ctx, `INSERT INTO agents (id, project_id, name, current_version, created_at, updated_at) VALUES ('a1', 'default', 'a1', 'sha256:0', ?, ?)`, at, at); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		at, _ := encodeTime(start.Add(time.Duration(i) * time.Second))
		if _, err := tx.ExecContext(ctx, `INSERT INTO agent_versions (agent_id, hash, config, package, size, created_at)
VALUES ('a1', ?, '{}', x'00', 1, ?)`, fmt.Sprintf("sha256:%064d", i), at); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// seedAgents makes n agents of project default, in one transaction.
func seedAgents(tb testing.TB, db *DB, n int) {
	tb.Helper()
	ctx := tb.Context()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO agents (id, project_id, name, current_version, created_at, updated_at)
VALUES (?, 'default', 'a', 'sha256:0', 0, 0)`, fmt.Sprintf("agent%05d", i)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}
