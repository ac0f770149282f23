package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// Store is what the server keeps in its database: everything core.Store
// holds, the audit trail and the keyring, sealed by the keyring once it
// is open. sqlite.DB (the default, a file in the data directory) and
// postgres.DB (Config.StoreURL, shared by several nodes) are Stores.
type Store interface {
	core.Store
	audit.Store
	keyring.Store
	SetSealer(core.Sealer)
}

var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// CheckStoreURL checks that s is a PostgreSQL URL (postgres:// or
// postgresql://), the only kind of store URL there is; its errors never
// show a password.
func CheckStoreURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("the store URL does not parse (%s): want postgres://user@host:5432/database", RedactURL(s))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("the store URL %s is not postgres://…: the store is PostgreSQL (postgres://user@host:5432/database) or, without a URL, SQLite in the data directory", RedactURL(s))
	}
	if _, err := postgres.ParseConfig(s); err != nil {
		return err
	}
	return nil
}

// StoreURLHasPassword reports whether the store URL s carries a password,
// in its user information or as a password parameter.
func StoreURLHasPassword(s string) bool {
	if URLHasPassword(s) {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && u.Query().Has("password")
}

// openStore opens the store cfg asks for: PostgreSQL at cfg.StoreURL, or
// SQLite at <data dir>/runagent.db.
func openStore(ctx context.Context, cfg Config) (Store, error) {
	if cfg.StoreURL == "" {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "runagent.db"))
	}
	if err := CheckStoreURL(cfg.StoreURL); err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, cfg.StoreURL)
	if err != nil {
		return nil, fmt.Errorf("%w: start PostgreSQL, fix the store URL, or leave --store out to use SQLite in the data directory", err)
	}
	return db, nil
}

// storeName says which store cfg uses, without credentials: what the
// effective configuration shows.
func storeName(c Config) string {
	if c.StoreURL != "" {
		return RedactURL(c.StoreURL)
	}
	if c.DataDir == "" {
		return "sqlite"
	}
	return "sqlite " + filepath.Join(c.DataDir, "runagent.db")
}
