package localreg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// FileName is the registry's file name in its folder.
const FileName = "runagent_local.db"

// DirEnv names the environment variable that moves the registry's folder
// (RunAgent's LOCAL_CACHE_DIRECTORY).
const DirEnv = "RUNAGENT_CACHE_DIR"

// Statuses written to the status column.
const (
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// DefaultPath is the registry file RunAgent's SDKs read:
// $RUNAGENT_CACHE_DIR/runagent_local.db, or ~/.runagent/runagent_local.db.
func DefaultPath() (string, error) {
	if dir := os.Getenv(DirEnv); dir != "" {
		return filepath.Join(dir, FileName), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the local registry (no home directory; set $%s): %w", DirEnv, err)
	}
	return filepath.Join(home, ".runagent", FileName), nil
}

// schema is the one RunAgent's SQLAlchemy models (runagent/sdk/db.py:
// Agent, AgentRun, AgentInvocation, AgentLog, UserMetadata) create on
// SQLite, column for column, so that its tools and SDKs read and write the
// file as if they had created it: its Python SDK selects every column of
// its Agent model, and fails on a table that lacks one. Defaults there are
// applied by SQLAlchemy, not by SQLite: Register writes the columns that
// matter itself.
const schema = `
CREATE TABLE IF NOT EXISTS agents (
	agent_id VARCHAR NOT NULL,
	agent_path VARCHAR NOT NULL,
	host VARCHAR NOT NULL,
	port INTEGER NOT NULL,
	framework VARCHAR,
	status VARCHAR,
	remote_status VARCHAR,
	is_local BOOLEAN,
	fingerprint VARCHAR,
	deployed_at DATETIME,
	last_run DATETIME,
	run_count INTEGER,
	success_count INTEGER,
	error_count INTEGER,
	created_at DATETIME,
	updated_at DATETIME,
	agent_name VARCHAR,
	description TEXT,
	template VARCHAR,
	version VARCHAR,
	initialized_at DATETIME,
	config_fingerprint VARCHAR,
	project_id VARCHAR,
	PRIMARY KEY (agent_id)
);
CREATE INDEX IF NOT EXISTS idx_agents_status ON agents (status);
CREATE TABLE IF NOT EXISTS agent_runs (
	id INTEGER NOT NULL,
	agent_id VARCHAR NOT NULL,
	input_data TEXT NOT NULL,
	output_data TEXT,
	success BOOLEAN NOT NULL,
	error_message TEXT,
	execution_time FLOAT,
	started_at DATETIME,
	completed_at DATETIME,
	PRIMARY KEY (id),
	FOREIGN KEY(agent_id) REFERENCES agents (agent_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_agent_runs_agent_id ON agent_runs (agent_id);
CREATE INDEX IF NOT EXISTS idx_agent_runs_started_at ON agent_runs (started_at);
CREATE TABLE IF NOT EXISTS agent_invocations (
	invocation_id VARCHAR NOT NULL,
	agent_id VARCHAR NOT NULL,
	input_data TEXT NOT NULL,
	output_data TEXT,
	error_detail TEXT,
	request_timestamp DATETIME NOT NULL,
	response_timestamp DATETIME,
	execution_time_ms FLOAT,
	status VARCHAR NOT NULL,
	entrypoint_tag VARCHAR,
	sdk_type VARCHAR,
	client_info TEXT,
	PRIMARY KEY (invocation_id),
	FOREIGN KEY(agent_id) REFERENCES agents (agent_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_invocations_agent_id ON agent_invocations (agent_id);
CREATE INDEX IF NOT EXISTS idx_invocations_request_timestamp ON agent_invocations (request_timestamp);
CREATE INDEX IF NOT EXISTS idx_invocations_status ON agent_invocations (status);
CREATE INDEX IF NOT EXISTS idx_invocations_agent_status ON agent_invocations (agent_id, status);
CREATE TABLE IF NOT EXISTS agent_logs (
	id INTEGER NOT NULL,
	agent_id VARCHAR NOT NULL,
	log_level VARCHAR NOT NULL,
	message TEXT NOT NULL,
	created_at DATETIME,
	execution_id VARCHAR,
	PRIMARY KEY (id),
	FOREIGN KEY(agent_id) REFERENCES agents (agent_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_agent_logs_agent_id ON agent_logs (agent_id);
CREATE INDEX IF NOT EXISTS idx_agent_logs_created_at ON agent_logs (created_at);
CREATE INDEX IF NOT EXISTS idx_agent_logs_level ON agent_logs (log_level);
CREATE TABLE IF NOT EXISTS user_metadata (
	"key" VARCHAR NOT NULL,
	value TEXT NOT NULL,
	created_at DATETIME,
	updated_at DATETIME,
	PRIMARY KEY ("key")
);
CREATE INDEX IF NOT EXISTS idx_user_metadata_key ON user_metadata ("key");
`

// addedColumns are the agents columns RunAgent's Agent model gained after
// the first schema, which its Go and TypeScript SDKs still create: a table
// without them gets them (nullable, as the model has them), so that the
// Python SDK can read it. No row is changed.
var addedColumns = []struct{ name, decl string }{
	{"remote_status", "VARCHAR"},
	{"is_local", "BOOLEAN"},
	{"fingerprint", "VARCHAR"},
	{"agent_name", "VARCHAR"},
	{"description", "TEXT"},
	{"template", "VARCHAR"},
	{"version", "VARCHAR"},
	{"initialized_at", "DATETIME"},
	{"config_fingerprint", "VARCHAR"},
	{"project_id", "VARCHAR"},
}

// addColumns gives an agents table created by an older schema the
// columns it lacks.
func addColumns(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('agents')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range addedColumns {
		if have[c.name] {
			continue
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE agents ADD COLUMN `+c.name+` `+c.decl); err != nil && !strings.Contains(err.Error(), "duplicate column") {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
	}
	return nil
}

// Agent is one served agent's row.
type Agent struct {
	ID        string
	Name      string // agent_name
	Path      string // its source folder (agent_path)
	Framework string
}

// Registry is an open local registry file.
type Registry struct {
	db   *sql.DB
	path string
}

// Open opens the registry file at path, creating its folder, the file and
// RunAgent's tables if they are missing.
func Open(ctx context.Context, path string) (*Registry, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("local registry: %w", err)
	}
	q := url.Values{}
	// Other tools (RunAgent's CLI, other servers) write the same file:
	// wait for their locks rather than fail at once.
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("local registry %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("local registry %s: create tables: %w", path, err)
	}
	if err := addColumns(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("local registry %s: %w", path, err)
	}
	return &Registry{db: db, path: path}, nil
}

// Path is the registry file.
func (r *Registry) Path() string { return r.path }

// Close closes the file.
func (r *Registry) Close() error { return r.db.Close() }

// Register records agents as running at host:port: a new row for an
// agent the registry does not know, an updated address, path, framework
// and status for one it does (its counters and created_at are kept).
func (r *Registry) Register(ctx context.Context, host string, port int, agents []Agent) error {
	return r.tx(ctx, func(tx *sql.Tx) error {
		for _, a := range agents {
			_, err := tx.ExecContext(ctx, `
INSERT INTO agents (agent_id, agent_path, host, port, framework, status, is_local, agent_name,
	deployed_at, run_count, success_count, error_count, created_at, updated_at, initialized_at)
VALUES (?, ?, ?, ?, ?, ?, 1, ?,
	CURRENT_TIMESTAMP, 0, 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)
ON CONFLICT (agent_id) DO UPDATE SET
	agent_path = excluded.agent_path, host = excluded.host, port = excluded.port,
	framework = excluded.framework, status = excluded.status, is_local = 1,
	agent_name = coalesce(excluded.agent_name, agent_name),
	deployed_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP`,
				a.ID, a.Path, host, port, nullable(a.Framework), StatusRunning, nullable(a.Name))
			if err != nil {
				return fmt.Errorf("register agent %s: %w", a.ID, err)
			}
		}
		return nil
	})
}

// Stop marks the agents with ids as stopped, if their rows still name
// host:port (a row another server has taken over since is left alone).
func (r *Registry) Stop(ctx context.Context, host string, port int, ids []string) error {
	return r.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE agents SET status = ?, updated_at = CURRENT_TIMESTAMP
WHERE agent_id = ? AND host = ? AND port = ?`, StatusStopped, id, host, port); err != nil {
				return fmt.Errorf("mark agent %s stopped: %w", id, err)
			}
		}
		return nil
	})
}

func (r *Registry) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("local registry %s: %w", r.path, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return fmt.Errorf("local registry %s: %w", r.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("local registry %s: %w", r.path, err)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// HostPort splits a listener's address into the host and port clients on
// this machine reach it at: an unspecified address (0.0.0.0, ::) becomes
// 127.0.0.1 (Go listens on :: for both families; the SDKs put the host in
// a URL unbracketed, which an IPv6 address would not survive).
func HostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port of %s: %w", addr, err)
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		h = "127.0.0.1"
	}
	if h == "" {
		return "", 0, errors.New("no host in " + addr)
	}
	return h, port, nil
}

// Lookup returns the address a running agent was registered at, as
// RunAgent's SDKs find it in local mode; ok is false when the registry
// has no running row for it.
func (r *Registry) Lookup(ctx context.Context, agentID string) (host string, port int, ok bool, err error) {
	var h sql.NullString
	var p sql.NullInt64
	err = r.db.QueryRowContext(ctx, `SELECT host, port FROM agents WHERE agent_id = ? AND status = 'running'`, agentID).Scan(&h, &p)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("local registry %s: %w", r.path, err)
	}
	if !h.Valid || !p.Valid || h.String == "" || p.Int64 <= 0 {
		return "", 0, false, nil
	}
	return h.String, int(p.Int64), true, nil
}
