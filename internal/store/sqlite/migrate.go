package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrSchemaTooNew is wrapped by the error Open returns for a database whose
// schema was migrated by a newer version of runagent.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// A migration is one numbered SQL script from migrations/.
type migration struct {
	version int
	name    string // file name, recorded in schema_migrations
	sql     string
}

// loadMigrations returns the embedded migrations ordered by version. File
// names are NNNN_description.sql, numbered from 1 without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for _, path := range names { // fs.Glob sorts
		name := strings.TrimPrefix(path, "migrations/")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || len(num) != 4 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_description.sql", name)
		}
		if want := len(ms) + 1; v != want {
			return nil, fmt.Errorf("migration %s: version %d, want %d", name, v, want)
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// Migration is one numbered SQL script of a store's migrations/ directory.
type Migration struct {
	Version int
	Name    string // file name, recorded in schema_migrations
	SQL     string
}

// LoadMigrations reads the migrations of fsys (migrations/NNNN_*.sql,
// numbered from 1 without gaps) ordered by version, for a store of
// another database that keeps its own scripts (package postgres).
func LoadMigrations(fsys fs.FS) ([]Migration, error) {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, len(ms))
	for i, m := range ms {
		out[i] = Migration{Version: m.version, Name: m.name, SQL: m.sql}
	}
	return out, nil
}

// migrate applies the pending embedded migrations to db, each in its own
// BEGIN IMMEDIATE transaction, so a concurrent process opening the same
// file waits and then sees the new version instead of applying it twice.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	return migrateTo(ctx, db, ms, now)
}

// migrateTo applies the pending migrations of ms to db, as migrate does.
func migrateTo(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time) error {
	// Several processes may open a new file at once. While one switches it
	// to WAL, SQLite can answer another with SQLITE_BUSY without waiting
	// in the busy handler, so each step is retried for a bounded time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		done, err := migrateOne(ctx, db, ms, now)
		switch {
		case err != nil && isBusy(err) && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		case err != nil || done:
			return err
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// migrateOne applies the next pending migration and reports whether the
// schema was already up to date.
func migrateOne(ctx context.Context, db *sql.DB, ms []migration, now func() time.Time) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()

	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return false, fmt.Errorf("schema version is %d but this binary knows versions up to %d; upgrade runagent or use another database file: %w", cur, len(ms), ErrSchemaTooNew)
	}
	if cur == len(ms) {
		return true, nil
	}
	m := ms[cur]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, now().UnixNano()); err != nil {
		return false, fmt.Errorf("migration %s: record version: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migration %s: commit: %w", m.name, err)
	}
	return false, nil
}
