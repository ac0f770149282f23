package registry

import (
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// BenchmarkGet measures what a run pays to find its agent's code: from
// memory (one node), and with Shared, where each Get reads the agent's
// row (on SQLite, and on PostgreSQL over loopback as several nodes use
// it).
func BenchmarkGet(b *testing.B) {
	for _, tc := range []struct {
		name   string
		shared bool
		store  func(b *testing.B) core.AgentStore
	}{
		{"memory", false, benchSQLite},
		{"shared/sqlite", true, benchSQLite},
		{"shared/postgres", true, benchPostgres},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := tc.store(b)
			r, err := New(st, filepath.Join(b.TempDir(), "code"), bundle.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.DeployDir(b.Context(), filepath.Join("..", "..", "examples", "hello"), ""); err != nil {
				b.Fatal(err)
			}
			r.Shared = tc.shared
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := r.Get(b.Context(), helloID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchSQLite(b *testing.B) core.AgentStore {
	db, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func benchPostgres(b *testing.B) core.AgentStore {
	db, err := postgres.Open(b.Context(), pgtest.Start(b).NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}
