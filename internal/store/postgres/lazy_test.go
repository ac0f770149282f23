package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

func TestLazyConfig(t *testing.T) {
	tests := []struct {
		url      string
		maxConns int32
	}{
		{"postgres://u@h/db", DefaultMaxConns / 2},
		{"postgres://u@h/db?pool_max_conns=40", 20},
		{"postgres://u@h/db?pool_max_conns=3", lazyMinConns},
	}
	for _, tt := range tests {
		cfg, err := ParseConfig(tt.url)
		if err != nil {
			t.Fatalf("ParseConfig(%q) = %v", tt.url, err)
		}
		l := LazyConfig(cfg)
		if got := l.ConnConfig.RuntimeParams["synchronous_commit"]; got != "off" {
			t.Errorf("%s: lazy synchronous_commit = %q, want off", tt.url, got)
		}
		if got, ok := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; ok {
			t.Errorf("%s: LazyConfig changed the main pool's synchronous_commit to %q", tt.url, got)
		}
		if l.MaxConns != tt.maxConns {
			t.Errorf("%s: lazy MaxConns = %d, want %d", tt.url, l.MaxConns, tt.maxConns)
		}
		if l.ConnConfig.RuntimeParams["statement_timeout"] != cfg.ConnConfig.RuntimeParams["statement_timeout"] {
			t.Errorf("%s: lazy pool lost the statement timeout", tt.url)
		}
	}
}

// TestLazyWriter checks what the lazy pool is: its commits are
// asynchronous and the main pool's are not, its transactions take the
// writer lock as the main pool's do, and only the invocation records of
// a context marked by core.WithDurableCommitFollows go through it.
func TestLazyWriter(t *testing.T) {
	c := pgtest.StartWith(t, pgtest.Options{Durable: true})
	db := mustOpen(t, c.NewDatabase(t))
	ctx := t.Context()

	// The lazy pool opens its connections on first use: only the marked
	// context's writes open one.
	for _, tt := range []struct {
		id       string
		ctx      context.Context
		lazyUsed bool
	}{
		{"inv-sync", ctx, false},
		{"inv-lazy", core.WithDurableCommitFollows(ctx), true},
	} {
		inv := &core.Invocation{ID: tt.id, AgentID: "a", EntrypointTag: "echo"}
		if err := db.CreateInvocation(tt.ctx, inv); err != nil {
			t.Fatalf("CreateInvocation(%s) = %v", inv.ID, err)
		}
		inv.Status = core.StatusCompleted
		if err := db.FinishInvocation(tt.ctx, inv); err != nil {
			t.Fatalf("FinishInvocation(%s) = %v", inv.ID, err)
		}
		got, err := db.Invocation(ctx, inv.ID)
		if err != nil {
			t.Fatalf("Invocation(%s) = %v", inv.ID, err)
		}
		if got.Status != core.StatusCompleted {
			t.Errorf("%s: status %s, want completed", inv.ID, got.Status)
		}
		if used := db.lazy.Stats().OpenConnections > 0; used != tt.lazyUsed {
			t.Errorf("%s: lazy pool used = %v, want %v", inv.ID, used, tt.lazyUsed)
		}
	}

	for _, tt := range []struct {
		name string
		pool *sql.DB
		want string
	}{{"main", db.sql, "on"}, {"lazy", db.lazy, "off"}} {
		var got string
		if err := tt.pool.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s pool: synchronous_commit = %s, want %s", tt.name, got, tt.want)
		}
	}

	// A write transaction on the lazy pool takes the cluster-wide writer
	// lock, as the main pool's do.
	tx, err := db.lazy.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var held int
	err = db.sql.QueryRowContext(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND ((classid::bigint << 32) | objid::bigint) = $1`, writerLock).Scan(&held)
	tx.Rollback()
	if err != nil {
		t.Fatal(err)
	}
	if held != 1 {
		t.Errorf("a write transaction on the lazy pool holds %d writer locks, want 1", held)
	}
}

// BenchmarkInvocationWrites is a run's two invocation-record writes
// (CreateInvocation, FinishInvocation) on a durable PostgreSQL, 16 at a
// time as BenchmarkStoreEcho's clients make them: synced, and lazily (a
// durable commit follows, as the API's audit append does).
func BenchmarkInvocationWrites(b *testing.B) {
	c := pgtest.StartWith(b, pgtest.Options{Durable: true})
	db := mustOpen(b, c.NewDatabase(b))
	var n atomic.Int64 // ids, unique over every round
	for _, lazy := range []bool{false, true} {
		name := map[bool]string{false: "synced", true: "lazy"}[lazy]
		b.Run(name, func(b *testing.B) {
			ctx := b.Context()
			if lazy {
				ctx = core.WithDurableCommitFollows(ctx)
			}
			b.SetParallelism(8) // 16 writers on 2 CPUs
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					inv := &core.Invocation{ID: fmt.Sprintf("%s-%d", name, n.Add(1)), AgentID: "a", EntrypointTag: "echo"}
					if err := db.CreateInvocation(ctx, inv); err != nil {
						b.Error(err)
						return
					}
					inv.Status = core.StatusCompleted
					if err := db.FinishInvocation(ctx, inv); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
