package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/store/storetest"
)

// mustOpenSealed is mustOpen with a keyring (a fresh random master key)
// sealing secrets and invocation payloads, as the server opens it.
func mustOpenSealed(t testing.TB, path string) *DB {
	t.Helper()
	db := mustOpen(t, path)
	master := make([]byte, keyring.KeySize)
	rand.Read(master)
	kr, err := keyring.Open(t.Context(), db, keyring.Master{Key: master})
	if err != nil {
		t.Fatalf("keyring.Open = %v", err)
	}
	db.SetSealer(kr)
	return db
}

// mustOpen opens a database at path and closes it when the test ends.
func mustOpen(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return db
}

func tempPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "runagent.db")
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		return mustOpenSealed(t, tempPath(t))
	})
}

func TestStoreInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) core.Store {
		return mustOpenSealed(t, MemoryPath)
	})
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "runagent")
	path := filepath.Join(dir, "runagent.db")
	db := mustOpen(t, path)
	// Write something so that the WAL and shared-memory files exist.
	if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: "inv-1", AgentID: "a"}); err != nil {
		t.Fatalf("CreateInvocation = %v", err)
	}
	tests := []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{filepath.Dir(dir), 0o700 | os.ModeDir},
		{path, 0o600},
		{path + "-wal", 0o600},
		{path + "-shm", 0o600},
	}
	for _, tt := range tests {
		fi, err := os.Stat(tt.path)
		if err != nil {
			t.Errorf("Stat(%s) = %v", tt.path, err)
			continue
		}
		if got := fi.Mode(); got != tt.want {
			t.Errorf("mode of %s = %v, want %v", tt.path, got, tt.want)
		}
	}
	if got := db.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
}

func TestOpenSpecialPath(t *testing.T) {
	// Characters that mean something in a URI must name the file literally.
	for _, name := range []string{"with space.db", "q?mode=ro&x=1.db", "hash#frag.db", "pct%20.db", "ünïcødé.db"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			db := mustOpen(t, path)
			if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: "inv-1", AgentID: "a"}); err != nil {
				t.Fatalf("CreateInvocation = %v", err)
			}
			if _, err := db.Invocation(t.Context(), "inv-1"); err != nil {
				t.Fatalf("Invocation = %v", err)
			}
			entries, err := os.ReadDir(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) == 0 || names[0] != name {
				t.Errorf("directory holds %q, want %q (and its -wal, -shm)", names, name)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database\n", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"", dir, garbage} {
		if db, err := Open(t.Context(), path); err == nil {
			db.Close()
			t.Errorf("Open(%q) = nil error, want error", path)
		}
	}
}

// pragma returns the value of a PRAGMA on one connection.
func pragma(t *testing.T, c *sql.Conn, name string) string {
	t.Helper()
	var v string
	if err := c.QueryRowContext(t.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s = %v", name, err)
	}
	return v
}

func TestPragmasOnEveryConnection(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	want := map[string]string{
		"journal_mode": "wal",
		"busy_timeout": "5000",
		"foreign_keys": "1",
		"synchronous":  "1", // NORMAL
	}
	pools := []struct {
		name      string
		pool      *sql.DB
		conns     int
		queryOnly string
	}{
		{"writer", db.write, 1, "0"},
		{"reader", db.read, db.read.Stats().MaxOpenConnections, "1"},
	}
	for _, p := range pools {
		// Hold every connection at once so that each is a distinct one.
		var conns []*sql.Conn
		for range p.conns {
			c, err := p.pool.Conn(t.Context())
			if err != nil {
				t.Fatalf("%s: Conn() = %v", p.name, err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for name, w := range want {
				if got := pragma(t, c, name); got != w {
					t.Errorf("%s connection %d: PRAGMA %s = %s, want %s", p.name, i, name, got, w)
				}
			}
			if got := pragma(t, c, "query_only"); got != p.queryOnly {
				t.Errorf("%s connection %d: PRAGMA query_only = %s, want %s", p.name, i, got, p.queryOnly)
			}
			c.Close()
		}
	}
	if n := db.write.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("writer pool MaxOpenConnections = %d, want 1", n)
	}
	if n := db.read.Stats().MaxOpenConnections; n < 2 {
		t.Errorf("reader pool MaxOpenConnections = %d, want several", n)
	}
}

func TestReaderCannotWrite(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	if _, err := db.read.ExecContext(t.Context(), "DELETE FROM invocations"); err == nil {
		t.Errorf("DELETE on the reader pool = nil error, want a query-only error")
	}
}

func TestForeignKeysEnforced(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	_, err := db.write.ExecContext(t.Context(), `INSERT INTO agent_versions (agent_id, hash, config, package, size, created_at)
VALUES ('no-such-agent', 'h', '{}', x'', 0, 0)`)
	if err == nil {
		t.Errorf("inserting a version of an unknown agent = nil error, want a foreign key error")
	}
}

// versions returns the rows of schema_migrations.
func versions(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), "SELECT version, name FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			v    int
			name string
		)
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %s", v, name))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantVersions(t *testing.T) []string {
	t.Helper()
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("loadMigrations(embedded) = %v", err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%d %s", m.version, m.name))
	}
	return out
}

func TestMigrationsIdempotent(t *testing.T) {
	path := tempPath(t)
	want := wantVersions(t)
	if len(want) == 0 || want[0] != "1 0001_init.sql" {
		t.Fatalf("embedded migrations = %q, want 0001_init.sql first", want)
	}
	for i := range 3 {
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("Open #%d = %v", i+1, err)
		}
		if got := versions(t, db); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("after Open #%d schema_migrations = %q, want %q", i+1, got, want)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
}

func TestConcurrentOpen(t *testing.T) {
	// Several processes starting at once on a new file migrate it once.
	path := tempPath(t)
	var wg sync.WaitGroup
	dbs := make([]*DB, 4)
	errs := make([]error, len(dbs))
	for i := range dbs {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), path) })
	}
	wg.Wait()
	for i, db := range dbs {
		if errs[i] != nil {
			t.Errorf("Open #%d = %v", i, errs[i])
			continue
		}
		defer db.Close()
	}
	if t.Failed() {
		return
	}
	if got, want := versions(t, dbs[0]), wantVersions(t); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("schema_migrations = %q, want %q", got, want)
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	path := tempPath(t)
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(t.Context(),
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(t.Context(), path)
	if err == nil {
		db.Close()
		t.Fatalf("Open of a database at schema version 9999 = nil error, want refusal")
	}
	t.Logf("refusal: %v", err)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open error = %v, want one wrapping ErrSchemaTooNew", err)
	}
	known := fmt.Sprint(len(wantVersions(t)))
	for _, want := range []string{path, "9999", known, "newer", "upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error = %q, want it to mention %q", err, want)
		}
	}
}

func TestLoadMigrations(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("CREATE TABLE t (x INTEGER);")}
	tests := []struct {
		name    string
		files   []string
		wantErr bool
	}{
		{"none", nil, false},
		{"in order", []string{"0001_a.sql", "0002_b.sql", "0003_c.sql"}, false},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, true},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, true},
		{"not from one", []string{"0002_b.sql"}, true},
		{"short number", []string{"1_a.sql"}, true},
		{"no description", []string{"0001.sql"}, true},
		{"not a number", []string{"000x_a.sql"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{"migrations/README": &fstest.MapFile{Data: []byte("not sql")}}
			for _, f := range tt.files {
				fsys["migrations/"+f] = sql
			}
			ms, err := loadMigrations(fsys)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("loadMigrations(%q) = %v, want error %v", tt.files, err, tt.wantErr)
			}
			if err == nil && len(ms) != len(tt.files) {
				t.Errorf("loadMigrations(%q) = %d migrations, want %d", tt.files, len(ms), len(tt.files))
			}
		})
	}
}

func TestDataPersists(t *testing.T) {
	path := tempPath(t)
	ctx := t.Context()
	created := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	done := created.Add(250 * time.Millisecond)
	v := &core.AgentVersion{
		AgentID: "agent-1", Hash: "sha256:aaaa", Package: []byte("tar.gz bytes"),
		Config: core.AgentConfig{AgentName: "Helper", AgentID: "agent-1", Entrypoints: []core.Entrypoint{{Tag: "main", Kind: core.KindPython}}},
	}
	inv := &core.Invocation{
		ID: "inv-1", AgentID: "agent-1", AgentVersion: "sha256:aaaa", EntrypointTag: "main",
		InputArgs: json.RawMessage(`[1]`), InputKwargs: json.RawMessage(`{}`), CreatedAt: created,
	}

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutAgentVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateInvocation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	fin := *inv
	fin.Status, fin.Output, fin.CompletedAt, fin.DurationMS = core.StatusCompleted, json.RawMessage(`2`), &done, 250
	if err := db.FinishInvocation(ctx, &fin); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, path)
	a, err := db.Agent(ctx, "agent-1")
	if err != nil || a.CurrentVersion != "sha256:aaaa" || a.Name != "Helper" {
		t.Errorf("Agent after reopen = %+v, %v; want Helper at sha256:aaaa", a, err)
	}
	gotV, err := db.AgentVersion(ctx, "agent-1", "sha256:aaaa")
	if err != nil || string(gotV.Package) != "tar.gz bytes" || gotV.Size != int64(len("tar.gz bytes")) {
		t.Errorf("AgentVersion after reopen = %+v, %v; want the package", gotV, err)
	}
	got, err := db.Invocation(ctx, "inv-1")
	if err != nil {
		t.Fatalf("Invocation after reopen = %v", err)
	}
	// SQLite keeps nanoseconds.
	if got.CreatedAt != created || got.CompletedAt == nil || *got.CompletedAt != done {
		t.Errorf("times after reopen = %v, %v; want exactly %v, %v", got.CreatedAt, got.CompletedAt, created, done)
	}
	if got.Status != core.StatusCompleted || string(got.Output) != "2" {
		t.Errorf("Invocation after reopen = %+v, want completed with output 2", got)
	}
}

func TestTimeEncoding(t *testing.T) {
	tests := []struct {
		in      time.Time
		wantErr bool
	}{
		{time.Date(2025, 6, 1, 12, 0, 0, 1, time.UTC), false},
		{time.Date(2025, 6, 1, 14, 0, 0, 999999999, time.FixedZone("CEST", 2*3600)), false},
		{time.Unix(0, 0), false},
		{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Time{}, true},
	}
	for _, tt := range tests {
		n, err := encodeTime(tt.in)
		if gotErr := err != nil; gotErr != tt.wantErr {
			t.Errorf("encodeTime(%v) = %d, %v; want error %v", tt.in, n, err, tt.wantErr)
			continue
		}
		if err != nil {
			if core.ErrorCode(err) != core.CodeValidation {
				t.Errorf("encodeTime(%v) error code = %s, want %s", tt.in, core.ErrorCode(err), core.CodeValidation)
			}
			continue
		}
		got := decodeTime(n)
		if !got.Equal(tt.in) || got.Location() != time.UTC {
			t.Errorf("decodeTime(encodeTime(%v)) = %v, want the same instant in UTC", tt.in, got)
		}
	}
	// Encoded times sort like the times.
	a, _ := encodeTime(time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC))
	b, _ := encodeTime(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC))
	c, _ := encodeTime(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
	if !(a < b && b < c) {
		t.Errorf("encoded times %d, %d, %d do not sort in time order", a, b, c)
	}
}

func TestOutOfRangeTimeRefused(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	inv := &core.Invocation{ID: "inv-1", AgentID: "a", CreatedAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := db.CreateInvocation(t.Context(), inv); core.ErrorCode(err) != core.CodeValidation {
		t.Errorf("CreateInvocation in the year 3000 = %v, want a validation error", err)
	}
	for _, id := range []string{"inv-1", "inv-2"} {
		if err := db.CreateInvocation(t.Context(), &core.Invocation{ID: id, AgentID: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.FinishInvocation(t.Context(), &core.Invocation{ID: "inv-1", Status: core.StatusCompleted}); err != nil {
		t.Fatal(err)
	}
	// Deleting before a time out of range deletes nothing or everything.
	tests := []struct {
		before time.Time
		want   int64
	}{
		{time.Time{}, 0},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 1},
	}
	for _, tt := range tests {
		for _, dryRun := range []bool{true, false} {
			if n, err := db.DeleteInvocationsBefore(t.Context(), tt.before, dryRun); n != tt.want || err != nil {
				t.Errorf("DeleteInvocationsBefore(%v, dry run %v) = %d, %v; want %d, nil", tt.before, dryRun, n, err, tt.want)
			}
		}
	}
	if _, err := db.Invocation(t.Context(), "inv-2"); err != nil {
		t.Errorf("running invocation: %v", err)
	}
}

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestAgentTimestamps(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	clk := &clock{}
	db.now = clk.Now
	ctx := t.Context()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(at time.Time, hash, name string) {
		t.Helper()
		clk.Set(at)
		v := &core.AgentVersion{AgentID: "agent-1", Hash: hash, Config: core.AgentConfig{AgentName: name}, Package: []byte(hash)}
		if _, err := db.PutAgentVersion(ctx, v); err != nil {
			t.Fatalf("PutAgentVersion(%s) = %v", hash, err)
		}
	}
	check := func(what string, wantCreated, wantUpdated time.Time) {
		t.Helper()
		a, err := db.Agent(ctx, "agent-1")
		if err != nil {
			t.Fatal(err)
		}
		if a.CreatedAt != wantCreated || a.UpdatedAt != wantUpdated {
			t.Errorf("%s: created %v updated %v, want %v %v", what, a.CreatedAt, a.UpdatedAt, wantCreated, wantUpdated)
		}
	}
	put(t0, "v1", "A")
	check("first version", t0, t0)
	if v, err := db.AgentVersion(ctx, "agent-1", "v1"); err != nil || v.CreatedAt != t0 {
		t.Errorf("AgentVersion(v1) = %+v, %v; want created %v", v, err, t0)
	}
	put(t0.Add(time.Hour), "v1", "A")
	check("same version again", t0, t0)
	put(t0.Add(2*time.Hour), "v2", "A")
	check("new version", t0, t0.Add(2*time.Hour))
	put(t0.Add(3*time.Hour), "v2", "B")
	check("renamed", t0, t0.Add(3*time.Hour))
	put(t0.Add(4*time.Hour), "v1", "A")
	check("rolled back", t0, t0.Add(4*time.Hour))
	if v, err := db.AgentVersion(ctx, "agent-1", "v1"); err != nil || v.CreatedAt != t0 {
		t.Errorf("AgentVersion(v1) after rollback = %+v, %v; want created %v", v, err, t0)
	}
}

func TestPutAgentVersionSizeMismatch(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	v := &core.AgentVersion{AgentID: "a", Hash: "h", Package: []byte("four"), Size: 5}
	if _, err := db.PutAgentVersion(t.Context(), v); core.ErrorCode(err) != core.CodeValidation {
		t.Errorf("PutAgentVersion with size 5 for 4 bytes = %v, want a validation error", err)
	}
	if _, err := db.Agent(t.Context(), "a"); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Agent after refused put = %v, want not found", err)
	}
}

func TestFailRunningDuration(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	clk := &clock{}
	db.now = clk.Now
	ctx := t.Context()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateInvocation(ctx, &core.Invocation{ID: "inv-1", AgentID: "a", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(90*time.Second + 500*time.Microsecond))
	if n, err := db.FailNodeInvocations(ctx, "node-1", true, "restarted"); n != 1 || err != nil {
		t.Fatalf("FailNodeInvocations(unowned) = %d, %v; want 1, nil", n, err)
	}
	got, err := db.Invocation(ctx, "inv-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.DurationMS != 90000 || got.CompletedAt == nil || *got.CompletedAt != clk.Now() {
		t.Errorf("failed invocation: duration %d completed %v, want 90000 at %v", got.DurationMS, got.CompletedAt, clk.Now())
	}
}

func TestDeleteCancelled(t *testing.T) {
	db := mustOpen(t, tempPath(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n, err := db.DeleteInvocationsBefore(ctx, time.Now(), false)
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteInvocationsBefore(cancelled) = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestCloseTwice(t *testing.T) {
	db, err := Open(t.Context(), tempPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := db.Ping(t.Context()); err == nil {
		t.Errorf("Ping() after Close = nil, want error")
	}
}
