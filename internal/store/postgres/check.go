package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runagent/runagent/internal/store/sqlite"
)

// Status is what Check found of a database, for 'runagent doctor'.
type Status struct {
	// Target names the server and database, without credentials.
	Target string
	// ServerVersion is PostgreSQL's server_version.
	ServerVersion string
	// SchemaVersion is the newest migration applied to the database (0
	// for one no runagent has opened); KnownVersion is the newest this
	// binary has. Open migrates a database behind it and refuses one
	// ahead of it.
	SchemaVersion, KnownVersion int
	// ClockSkew is the database server's clock minus this host's, taken
	// at the midpoint of the query that read it; RoundTrip is that
	// query's time.
	ClockSkew, RoundTrip time.Duration
}

// Check connects once to the database at url and reads its status,
// changing nothing (no migration, unlike Open). Errors never contain the
// URL's password.
func Check(ctx context.Context, url string) (*Status, error) {
	cfg, err := ParseConfig(url)
	if err != nil {
		return nil, err
	}
	st := &Status{Target: Target(cfg)}
	pw := cfg.ConnConfig.Password
	ms, err := sqlite.LoadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	st.KnownVersion = len(ms)
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return st, fmt.Errorf("postgres: connect to %s: %w", st.Target, redactError(err, pw))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var now time.Time
	start := time.Now()
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp(), current_setting('server_version')`).Scan(&now, &st.ServerVersion); err != nil {
		return st, fmt.Errorf("postgres: query %s: %w", st.Target, redactError(err, pw))
	}
	st.RoundTrip = time.Since(start)
	st.ClockSkew = now.Sub(start.Add(st.RoundTrip / 2))
	var migrated bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&migrated); err != nil {
		return st, fmt.Errorf("postgres: query %s: %w", st.Target, redactError(err, pw))
	}
	if migrated {
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&st.SchemaVersion); err != nil {
			return st, fmt.Errorf("postgres: read the schema version of %s: %w", st.Target, redactError(err, pw))
		}
	}
	return st, nil
}
