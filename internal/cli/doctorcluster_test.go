package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestDoctorStore: doctor's store check against a real PostgreSQL: a
// fresh database and a migrated one pass, saying which; one migrated by
// a newer binary and a stopped server fail with what to do; the password
// never shows.
func TestDoctorStore(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	pgtest.Exec(t, url, `ALTER USER postgres PASSWORD 'hunter2-secret'`)
	secretURL := strings.Replace(url, "postgres@", "postgres:hunter2-secret@", 1)
	check := func(t *testing.T, wantOK bool, says ...string) {
		t.Helper()
		got := checkStore(t.Context(), secretURL)
		if got.OK != wantOK {
			t.Errorf("checkStore = %+v, want ok %v", got, wantOK)
		}
		for _, s := range says {
			if !strings.Contains(got.Detail, s) {
				t.Errorf("checkStore says %q, want it to say %q", got.Detail, s)
			}
		}
		if strings.Contains(got.Detail, "hunter2") {
			t.Errorf("checkStore shows the password: %q", got.Detail)
		}
	}

	t.Run("empty", func(t *testing.T) { check(t, true, "empty: serve creates the schema", "clock skew") })
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	t.Run("migrated", func(t *testing.T) { check(t, true, "as this binary expects", "PostgreSQL 15") })
	pgtest.Exec(t, url, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`)
	t.Run("newer schema", func(t *testing.T) { check(t, false, "schema version 999 is newer", "upgrade runagent") })
	c.Stop(t)
	t.Run("down", func(t *testing.T) { check(t, false, "connect to postgres 127.0.0.1:", "start PostgreSQL") })
}

// TestDoctorRedis: a running redis-server passes; a port nobody listens
// on and a URL that does not parse fail with what to do, without the
// password.
func TestDoctorRedis(t *testing.T) {
	addr := redistest.Start(t)
	if got := checkRedis(t.Context(), "redis://"+addr+"/0"); !got.OK || !strings.Contains(got.Detail, addr) {
		t.Errorf("checkRedis(running) = %+v, want ok naming %s", got, addr)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tt := range []struct{ name, url, says string }{
		{"nothing listening", "redis://:hunter2-secret@" + closed + "/0", "start Redis"},
		{"not a URL", "redis://:hunter2-secret@" + closed + "/zero", "does not parse"},
	} {
		got := checkRedis(t.Context(), tt.url)
		if got.OK || !strings.Contains(got.Detail, tt.says) || strings.Contains(got.Detail, "hunter2") {
			t.Errorf("%s: checkRedis = %+v, want failed saying %q, without the password", tt.name, got, tt.says)
		}
	}
}

// TestDoctorClusterFlags: doctor takes the store and Redis as serve does
// (a file, or the environment) and reports both in its JSON, without
// the password; a password on the command line is refused.
func TestDoctorClusterFlags(t *testing.T) {
	for _, env := range []string{"RUNAGENT_STORE_URL", "RUNAGENT_STORE_URL_FILE", "RUNAGENT_REDIS_URL", "RUNAGENT_REDIS_URL_FILE"} {
		t.Setenv(env, "")
	}
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	pgtest.Exec(t, url, `ALTER USER postgres PASSWORD 'hunter2-secret'`)
	secretURL := strings.Replace(url, "postgres@", "postgres:hunter2-secret@", 1)
	file := filepath.Join(t.TempDir(), "store-url")
	if err := os.WriteFile(file, []byte(secretURL+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RUNAGENT_REDIS_URL", "redis://"+redistest.Start(t)+"/0")

	var out, errs strings.Builder
	Main(t.Context(), []string{"doctor", "--json", "--store-file", file}, strings.NewReader(""), &out, &errs)
	if strings.Contains(out.String()+errs.String(), "hunter2") {
		t.Errorf("doctor shows the store password:\n%s%s", out.String(), errs.String())
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s%s", err, out.String(), errs.String())
	}
	if rep.Store == nil || !rep.Store.OK || rep.Redis == nil || !rep.Redis.OK {
		t.Errorf("doctor --json: store %+v, redis %+v; want both checked and ok", rep.Store, rep.Redis)
	}

	out.Reset()
	errs.Reset()
	code := Main(t.Context(), []string{"doctor", "--store", secretURL}, strings.NewReader(""), &out, &errs)
	if code == 0 || !strings.Contains(errs.String(), "--store-file") || strings.Contains(out.String()+errs.String(), "hunter2") {
		t.Errorf("doctor --store <URL with password>: exit %d, want refused pointing at --store-file without the password:\n%s%s", code, out.String(), errs.String())
	}
}
