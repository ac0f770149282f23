package sqlite

import (
	"database/sql"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// TestMigrateToProjects opens a database written by the migrations before
// projects existed, holding an agent and an invocation: both land in the
// default project and everything else about them is unchanged.
func TestMigrateToProjects(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	i := len(ms)
	for j, m := range ms {
		if m.name == "0002_identity.sql" {
			i = j
		}
	}
	if i == len(ms) {
		t.Fatalf("no 0002_identity.sql among %d migrations", len(ms))
	}

	// The database as the previous release left it.
	old, err := sql.Open("sqlite", dsn((&url.URL{Scheme: "file", Path: path}).String(), false))
	if err != nil {
		t.Fatal(err)
	}
	old.SetMaxOpenConns(1)
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	if err := migrateTo(ctx, old, ms[:i], func() time.Time { return created }); err != nil {
		t.Fatalf("migrating to %s: %v", ms[i-1].name, err)
	}
	cfg := core.AgentConfig{AgentName: "Helper", AgentID: "agent-1", Entrypoints: []core.Entrypoint{{Tag: "main", Kind: core.KindPython}}}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := created.UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO agents (id, name, current_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			[]any{"agent-1", "Helper", "sha256:aaaa", ns, ns}},
		{`INSERT INTO agent_versions (agent_id, hash, config, package, size, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			[]any{"agent-1", "sha256:aaaa", string(cfgJSON), []byte("pkg"), 3, ns}},
		{`INSERT INTO invocations (id, agent_id, agent_version, entrypoint_tag, streaming, transport, status,
	caller, user_id, input_args, input_kwargs, output, chunks, logs, error_code, error_message,
	created_at, completed_at, duration_ms)
VALUES ('inv-1', 'agent-1', 'sha256:aaaa', 'main', 0, 'rest', 'completed', '127.0.0.1', 'u1',
	'[1]', '{}', '2', 0, 'log', '', '', ?, ?, 250)`,
			[]any{ns, ns + 250e6}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpen(t, path)
	if got, want := versions(t, db), wantVersions(t); !cmp.Equal(got, want) {
		t.Errorf("schema_migrations = %q, want %q", got, want)
	}
	a, err := db.Agent(ctx, "agent-1")
	if err != nil {
		t.Fatalf("Agent after migration = %v", err)
	}
	wantAgent := &core.Agent{ID: "agent-1", ProjectID: core.DefaultProject, Name: "Helper", CurrentVersion: "sha256:aaaa", CreatedAt: created, UpdatedAt: created}
	if diff := cmp.Diff(a, wantAgent); diff != "" {
		t.Errorf("Agent after migration (-got +want):\n%s", diff)
	}
	v, err := db.AgentVersion(ctx, "agent-1", "sha256:aaaa")
	if err != nil {
		t.Fatalf("AgentVersion after migration = %v", err)
	}
	wantVersion := &core.AgentVersion{AgentID: "agent-1", ProjectID: core.DefaultProject, Hash: "sha256:aaaa", Config: cfg, Package: []byte("pkg"), Size: 3, CreatedAt: created}
	if diff := cmp.Diff(v, wantVersion); diff != "" {
		t.Errorf("AgentVersion after migration (-got +want):\n%s", diff)
	}
	inv, err := db.Invocation(ctx, "inv-1")
	if err != nil {
		t.Fatalf("Invocation after migration = %v", err)
	}
	done := created.Add(250 * time.Millisecond)
	wantInv := &core.Invocation{
		ID: "inv-1", AgentID: "agent-1", ProjectID: core.DefaultProject, AgentVersion: "sha256:aaaa",
		EntrypointTag: "main", Transport: "rest", Status: core.StatusCompleted, Caller: "127.0.0.1", UserID: "u1",
		InputArgs: json.RawMessage(`[1]`), InputKwargs: json.RawMessage(`{}`), Output: json.RawMessage(`2`), Logs: "log",
		CreatedAt: created, CompletedAt: &done, DurationMS: 250,
	}
	if diff := cmp.Diff(inv, wantInv); diff != "" {
		t.Errorf("Invocation after migration (-got +want):\n%s", diff)
	}
	for project, want := range map[string]int{core.DefaultProject: 1, "": 1, "other": 0} {
		got, err := db.Invocations(ctx, core.InvocationFilter{ProjectID: project})
		if err != nil || len(got) != want {
			t.Errorf("Invocations(ProjectID %q) = %d, %v; want %d", project, len(got), err, want)
		}
	}

	ps, err := db.Projects(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != core.DefaultProject {
		t.Fatalf("Projects after migration = %v, %v; want the default project", ps, err)
	}
	if ps[0].CreatedAt.Location() != time.UTC || time.Since(ps[0].CreatedAt).Abs() > time.Minute {
		t.Errorf("default project created at %v, want about now in UTC", ps[0].CreatedAt)
	}
	var problems int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&problems); err != nil || problems != 0 {
		t.Errorf("foreign key check after migration = %d problems, %v", problems, err)
	}

	// The agent carries on in the default project, and only there.
	if _, err := db.PutAgentVersion(ctx, &core.AgentVersion{AgentID: "agent-1", Hash: "sha256:bbbb", Config: cfg, Package: []byte("p2")}); err != nil {
		t.Errorf("PutAgentVersion(agent-1) after migration = %v", err)
	}
	if err := db.CreateProject(ctx, &core.Project{ID: "other", Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	_, err = db.PutAgentVersion(ctx, &core.AgentVersion{AgentID: "agent-1", ProjectID: "other", Hash: "sha256:cccc", Config: cfg})
	if core.ErrorCode(err) != core.CodeConflict {
		t.Errorf("PutAgentVersion(agent-1 in other) after migration = %v, want CONFLICT", err)
	}
}

// TestIdentityQueriesUseIndexes checks that the listing queries of this
// change are answered from an index, in order, without a sort.
func TestIdentityQueriesUseIndexes(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`SELECT ` + keyColumns + ` FROM api_keys WHERE principal_id = ? ORDER BY created_at DESC, id DESC`, []any{"p"}},
		{`SELECT ` + keyColumns + ` FROM api_keys WHERE project_id = ? ORDER BY created_at DESC, id DESC`, []any{"p"}},
		{`SELECT ` + keyColumns + ` FROM api_keys ORDER BY created_at DESC, id DESC`, nil},
		{`SELECT ` + principalColumns + ` FROM principals WHERE project_id IS ? ORDER BY id`, []any{nil}},
		{`SELECT ` + principalColumns + ` FROM principals WHERE project_id IS ? ORDER BY id`, []any{"p"}},
		{`SELECT ` + invocationColumns + ` FROM invocations WHERE project_id = ? ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, []any{"p", 50, 0}},
	} {
		p := queryPlan(t, db, q.sql, q.args...)
		if !strings.Contains(p, "USING INDEX") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("plan of %s = %q, want an index and no sort", q.sql, p)
		}
	}
}

// TestMigrateKeyUsers opens a database written before keys had users,
// holding an owner key and a project key: both read back acting for no
// user (Users nil) with everything else unchanged, and new keys keep
// theirs.
func TestMigrateKeyUsers(t *testing.T) {
	ctx := t.Context()
	path := tempPath(t)
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m migration) bool { return m.name == "0013_key_users.sql" })
	if i < 0 {
		t.Fatalf("no 0013_key_users.sql among %d migrations", len(ms))
	}
	old, err := sql.Open("sqlite", dsn((&url.URL{Scheme: "file", Path: path}).String(), false))
	if err != nil {
		t.Fatal(err)
	}
	old.SetMaxOpenConns(1)
	created := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := migrateTo(ctx, old, ms[:i], func() time.Time { return created }); err != nil {
		t.Fatalf("migrating to %s: %v", ms[i-1].name, err)
	}
	ns := created.UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO principals (id, project_id, name, kind, role, created_at) VALUES ('root', NULL, 'owner', 'user', 'owner', ?)`, []any{ns}},
		{`INSERT INTO principals (id, project_id, name, kind, role, created_at) VALUES ('svc', 'default', 'svc', 'service', 'user', ?)`, []any{ns}},
		{`INSERT INTO api_keys (id, principal_id, project_id, name, hash, scopes, agents, created_at, expires_at, revoked_at, last_used_at, last_used_ip, replaced_by)
VALUES ('k-owner', 'root', NULL, 'bootstrap', x'01', '[]', '[]', ?, NULL, NULL, NULL, '', '')`, []any{ns}},
		{`INSERT INTO api_keys (id, principal_id, project_id, name, hash, scopes, agents, created_at, expires_at, revoked_at, last_used_at, last_used_ip, replaced_by)
VALUES ('k-svc', 'svc', 'default', 'ci', x'02', '["read"]', '["agent-1"]', ?, NULL, NULL, NULL, '', '')`, []any{ns}},
	} {
		if _, err := old.ExecContext(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := mustOpen(t, path)
	for _, want := range []*core.APIKey{
		{ID: "k-owner", PrincipalID: "root", Name: "bootstrap", Hash: []byte{1}, CreatedAt: created},
		{ID: "k-svc", PrincipalID: "svc", ProjectID: "default", Name: "ci", Hash: []byte{2}, CreatedAt: created,
			Scopes: []core.Permission{core.PermRead}, Agents: []string{"agent-1"}},
	} {
		got, err := db.APIKey(ctx, want.ID)
		if err != nil {
			t.Fatalf("APIKey(%s) after migration = %v", want.ID, err)
		}
		if diff := cmp.Diff(got, want); diff != "" {
			t.Errorf("APIKey(%s) after migration (-got +want):\n%s", want.ID, diff)
		}
	}
	k := &core.APIKey{ID: "k-new", PrincipalID: "root", Name: "backend", Hash: []byte{3}, CreatedAt: created, Users: []string{"*"}}
	if err := db.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got, err := db.APIKey(ctx, "k-new"); err != nil || !slices.Equal(got.Users, []string{"*"}) {
		t.Errorf("APIKey(k-new) users = %v, %v; want [*]", got.Users, err)
	}
	// The column holds a JSON array and nothing else.
	if _, err := db.write.ExecContext(ctx, `UPDATE api_keys SET users = '"*"' WHERE id = 'k-new'`); err == nil {
		t.Error("the users column took a JSON string")
	}
}
