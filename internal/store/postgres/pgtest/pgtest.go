// Package pgtest starts throwaway PostgreSQL clusters for tests: a real
// server from Debian's postgresql package (scripts/deps.sh installs it),
// listening on a free loopback port with its socket in its own
// directory, stopped and deleted when the test ends, also on failure.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// BinDir is where Debian's postgresql-15 puts initdb, pg_ctl and postgres.
const BinDir = "/usr/lib/postgresql/15/bin"

// Cluster is a running test server.
type Cluster struct {
	dir  string // owned by the server's user; data/, the socket, log
	port int
	// asUser runs the server's programs as this user (postgres) when the
	// test runs as root, which PostgreSQL refuses to run as.
	asUser string
	opts   Options
	dbs    atomic.Int64
}

// Options configures a cluster of StartWith.
type Options struct {
	// Durable keeps PostgreSQL's defaults that make a commit durable
	// before it returns: fsync, synchronous_commit and full_page_writes
	// on (every commit flushes the WAL with fdatasync, the default
	// wal_sync_method on Linux). Benchmarks need it to compare
	// PostgreSQL fairly with SQLite's synced commits. Without it the
	// cluster syncs nothing, which tests do not need and which makes
	// them faster.
	Durable bool
}

// Start initialises and starts a cluster for t, syncing nothing (see
// Options.Durable), and stops it and removes its files when t ends. It
// fails t if PostgreSQL is not installed: run scripts/deps.sh.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with opts.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(BinDir, "initdb")); err != nil {
		t.Fatalf("PostgreSQL 15 is not installed (%v): run scripts/deps.sh, which installs Debian's postgresql", err)
	}
	c := &Cluster{opts: opts}
	// Not t.TempDir: the server's user must be able to reach its
	// directory, and t.TempDir's parent is private to root.
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, PostgreSQL needs the postgres user, which Debian's postgresql package creates: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.asUser = "postgres"
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.port = freePort(t)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop") })
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// run runs one of the server's programs, as the server's user.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(BinDir, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func (c *Cluster) start() error {
	args := []string{
		"-p", strconv.Itoa(c.port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections=200",
	}
	if !c.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	opts := strings.Join(args, " ")
	out, err := c.run("pg_ctl", "-D", c.data(), "-o", opts, "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		return fmt.Errorf("start PostgreSQL: %v\n%s\n%s", err, out, log)
	}
	return nil
}

// Stop stops the server (fast shutdown: open connections are cut).
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop"); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
}

// Crash stops the server as a crash would (immediate shutdown: no
// checkpoint, nothing flushed; commits made with synchronous_commit off
// whose WAL was not yet written are lost). Restart recovers it from its
// WAL.
func (c *Cluster) Crash(t testing.TB) {
	t.Helper()
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop"); err != nil {
		t.Fatalf("crash PostgreSQL: %v\n%s", err, out)
	}
}

// Restart starts the server again after Stop, on the same port.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// URL returns the URL of database name, as the superuser, over TCP on
// loopback.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// NewDatabase creates an empty database and returns its URL. The
// database lives as long as the cluster.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d", c.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name+` TEMPLATE template0`); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return c.URL(name)
}

// Exec runs a statement in the database at url, for tests that set up
// or inspect what the store does not offer.
func Exec(t testing.TB, url, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
