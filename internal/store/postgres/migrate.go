package postgres

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/store/sqlite"
)

// ErrSchemaTooNew is wrapped by the error Open returns for a database whose
// schema was migrated by a newer version of runagent. It is package
// sqlite's, so that one errors.Is recognizes it from either store.
var ErrSchemaTooNew = sqlite.ErrSchemaTooNew

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies the pending embedded migrations to db.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	ms, err := sqlite.LoadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	return migrateTo(ctx, db, ms, now)
}

// migrateTo applies the pending migrations of ms to db, all in one
// transaction that first takes the advisory lock migrateLock: nodes
// starting together queue on the lock, and each after the first finds
// the schema up to date. PostgreSQL's DDL is transactional, so a failed
// migration leaves the schema as it was.
func migrateTo(ctx context.Context, db *sql.DB, ms []sqlite.Migration, now func() time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("schema version is %d but this binary knows versions up to %d; upgrade runagent or use another database: %w", cur, len(ms), ErrSchemaTooNew)
	}
	if cur == len(ms) {
		return nil
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, now().UnixNano()); err != nil {
			return fmt.Errorf("migration %s: record version: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
