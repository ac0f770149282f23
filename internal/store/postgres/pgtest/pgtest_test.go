package pgtest

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// TestDurable: a cluster started with Options.Durable syncs its commits
// (PostgreSQL's defaults); one started with Start syncs nothing.
func TestDurable(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    Options
		setting string
	}{
		{"durable", Options{Durable: true}, "on"},
		{"default", Options{}, "off"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := StartWith(t, tt.opts)
			db, err := sql.Open("pgx", c.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
				var v string
				if err := db.QueryRowContext(t.Context(), "SHOW "+name).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != tt.setting {
					t.Errorf("%s = %s, want %s", name, v, tt.setting)
				}
			}
		})
	}
}
